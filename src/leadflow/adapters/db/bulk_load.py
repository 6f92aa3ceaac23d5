"""Fast bulk writes of whole tables' worth of rows: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, bindparam, func, select, text

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


def mark_engagement_milestones(engine: Engine, config: LifecycleConfig) -> int:
    """Set-based, for bulk loads: milestones whose rule is an engagement threshold, for the
    contacts whose score stands at or above it (dated at their last scored event)."""
    inserted = 0
    erased = [s.key for s in config.stages_with_role("erased")]
    for m in config.milestones:
        if m.when is None or m.when.op != "engagement_at_least":
            continue
        with engine.begin() as conn:
            result = conn.execute(text(
                "INSERT INTO milestones (contact_id, key, reached_at, actor, config_version) "
                "SELECT id, CAST(:key AS VARCHAR(50)), s.engagement_t0, 'rule', "
                "CAST(:version AS VARCHAR(200)) FROM contacts "
                "JOIN contact_scores s ON s.contact_id = contacts.id "
                "WHERE s.engagement_score >= :threshold AND s.engagement_t0 IS NOT NULL "
                "AND stage NOT IN :erased AND NOT EXISTS (SELECT 1 FROM milestones m "
                "WHERE m.contact_id = contacts.id AND m.key = :key)"
            ).bindparams(bindparam("erased", expanding=True)),
                {"key": m.key, "version": config.config_version,
                 "threshold": m.when.number, "erased": erased})
            inserted += result.rowcount or 0
    return inserted
