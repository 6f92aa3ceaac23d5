"""Background jobs and a busy database, on SQLite and PostgreSQL: a periodic job (or the
outbox relay) that finds the database held by another writer says so in one warning line and
does its work at the next run; a nurture pass commits batch after batch and, on SQLite, leaves
the write lock free now and then, so that other writers are not shut out while it runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.engine import taking_turns
from leadflow.adapters.queue.huey_queue import RelayLoop
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.content import ContentItem
from leadflow.domain.mail_policy import MARKETING
from leadflow.domain.ports import UnitOfWork
from leadflow.entrypoints.worker import Jobs
from leadflow.services import nurture
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from tests.conftest import FakeClock

LIBRARY = [
    ContentItem(key=f"guide-{n}", title=f"Guide {n}", url=f"/guides/{n}", maturity="discovery",
                format="article") for n in range(3)
] + [
    ContentItem(key=f"paper-{n}", title=f"Paper {n}", url=f"/papers/{n}", maturity="evaluation",
                format="white_paper") for n in range(3)
]


def library(app: App) -> None:
    with app.uow() as uow:
        for item in LIBRARY:
            uow.content.add(item, app.clock.now())
        uow.commit()


def lead(app: App, email: str, *, mql: bool = False) -> int:
    """A lead in the discovery track; with ``mql``, engaged enough to be marketing
    qualified (the milestone's autoresponder answers it)."""
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email=email))
    assert c.id is not None
    for kind in ["form_submitted"] + ["webinar_attended"] * (3 if mql else 0):
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=c.id))
    return c.id


@pytest.fixture
def busy_app(settings: Settings, clock: FakeClock) -> Iterator[App]:
    """An App on the same database that waits 0.3 s at most for another writer's lock."""
    url = settings.resolved_database_url
    url += "?timeout=0.3" if url.startswith("sqlite") else "?options=-c%20lock_timeout%3D300"
    instance = App(Settings(database_url=url, data_dir=settings.data_dir), clock=clock)
    yield instance
    if "engine" in instance.__dict__:
        instance.engine.dispose()


