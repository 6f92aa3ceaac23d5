"""Alembic environment: the engine comes from leadflow (config.attributes['engine']).

On SQLite, batch mode changes a table by copying it, dropping the original and renaming the
copy. With foreign keys enforced that DROP first deletes every row (cascading to the tables
that reference it), so enforcement is off while migrations run, the result of a migration is
checked with ``PRAGMA foreign_key_check``, and enforcement is back on before the connection
is reused.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from leadflow.adapters.db.tables import metadata

engine = context.config.attributes["engine"]


def run(connection: Connection) -> None:
    with connection.begin():
        if connection.dialect.name == "sqlite":
            # pysqlite opens no transaction before DDL: without this BEGIN each statement
            # commits alone, and a migration cut short leaves half its changes behind.
            connection.exec_driver_sql("BEGIN")
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        before = context.get_context().get_current_revision()
        context.run_migrations()
        migrated = context.get_context().get_current_revision() != before
        if migrated and connection.dialect.name == "sqlite":
            # (a whole-database scan: only after a migration ran, not on every start)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise RuntimeError(f"a migration broke a foreign key: {tuple(broken)}")


with engine.connect() as connection:
    if connection.dialect.name != "sqlite":
        run(connection)
    else:
        # Outside any transaction: SQLite ignores this pragma inside one.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            run(connection)
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
