"""Rows written by the driver's executemany read back as SQLAlchemy's own insert and update
write them; ids reserved for new contacts are never ones used before; the web process
checkpoints SQLite's log from its own thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_rows import insert_rows, update_rows
from leadflow.adapters.db.engine import (
    BACKSTOP_CHECKPOINT_PAGES,
    BackgroundCheckpoints,
    is_busy,
    make_engine,
)
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.model import Contact
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, merge_contacts, record_event
from leadflow.services.tracking import take_messages
from leadflow.services.tracking_messages import Envelope
from tests.conftest import FakeClock


def _stored(app: App, table: Any, order: Any) -> list[tuple[Any, ...]]:
    with app.engine.connect() as conn:
        raw = conn.execute(select(*(text(f"{c.name} IS NULL") for c in table.c if c.name != "id"),
                                  *[c for c in table.c if c.name != "id"]).order_by(order))
        return [tuple(r) for r in raw]


def test_insert_rows_stores_what_sqlalchemy_stores(app: App) -> None:
    rows: list[dict[str, Any]] = [
        {"contact_id": 1, "at": 1.5, "actor": "x", "action": "created",
         "details": {"email": "a@b.example", "n": [1, 2]}},
        {"contact_id": 2, "at": 2.0, "actor": "y", "action": "merged", "details": {}},
    ]
    with app.engine.begin() as conn:
        conn.execute(insert(t.audit), rows)
    sqlalchemy_rows = _stored(app, t.audit, t.audit.c.id)
    with app.engine.begin() as conn:
        conn.execute(t.audit.delete())
        insert_rows(conn, t.audit, rows)
    assert _stored(app, t.audit, t.audit.c.id) == sqlalchemy_rows


def test_a_json_none_is_stored_as_sqlalchemy_stores_it(app: App) -> None:
    contact = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="n@x.example"))
    shape_id = _a_shape(app)
    row = {"contact_id": contact.id, "ts": 1.0, "shape_id": shape_id, "message_id": None,
           "properties": None, "received_at": 1.0}
    with app.engine.begin() as conn:
        conn.execute(insert(t.events), row)
    expected = _stored(app, t.events, t.events.c.id)
    with app.engine.begin() as conn:
        conn.execute(t.events.delete())
        insert_rows(conn, t.events, [row])
    assert _stored(app, t.events, t.events.c.id) == expected


def test_update_rows_changes_only_the_given_columns_of_the_keyed_rows(app: App) -> None:
    ids = [create_contact(uow=app.uow(), ctx=app.ctx,
                          data=ContactIn(email=f"u{i}@x.example")).id for i in range(3)]
    with app.engine.begin() as conn:
        update_rows(conn, t.contact_scores, "contact_id", [
            {"contact_id": ids[0], "engagement_score": 7.5, "signals": {"demo": [1.0]}},
            {"contact_id": ids[2], "engagement_score": 2.0, "signals": {}}])
    with app.engine.connect() as conn:
        got = {r.contact_id: (r.engagement_score, r.signals) for r in conn.execute(
            select(t.contact_scores.c.contact_id, t.contact_scores.c.engagement_score,
                   t.contact_scores.c.signals))}
    assert got[ids[0]] == (7.5, {"demo": [1.0]})
    assert got[ids[1]] == (0.0, {})
    assert got[ids[2]] == (2.0, {})


def test_reserved_ids_are_new_even_after_the_last_contact_was_merged_away(app: App) -> None:
    first = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="a@x.example"))
    last = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="b@x.example"))
    with app.uow() as uow:
        merge_contacts(uow=uow, ctx=app.ctx, survivor=uow.contacts.get(first.id or 0),
                       absorbed=uow.contacts.get(last.id or 0), actor="test")
        uow.commit()
    with app.uow() as uow:
        ids = uow.contacts.reserve_ids(3)
        assert ids[0] > (last.id or 0)
        assert ids == list(range(ids[0], ids[0] + 3))
        contacts = [Contact(id=i, stage="suspect", email=f"r{i}@x.example") for i in ids]
        uow.contacts.add_many(contacts)
        uow.commit()
    made = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="c@x.example"))
    assert (made.id or 0) > ids[-1]


def _a_shape(app: App) -> int:
    contact = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="s@x.example"))
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="page_view",
                                                          contact_id=contact.id, ts=1.0))
    with app.engine.begin() as conn:
        shape_id: int = conn.execute(select(t.events.c.shape_id)).scalar_one()
        conn.execute(t.events.delete())
    return shape_id


def test_the_web_process_checkpoints_the_log_from_a_thread_of_its_own(
        tmp_path: Path, clock: FakeClock) -> None:
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'wal.db'}",
                       data_dir=tmp_path / "data"), clock=clock)
    checkpoints = BackgroundCheckpoints(app.engine, every=0.05)
    checkpoints.start()
    try:
        with app.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == BACKSTOP_CHECKPOINT_PAGES  # commits leave it to the thread
        database = Path(app.engine.url.database or "")
        before = database.stat().st_size
        with app.uow() as uow:  # new pages: in the log until a checkpoint copies them
            uow.contacts.add_many([Contact(id=None, stage="suspect", email=f"w{i}@x.example")
                                   for i in range(2000)])
            uow.commit()
        deadline = time.monotonic() + 10
        while database.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size > before
        assert checkpoints.checkpoints >= 1
    finally:
        checkpoints.stop()
    with app.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    app.engine.dispose()


def test_writers_of_one_process_queue_for_sqlite_in_turn(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    """They wait on a lock of the process (the next one starts as soon as the last ends),
    not in SQLite's busy handler, which sleeps between tries with the lock free."""
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'turns.db'}?timeout=0.3",
                       data_dir=tmp_path / "data"), clock=clock)
    app.engine  # noqa: B018
    holding, done = threading.Event(), threading.Event()
    seen: list[BaseException] = []

    def hold() -> None:
        with app.uow():
            holding.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        with app.uow():
            pass
    except BaseException as exc:
        seen.append(exc)
    finally:
        done.set()
        holder.join()
    assert len(seen) == 1
    assert is_busy(seen[0])
    assert "another writer of this process" in str(seen[0])
    with app.uow() as uow:  # the turn is free again once the first has ended
        uow.contacts.add_many([Contact(id=None, stage="suspect", email="t@x.example")])
        uow.commit()
    with app.reader() as reader:  # readers never wait for the turn
        assert reader.contacts.get_by_email("t@x.example") is not None
    app.engine.dispose()


