"""Many rows into one table inside the current transaction: COPY on PostgreSQL (where a
statement per row would cost most of an import), one executemany elsewhere."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, func, insert, select


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, named as the table's columns)."""
    if not rows:
        return
    if not is_postgresql(conn):
        conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    as_json = {n for n in names if isinstance(table.c[n].type, JSON)}
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(
            f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row[n]) if n in as_json else row[n] for n in names])


def insert_returning_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
                         ) -> list[int]:
    """Insert ``rows`` and give their new ids, in the same order."""
    if not rows:
        return []
    if not is_postgresql(conn):
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                              list(rows))
        return [int(i) for i in result.scalars().all()]
    sequence = func.pg_get_serial_sequence(table.name, "id")
    ids = [int(i) for i in conn.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
    ).scalars().all()]
    insert_rows(conn, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    return ids