class HeldLock:
    """Another connection in the middle of a write transaction: on SQLite it holds the
    database's write lock; on PostgreSQL, the tables the jobs write."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.conn: Connection | None = None

    def __enter__(self) -> HeldLock:
        self.conn = self.app.engine.connect()
        if self.conn.dialect.name == "sqlite":
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.conn.begin()
            self.conn.execute(text("LOCK TABLE enrollments, outbox IN EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        self.conn.rollback()
        self.conn.close()


def trouble(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def queued(app: App) -> list[tuple[int, str]]:
    with app.engine.connect() as conn:
        return [(r.contact_id, r.dedupe_key) for r in conn.execute(
            select(t.mail_messages.c.contact_id, t.mail_messages.c.dedupe_key)
            .order_by(t.mail_messages.c.id))]


def test_a_periodic_job_the_database_is_too_busy_for_warns_in_one_line_and_runs_next_time(
        app: App, busy_app: App, caplog: pytest.LogCaptureFixture) -> None:
    library(app)
    lead(app, "ann@example.com")
    jobs = Jobs(busy_app)
    caplog.set_level(logging.INFO)
    with HeldLock(app):
        assert jobs.huey.execute(jobs.nurture.s()) == {}
    [warning] = trouble(caplog)
    assert (warning.name, warning.levelname) == ("leadflow.worker", "WARNING")
    assert warning.getMessage().startswith("nurture: the database was busy")
    assert "trying again at the next run" in warning.getMessage()
    assert "\n" not in warning.getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback anywhere
    assert queued(app) == []
    caplog.clear()
    report = jobs.huey.execute(jobs.nurture.s())
    assert (report["entered"], report["queued"]) == (1, 1)
    assert len(queued(app)) == 1
    assert trouble(caplog) == []


def test_a_relay_round_the_database_is_too_busy_for_warns_in_one_line_and_the_next_relays(
        app: App, busy_app: App, caplog: pytest.LogCaptureFixture) -> None:
    lead(app, "ann@example.com")  # its stage change is an outbox message
    jobs = Jobs(busy_app)
    caplog.set_level(logging.INFO)

    def pending() -> int:
        with app.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.outbox).where(
                t.outbox.c.relayed_at.is_(None))).scalar_one())

    assert pending() > 0
    loop = RelayLoop(jobs.relay_once, 0.05)
    try:
        with HeldLock(app):
            loop.start()
            wait_for(lambda: trouble(caplog), "a warning")
        wait_for(lambda: pending() == 0, "the relay")
    finally:
        loop.stop()
    assert {r.getMessage().split(":")[0] for r in trouble(caplog)} == {"relay round"}
    assert all("the database was busy" in r.getMessage() for r in trouble(caplog))
    assert not any(r.exc_info for r in caplog.records)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)


def test_a_nurture_pass_commits_batch_by_batch_and_a_pass_stopped_half_way_sends_nothing_twice(
        app: App) -> None:
    """Another writer commits between any two of the pass's transactions (here: a second
    pass, as a worker restarted half way would run), and what each transaction committed is
    there: milestone answers and track steps, a few contacts at a time. Each contact still
    gets each email once."""
    library(app)
    contacts = [lead(app, f"lead{n}@example.com", mql=True) for n in range(6)]
    progress: list[int] = []

    def between_transactions() -> UnitOfWork:
        progress.append(len(queued(app)))
        if len(progress) == 4:  # half way: another pass runs to its end
            nurture.tick(uow=app.uow, ctx=app.ctx, batch_size=2)
        return app.uow()

    report = nurture.tick(uow=between_transactions, ctx=app.ctx, batch_size=2)
    # Sync, then milestone answers 2 at a time, then track steps 2 at a time.
    assert progress[:4] == [0, 0, 2, 4]
    mail = queued(app)
    assert sorted(mail) == sorted(set(mail))  # nothing queued twice
    per_contact = {c: sorted(k.split(":")[0] for cid, k in mail if cid == c) for c in contacts}
    assert per_contact == {c: ["auto", "track"] for c in contacts}
    assert report.autoresponses + report.queued < 2 * len(contacts)  # the other pass did some
    with app.engine.connect() as conn:  # all marketing email, within the cap (3 in 30 days)
        counts = conn.execute(select(t.mail_messages.c.contact_id, func.count())
                              .where(t.mail_messages.c.category == MARKETING)
                              .group_by(t.mail_messages.c.contact_id)).all()
    assert all(n <= 3 for _, n in counts)


def test_a_job_writing_batch_after_batch_leaves_sqlite_free_for_other_writers(
        tmp_path: Path) -> None:
    """SQLite's busy handler tries again every 100 ms: a job that begins its next transaction
    the moment it commits the last one shuts a waiting writer out until the job ends. Taking
    turns, the waiting writer gets in during the job."""
    url = f"sqlite:///{tmp_path / 'turns.db'}?timeout=0.6"
    app = App(Settings(database_url=url, data_dir=tmp_path / "data"), clock=FakeClock())
    engine = app.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE marks (who TEXT, at REAL)")

    def job(units: Callable[[], Any], running: threading.Event) -> None:
        running.set()
        for _ in range(24):  # 24 transactions of 50 ms each: 1.2 s in all
            with units() as uow:
                uow.conn.exec_driver_sql("INSERT INTO marks VALUES ('job', 0)")
                time.sleep(0.05)
                uow.commit()

    def other_writer_during(units: Callable[[], Any]) -> tuple[bool, bool]:
        """Whether another writer got in while the job ran, and the job still ran."""
        running = threading.Event()
        worker = threading.Thread(target=job, args=(units, running))
        worker.start()
        running.wait()
        time.sleep(0.1)
        try:
            with engine.begin() as conn:  # waits 0.6 s at most
                conn.exec_driver_sql("INSERT INTO marks VALUES ('other', 0)")
            got_in = worker.is_alive()
        except Exception:
            got_in = False
        worker.join()
        return got_in, not worker.is_alive()

    assert other_writer_during(app.uow) == (False, True)  # shut out
    assert other_writer_during(taking_turns(engine, app.uow, turn=0.2)) == (True, True)
    engine.dispose()
