"""Fast bulk writes of whole tables' worth of rows: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.repositories import SqlEventRepository
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.matching import EventShape


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


def count_contacts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0)


SETTINGS_TABLES = ("api_keys", "webhooks", "config_versions", "users")  # set-up, not data


def delete_everything(engine: Engine) -> None:
    """Delete every row of data (the schema, users, API keys and webhooks stay)."""
    data = [tb for tb in t.metadata.sorted_tables if tb.name not in SETTINGS_TABLES]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(tb.name for tb in data)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        else:
            for table in reversed(data):
                conn.execute(table.delete())
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("VACUUM"))


def start_load(engine: Engine, accounts: pl.DataFrame,
               shapes: list[EventShape]) -> dict[EventShape, int]:
    """Write the accounts of a bulk load and register its event shapes; their ids."""
    with engine.begin() as conn:
        insert_frame(conn, "accounts", accounts)
        events = SqlEventRepository(conn)
        return {shape: events.shape_id(shape) for shape in shapes}


def end_load(engine: Engine, tables_with_ids: list[str]) -> None:
    with engine.begin() as conn:
        reset_sequences(conn, tables_with_ids)


def analyze(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def mark_engagement_milestones(engine: Engine, config: LifecycleConfig,
                               found: list[pl.DataFrame]) -> int:
    """For bulk loads: the milestones whose rule is an engagement threshold, each dated when
    the contact's engagement first reached it (``PolarsBulkScoring.engagement_crossings``, by
    range), for contacts not erased that do not have it yet. How many were written."""
    erased = [s.key for s in config.stages_with_role("erased")]
    crossings = pl.concat(found) if found else None
    if crossings is None or crossings.height == 0:
        return 0
    keys = crossings["key"].unique().to_list()
    with engine.begin() as conn:
        m, c = t.milestones.c, t.contacts.c
        have = pl.DataFrame(
            [tuple(r) for r in conn.execute(select(m.contact_id, m.key).where(m.key.in_(keys)))],
            schema={"contact_id": pl.Int64, "key": pl.Utf8}, orient="row")
        gone = pl.DataFrame(
            [(r[0],) for r in conn.execute(select(c.id).where(c.stage.in_(erased)))],
            schema={"contact_id": pl.Int64}, orient="row")
        rows = crossings.join(have, on=["contact_id", "key"], how="anti").join(
            gone, on="contact_id", how="anti").with_columns(
            pl.lit("rule").alias("actor"), pl.lit(config.config_version).alias("config_version"))
        return insert_frame(conn, "milestones", rows.select(
            "contact_id", "key", "reached_at", "actor", "config_version"))
