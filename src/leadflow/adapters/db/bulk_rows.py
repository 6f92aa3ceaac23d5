"""Many rows into one table inside the current transaction: COPY on PostgreSQL (where a
statement per row would cost most of an import), one executemany of the driver on SQLite
(SQLAlchemy's processing of each row's parameters costs more than SQLite's insert)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)

from leadflow.adapters.db.engine import JSON_OPTIONS

_json_dumps = JSON_OPTIONS["json_serializer"]


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def begin_now(conn: Connection) -> None:
    """Open the transaction on SQLite now: pysqlite defers BEGIN to the first INSERT, UPDATE
    or DELETE, so a statement before it (DDL, a SAVEPOINT) would commit on its own."""
    dbapi = conn.connection.dbapi_connection
    if not is_postgresql(conn) and dbapi is not None and not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN")


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, named as the table's columns)."""
    if not rows:
        return
    names = list(rows[0])
    if not is_postgresql(conn):
        if any(c.default is not None and c.name not in names for c in table.c):
            conn.execute(insert(table), list(rows))  # Python-side defaults to fill in
            return
        quote = conn.dialect.identifier_preparer.quote
        raw: Any = conn.connection.driver_connection
        raw.executemany(f"INSERT INTO {table.name} ({', '.join(map(quote, names))}) "
                        f"VALUES ({', '.join('?' * len(names))})",
                        driver_rows(table, names, rows))
        return
    as_json = {n for n in names if isinstance(table.c[n].type, JSON)}
    pg: Any = conn.connection.driver_connection
    with pg.cursor() as cur, cur.copy(
            f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row[n]) if n in as_json else row[n] for n in names])


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]
                ) -> None:
    """Update one row per dict (the same keys in each), found by its ``key`` column."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if is_postgresql(conn):
        conn.execute(update(table).where(table.c[key] == bindparam("_key")),
                     [{**{n: row[n] for n in names}, "_key": row[key]} for row in rows])
        return
    quote = conn.dialect.identifier_preparer.quote
    raw: Any = conn.connection.driver_connection
    raw.executemany(f"UPDATE {table.name} SET {', '.join(f'{quote(n)} = ?' for n in names)} "
                    f"WHERE {quote(key)} = ?", driver_rows(table, [*names, key], rows))


def insert_returning_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
                         ) -> list[int]:
    """Insert ``rows`` and give their new ids, in the same order."""
    if not rows:
        return []
    if not is_postgresql(conn):
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                              list(rows))
        return [int(i) for i in result.scalars().all()]
    ids = next_ids(conn, table, len(rows))
    insert_rows(conn, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    return ids


def next_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` new ids from the sequence of ``table``'s id (PostgreSQL)."""
    sequence = func.pg_get_serial_sequence(table.name, "id")
    return [int(i) for i in conn.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, count))
    ).scalars().all()]


def driver_rows(table: Table, names: Sequence[str], rows: Sequence[dict[str, Any]]
                ) -> list[tuple[Any, ...]]:
    """``rows`` as SQLite's driver takes them: JSON columns serialized as SQLAlchemy's JSON
    type does (None as JSON null unless the type says ``none_as_null``)."""
    encoders = [_json_encoder(table.c[n]) if isinstance(table.c[n].type, JSON) else None
                for n in names]
    if not any(encoders):
        return [tuple(row[n] for n in names) for row in rows]
    return [tuple(row[n] if encode is None else encode(row[n])
                  for n, encode in zip(names, encoders, strict=True)) for row in rows]


def _json_encoder(column: Column[Any]) -> Any:
    if getattr(column.type, "none_as_null", False):
        return lambda value: None if value is None else _json_dumps(value)
    return _json_dumps
