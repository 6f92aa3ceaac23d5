"""Tracking requests arriving at the same time for the same visitors: nothing lost, nothing
counted twice, and the stored scores are what a full rescore gives."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.domain.ports import NullProgress
from leadflow.services.rescore import check_scores
from leadflow.services.tracking import take_messages
from leadflow.services.tracking_messages import Envelope
from tests.conftest import T0, FakeClock

THREADS = 4
REQUESTS = 12


def _request(thread: int, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(10):
        ts = T0 - 3600 + thread * 60 + n * 5 + i * 0.1
        visitor = f"v{(thread + n + i) % 5}"  # five visitors shared by every thread
        out.append({"type": "page" if i % 2 else "track", "event": "Content Download",
                    "anonymousId": visitor, "messageId": f"t{thread}-r{n}-m{i}",
                    "timestamp": datetime.fromtimestamp(ts, UTC).isoformat(),
                    "properties": {"url": "https://acme.example/pricing"}})
    if n % 4 == 0:  # and some retries of another thread's messages
        out.append({**out[0], "messageId": f"t{(thread + 1) % THREADS}-r{n}-m0"})
    return out


def test_concurrent_requests_lose_nothing(app: App, clock: FakeClock) -> None:
    app.engine  # noqa: B018 — migrate before the threads start
    errors: list[BaseException] = []

    def client(thread: int) -> None:
        try:
            for n in range(REQUESTS):
                take_messages(uow=app.uow(), ctx=app.ctx, messages=_request(thread, n),
                              envelope=Envelope(received_at=clock.now()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    expected = {m["messageId"] for i in range(THREADS) for n in range(REQUESTS)
                for m in _request(i, n)}
    with app.engine.connect() as conn:
        stored = list(conn.execute(select(t.events.c.message_id)).scalars())
        visitors = conn.execute(select(func.count()).select_from(t.contacts)).scalar()
    assert sorted(stored) == sorted(expected)  # each once
    assert visitors == 5
    report = check_scores(scoring=app.bulk_scoring(), progress=NullProgress())
    assert report.differing_contacts == 0, report.differences[:5]
