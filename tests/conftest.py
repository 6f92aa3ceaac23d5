"""Shared fixtures: a fake clock, and an App on a real SQLite file or a real PostgreSQL.

Every test that takes ``app`` runs twice, once per database. PostgreSQL comes from
LEADFLOW_TEST_POSTGRES_URL (default: the local server); each test session works in a database
of its own, created here and dropped at the end. Without a reachable server those runs skip
with the reason — except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from leadflow.adapters.db import tables
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.model import Contact
from leadflow.services.contacts import AccountIn, ContactIn, create_contact

PG_URL = os.environ.get("LEADFLOW_TEST_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # a Monday


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    name = f"leadflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure means: no server to test against
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}: {exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
        yield None
        return
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_pg_migrated: dict[str, App] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leadflow.db'}"
    url = request.getfixturevalue("pg_database")
    if url is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set LEADFLOW_TEST_POSTGRES_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        existing = [t.name for t in tables.metadata.sorted_tables
                    if conn.dialect.has_table(conn, t.name)]
        if existing:
            conn.execute(text(f"TRUNCATE {', '.join(existing)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return str(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data",
                    rescore_chunk_contacts=7)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[App]:
    instance = App(settings, clock=clock)
    yield instance
    if "engine" in instance.__dict__:
        instance.engine.dispose()


def good_fit_contact(app: App, email: str = "ann@example.com", **fields: Any) -> Contact:
    """A director in France at a 300-person software company: grade A for the shipped
    personas, so demo or premium evidence makes a prospect."""
    return create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email=email, seniority="director", country="FR",
        account=AccountIn(name="Acme", domain="acme.example", industry="software",
                          employees=300, country="FR"), **fields))


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright: one per test process (Playwright's
    sync API runs one event loop per thread, so two session browsers cannot coexist). Without
    Chromium the test skips, or fails in CI, whose .ci/run installs it."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"])
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
