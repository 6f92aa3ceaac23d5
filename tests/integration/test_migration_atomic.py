"""A migration that fails part-way on SQLite leaves nothing of itself behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from leadflow.adapters.db.engine import alembic_config, make_engine, migrate


def test_a_failed_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'leadflow.db'}")
    try:
        command.upgrade(alembic_config(engine), "0004_sales")
        with engine.begin() as conn:  # 0005's last statement will find its index name taken
            conn.execute(text("CREATE INDEX ix_contacts_owner_queue ON users (email)"))
        with pytest.raises(Exception, match="already exists"):
            migrate(engine)
        assert "queue_rank" not in {c["name"] for c in inspect(engine).get_columns("contacts")}
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_contacts_owner_queue"))
        migrate(engine)  # before the fix: "duplicate column name: queue_rank"
        assert "queue_rank" in {c["name"] for c in inspect(engine).get_columns("contacts")}
    finally:
        engine.dispose()