def test_a_tracked_event_sets_only_the_columns_of_a_contact_it_changes(
        tmp_path: Path, clock: FakeClock) -> None:
    """SQLite rewrites the index entries of every column an UPDATE sets, changed or not."""
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'cols.db'}",
                       data_dir=tmp_path / "data"), clock=clock)
    with app.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE set_columns (name TEXT)")
        for column in ("stage", "temperature", "last_event_at"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER set_{column} AFTER UPDATE OF {column} ON contacts "
                f"BEGIN INSERT INTO set_columns VALUES ('{column}'); END")

    def page_view(n: int) -> None:
        take_messages(uow=app.uow(), ctx=app.ctx, envelope=Envelope(received_at=clock.now()),
                      messages=[{"type": "page", "anonymousId": "visitor-1",
                                 "messageId": f"m{n}", "timestamp": clock.now() - 60 + n,
                                 "properties": {"url": "https://acme.example/blog"}}])

    page_view(0)
    with app.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM set_columns")
    page_view(1)
    with app.engine.connect() as conn:
        assert [n for (n,) in conn.exec_driver_sql("SELECT name FROM set_columns")] == [
            "last_event_at"]
    app.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_plans_each_statement_with_its_values(database_url: str) -> None:
    """A generic plan made while a table was small (a seq scan) would stay once it grew."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_the_log_starts_anew_though_a_writer_commits_during_the_checkpoint(
        tmp_path: Path, clock: FakeClock) -> None:
    """A checkpoint that a writer overtakes leaves the log to grow: the last frames are
    copied with this process's writers held back, so the next writer starts it anew."""
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'grow.db'}",
                       data_dir=tmp_path / "data"), clock=clock)
    app.engine  # noqa: B018
    checkpoints = BackgroundCheckpoints(app.engine, every=3600)  # its thread stays idle
    checkpoints.start()

    def write(count: int) -> None:
        with app.uow() as uow:
            uow.contacts.add_many([Contact(id=None, stage="suspect") for _ in range(count)])
            uow.commit()

    write(500)
    writing, go = threading.Event(), threading.Event()

    def overtake() -> None:  # holds the write turn, and commits once the checkpoint began
        with app.uow() as uow:
            uow.contacts.add_many([Contact(id=None, stage="suspect") for _ in range(500)])
            writing.set()
            go.wait(10)
            uow.commit()

    writer = threading.Thread(target=overtake)
    writer.start()
    writing.wait(10)
    copier = threading.Thread(target=checkpoints.copy_back)
    copier.start()
    time.sleep(0.3)  # its first pass is done; it waits for the writer's turn
    go.set()
    writer.join(10)
    copier.join(10)
    write(1)  # a new writer: the log was copied whole, so it starts from its beginning
    frames, _ = checkpoints.checkpoint()
    checkpoints.stop()
    assert 0 < frames < 100  # one contact's pages (about 25), not the 500 rows before it (190)
    app.engine.dispose()

def test_two_apps_on_one_engine_each_stop_their_own_checkpoints(tmp_path: Path,
                                                                clock: FakeClock) -> None:
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'two.db'}",
                       data_dir=tmp_path / "data"), clock=clock)
    first, second = (BackgroundCheckpoints(app.engine, every=0.05) for _ in range(2))
    first.start()
    second.start()
    first.stop()
    with app.engine.connect() as conn:  # the second still runs: its writers leave it the log
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
            BACKSTOP_CHECKPOINT_PAGES)
    second.stop()
    with app.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    app.engine.dispose()
