"""Tracking requests that queue while another is written are written together, in one
transaction, and each still gets its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.errors import Unavailable
from leadflow.services.tracking import Together, TrackingResult, take_messages
from leadflow.services.tracking_messages import Envelope
from tests.conftest import FakeClock


def _page(message_id: str, visitor: str, clock: FakeClock) -> dict[str, Any]:
    return {"type": "page", "anonymousId": visitor, "messageId": message_id,
            "timestamp": clock.now() - 30, "properties": {"url": "https://acme.example/"}}


def first_alone_then_queued(app: App, names: list[str],
                            send: Callable[[str], None]) -> None:
    """Send the first request while another writer holds the database (it waits, alone in
    its group), then the others (they queue behind it); return once all are answered."""
    with app.uow() as holder:
        holder.serialize("tracking")
        first = threading.Thread(target=send, args=(names[0],))
        first.start()
        time.sleep(0.3)
        others = [threading.Thread(target=send, args=(n,)) for n in names[1:]]
        for thread in others:
            thread.start()
        time.sleep(0.3)
    for thread in (first, *others):
        thread.join(30)


def test_requests_that_queue_are_written_in_one_transaction(app: App,
                                                            clock: FakeClock) -> None:
    together = Together()
    requests = {
        "first": [_page("a1", "v1", clock)],
        "second": [_page("b1", "v2", clock), _page("b2", "v3", clock)],
        "third": [_page("c1", "v2", clock), {"type": "page"},  # no id: rejected alone
                  _page("b2", "v3", clock)],  # sent by the second one too: a duplicate
        "fourth": [{"type": "track", "anonymousId": "v4", "messageId": "d1",
                    "timestamp": clock.now() - 20, "event": "Demo Request"},
                   {"type": "identify", "anonymousId": "v4", "userId": "u4",
                    "messageId": "d2", "traits": {"email": "v4@acme.example"}}],
    }
    results: dict[str, TrackingResult] = {}
    commits: list[int] = []
    event.listen(app.engine, "commit", lambda conn: commits.append(1))

    def send(name: str) -> None:
        results[name] = take_messages(uow=app.uow(), ctx=app.ctx, messages=requests[name],
                                      envelope=Envelope(received_at=clock.now()),
                                      together=together)

    first_alone_then_queued(app, list(requests), send)

    assert len(commits) == 2  # the first alone, then the three that queued together
    assert (results["first"].stored, results["first"].duplicates) == (1, 0)
    assert (results["second"].stored, results["second"].duplicates) == (2, 0)
    assert (results["third"].stored, results["third"].duplicates) == (1, 1)
    assert [(r.index, r.field) for r in results["third"].rejected] == [(1, "userId")]
    assert (results["fourth"].stored, results["fourth"].duplicates) == (2, 0)
    assert not any(r.rejected for n, r in results.items() if n != "third")
    assert len(results["second"].contact_ids) == 2  # its own two visitors, no one else's
    assert len(results["fourth"].contact_ids) == 1
    assert not results["second"].contact_ids & results["fourth"].contact_ids
    with app.engine.connect() as conn:
        stored = sorted(conn.execute(select(t.events.c.message_id)).scalars())
        visitors = conn.execute(select(func.count()).select_from(t.identities).where(
            t.identities.c.kind == "anonymous_id")).scalar()
    assert stored == ["a1", "b1", "b2", "c1", "d1", "d2"]
    assert visitors == 4


def test_a_request_alone_is_written_at_once(app: App, clock: FakeClock) -> None:
    together = Together()
    result = take_messages(uow=app.uow(), ctx=app.ctx, messages=[_page("x1", "v9", clock)],
                           envelope=Envelope(received_at=clock.now()), together=together)
    assert (result.stored, result.duplicates, result.rejected) == (1, 0, [])


def test_a_database_too_busy_fails_queued_requests_at_once_to_come_again(
        tmp_path: Path, clock: FakeClock) -> None:
    """Each is answered "come again" (503) after one wait, not written again one by one."""
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'busy.db'}?timeout=0.5",
                       data_dir=tmp_path / "data"), clock=clock)
    app.engine  # noqa: B018
    together = Together()
    outcomes: dict[str, tuple[str, float]] = {}

    def send(name: str) -> None:
        started = time.monotonic()
        try:
            take_messages(uow=app.uow(), ctx=app.ctx, messages=[_page(name, name, clock)],
                          envelope=Envelope(received_at=clock.now()), together=together)
            outcomes[name] = ("stored", time.monotonic() - started)
        except Unavailable:
            outcomes[name] = ("come again", time.monotonic() - started)

    threads = [threading.Thread(target=send, args=(n,)) for n in ("a", "b", "c", "d")]
    with app.uow():  # another writer of this process keeps the database past the timeout
        threads[0].start()
        time.sleep(0.2)
        for thread in threads[1:]:
            thread.start()
        time.sleep(1.5)
    for thread in threads:
        thread.join(30)
    assert {name: what for name, (what, _) in outcomes.items()} == dict.fromkeys(
        "abcd", "come again")
    assert max(seconds for _, seconds in outcomes.values()) < 1.6  # one wait each, not four
    app.engine.dispose()


def test_a_group_that_fails_is_written_again_request_by_request(
        tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Only the request at fault fails; its neighbours in the group are stored."""
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'fault.db'}",
                       data_dir=tmp_path / "data"), clock=clock)
    with app.engine.begin() as conn:  # a fault the database raises for one message
        conn.exec_driver_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.message_id = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'this message poisons its transaction'); END")
    together = Together()
    requests = {"first": [_page("f1", "v1", clock)],
                "good": [_page("g1", "v2", clock), _page("g2", "v3", clock)],
                "faulty": [_page("b0", "v4", clock), _page("bad", "v4", clock)],
                "also good": [_page("h1", "v5", clock)]}
    outcomes: dict[str, Any] = {}

    def send(name: str) -> None:
        try:
            outcomes[name] = take_messages(
                uow=app.uow(), ctx=app.ctx, messages=requests[name],
                envelope=Envelope(received_at=clock.now()), together=together).stored
        except Exception as exc:  # which request fails is the point
            outcomes[name] = str(exc)

    first_alone_then_queued(app, list(requests), send)

    assert outcomes["first"] == 1
    assert outcomes["good"] == 2
    assert outcomes["also good"] == 1
    assert "poisons its transaction" in outcomes["faulty"]
    with app.engine.connect() as conn:
        stored = sorted(conn.execute(select(t.events.c.message_id)).scalars())
    assert stored == ["f1", "g1", "g2", "h1"]  # nothing of the faulty request, not even b0
    assert "3 tracking requests written together failed" in caplog.text
    app.engine.dispose()
