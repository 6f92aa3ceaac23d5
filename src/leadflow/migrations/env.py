"""Alembic environment: the engine comes from leadflow (config.attributes['engine'])."""

from __future__ import annotations

from alembic import context

from leadflow.adapters.db.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
