"""Fast bulk writes of whole tables' worth of rows: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, text


def insert_frame(conn: Connection, table: str, frame: pl.DataFrame) -> int:
    """Append the rows of ``frame`` (columns named as the table's) to ``table``."""
    if frame.height == 0:
        return 0
    cols = frame.columns
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        sql = f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)"
        with raw.cursor() as cur, cur.copy(sql) as cp:
            step = 500_000
            for start in range(0, frame.height, step):
                buf = io.BytesIO()
                frame.slice(start, step).write_csv(buf, include_header=False)
                cp.write(buf.getvalue())
    else:
        marks = ", ".join("?" for _ in cols)
        raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                        frame.iter_rows())
    return frame.height


def reset_sequences(conn: Connection, tables: list[str]) -> None:
    """After inserting explicit ids on PostgreSQL, move each id sequence past the maximum."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"))



def append_frames(engine: Engine, frames: list[tuple[str, pl.DataFrame]]) -> None:
    """Append several tables' rows in one transaction of their own.

    (Not ADBC on SQLite: its own bundled SQLite library next to Python's would not share
    file locks within one process, which corrupts the database.)
    """
    with engine.begin() as conn:
        for table, frame in frames:
            insert_frame(conn, table, frame)
