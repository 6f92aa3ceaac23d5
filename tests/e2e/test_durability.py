"""Durability: SIGKILL the server while a client streams batches, restart it, and count.

What DESIGN §2 promises, checked on SQLite and PostgreSQL:

- ingestion answers 2xx only after the commit, and ``messageId`` dedupes: every event of an
  acknowledged batch is stored exactly once, and so is every event of a batch the client sent
  again because the kill left it without an answer (as the SDKs do);
- every webhook message is written to the outbox in the transaction that caused it, relayed
  and delivered after the restart: each delivery reaches the receiver, signed, under its
  ``X-Leadflow-Delivery`` id.

Delivery is at least once, not exactly once: if the kill falls between the receiver's answer
and the commit that records it, the delivery is posted again after its lease runs out, with
the same id and the same body. Receivers dedupe on ``X-Leadflow-Delivery``; this test checks
that such duplicates are byte-identical (so deduping loses nothing) and that, once deduped,
every delivery arrived exactly once. Raw duplicates are printed (``pytest -s``) and attached
to the test report as the ``raw_duplicate_deliveries`` property.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from leadflow.domain.webhooks import verify
from tests.e2e.conftest import LeadflowServer, eventually

BATCHES = 45
PER_BATCH = 20
NEW_VISITORS_PER_BATCH = 2
KILL_AFTER_ACKED = 15


@dataclass
class Received:
    delivery: str
    topic: str
    body: bytes
    signed: bool
    at: float


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the killed server left behind is reset: expected, not news."""


class Receiver:
    """A webhook endpoint on loopback that records every POST and answers 200."""

    def __init__(self) -> None:
        self.posts: list[Received] = []
        self.secret = ""
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender was killed mid-post: never answered,
                    return  # so the delivery is retried (a real receiver drops it too)
                stamp = self.headers.get("X-Leadflow-Timestamp") or "0"
                signed = verify(outer.secret, int(stamp), body,
                                self.headers.get("X-Leadflow-Signature") or "")
                with outer.lock:
                    outer.posts.append(Received(self.headers.get("X-Leadflow-Delivery") or "",
                                                self.headers.get("X-Leadflow-Topic") or "",
                                                body, signed, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.posts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()
    r.thread.join(timeout=10)


def make_batches() -> list[list[dict[str, Any]]]:
    """Page views and track calls; each batch brings new anonymous visitors (each one a
    stage change, so a webhook) and returns to earlier ones."""
    batches = []
    visitors: list[str] = []
    for b in range(BATCHES):
        visitors += [f"anon-{b}-{v}" for v in range(NEW_VISITORS_PER_BATCH)]
        batch = []
        for m in range(PER_BATCH):
            who = visitors[-1 - (m * 7) % len(visitors)] if m >= NEW_VISITORS_PER_BATCH \
                else visitors[-1 - m]
            message: dict[str, Any] = {"anonymousId": who, "messageId": f"msg-{b}-{m}",
                                       "timestamp": "2026-03-02T09:00:00Z"}
            if m % 3:
                message |= {"type": "page", "name": "Pricing",
                            "properties": {"url": f"https://acme.example/pricing?b={b}"}}
            else:
                message |= {"type": "track", "event": "Docs Read",
                            "properties": {"url": "https://acme.example/docs"}}
            batch.append(message)
        batches.append(batch)
    return batches


@dataclass
class Streamer:
    """Streams the batches one after the other; a batch without an answer (the server died
    under it, or is down) is sent again until it gets one, as the SDKs do."""

    url: str
    key: str
    batches: list[list[dict[str, Any]]]
    acked: list[int] = field(default_factory=list)
    retried: set[int] = field(default_factory=set)
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    error: BaseException | None = None
    give_up_after: float = 90.0

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, auth=(self.key, ""), timeout=15.0) as client:
                for i, batch in enumerate(self.batches):
                    self.answers[i] = self._send(client, i, {"batch": batch,
                                                             "sentAt": "2026-03-02T09:00:00Z"})
                    self.acked.append(i)
                    time.sleep(0.01)  # a steady stream, not a burst over before the kill
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    def _send(self, client: httpx.Client, i: int, body: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.give_up_after
        while True:
            try:
                response = client.post("/v1/batch", json=body)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                assert response.status_code == 200, response.text
                answer: dict[str, Any] = response.json()
                return answer
            self.retried.add(i)
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {i} got no answer for {self.give_up_after} s")
            time.sleep(0.1)


def delivery_state(db: Engine) -> dict[str, int]:
    with db.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT count(*) FROM outbox WHERE topic = 'stage.changed'),"
            " (SELECT count(*) FROM outbox WHERE topic = 'stage.changed'"
            "   AND relayed_at IS NULL),"
            " (SELECT count(*) FROM webhook_deliveries),"
            " (SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered')")).one()
    return dict(zip(["outbox", "unrelayed", "deliveries", "delivered"], row, strict=True))


def test_sigkill_while_streaming_loses_and_doubles_nothing(
        server: LeadflowServer, db: Engine, receiver: Receiver,
        record_property: Any) -> None:
    key = server.public_key()
    receiver.secret = server.subscribe(receiver.url, "stage.changed")
    batches = make_batches()
    streamer = Streamer(server.url, key, batches)
    client = threading.Thread(target=streamer.run, name="streamer", daemon=True)
    client.start()
    try:
        eventually(f"{KILL_AFTER_ACKED} acknowledged batches",
                   lambda: len(streamer.acked) >= KILL_AFTER_ACKED or not client.is_alive(),
                   timeout=60, interval=0.005)
        assert streamer.error is None, streamer.error
        assert client.is_alive(), "the client finished before the kill; stream more batches"
        acked_before_kill = len(streamer.acked)
        posts_before_kill = len(receiver.snapshot())
        killed_at = time.monotonic()
        server.kill()
        server.start()
    finally:
        client.join(timeout=120)
    assert not client.is_alive(), "the client did not finish"
    assert streamer.error is None, streamer.error

    # Every batch was acknowledged in the end; some only on a retry after the kill.
    assert sorted(streamer.acked) == list(range(BATCHES))
    assert acked_before_kill < BATCHES
    assert streamer.retried, "no batch went unanswered: the kill missed the stream"
    for i, answer in streamer.answers.items():
        assert answer["rejected"] == [], answer
        assert answer["stored"] + answer["duplicates"] == PER_BATCH, (i, answer)
        if i not in streamer.retried:
            assert answer["stored"] == PER_BATCH, (i, answer)

    # Every acknowledged event is stored exactly once, retried batches included.
    expected = {m["messageId"] for batch in batches for m in batch}
    with db.connect() as conn:
        counts: dict[str, int] = dict(conn.execute(text(
            "SELECT message_id, count(*) FROM events GROUP BY message_id")).all())
        total = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        visitors = conn.execute(text(
            "SELECT count(*) FROM identities WHERE kind = 'anonymous_id'")).scalar_one()
    assert set(counts) == expected
    assert {m: c for m, c in counts.items() if c != 1} == {}
    assert total == len(expected)
    assert visitors == BATCHES * NEW_VISITORS_PER_BATCH

    # Every stage change was relayed to the outbox and delivered after the restart.
    eventually("every stage.changed message delivered", lambda: (
        (s := delivery_state(db))["unrelayed"] == 0 and s["outbox"] > 0
        and s["delivered"] == s["deliveries"] == s["outbox"]), timeout=60,
        detail=lambda: f"{delivery_state(db)}\n{server.log_tail(15)}")
    with db.connect() as conn:
        outbox = conn.execute(text(
            "SELECT o.id, d.uid FROM outbox o JOIN webhook_deliveries d ON d.outbox_id = o.id"
            " WHERE o.topic = 'stage.changed' AND d.status = 'delivered'")).all()
        first_seen = conn.execute(text(
            "SELECT count(*) FROM outbox WHERE topic = 'stage.changed'")).scalar_one()
    assert first_seen >= visitors  # each new visitor's first stage, at least
    expected_ids = {uid for _, uid in outbox}
    assert len(expected_ids) == len(outbox) == first_seen

    posts = receiver.snapshot()
    assert all(p.signed for p in posts), "a delivery with a bad signature"
    assert {p.topic for p in posts} == {"stage.changed"}
    arrivals = Counter(p.delivery for p in posts)
    assert set(arrivals) == expected_ids, "deliveries missing or unknown at the receiver"
    duplicates = {d: n for d, n in arrivals.items() if n > 1}
    before_kill = {p.delivery for p in posts if p.at < killed_at}
    for delivery in duplicates:
        bodies = {p.body for p in posts if p.delivery == delivery}
        assert len(bodies) == 1, f"{delivery} arrived twice with different bodies"
    for p in posts:
        assert json.loads(p.body)["id"] == p.delivery
    # Deduped on X-Leadflow-Delivery, as receivers do: each delivery exactly once.
    assert len({p.delivery for p in posts}) == len(expected_ids)

    summary = (f"{server.database_url.split(':', 1)[0]}: {len(expected)} events, "
               f"{acked_before_kill} batches acked before the kill, "
               f"{len(streamer.retried)} retried, {first_seen} webhooks "
               f"({posts_before_kill} posted before the kill), "
               f"raw duplicate deliveries: {sum(duplicates.values()) - len(duplicates)} "
               f"{sorted(duplicates)}, of which first posted before the kill: "
               f"{sorted(set(duplicates) & before_kill)}; "
               f"all delivered {time.monotonic() - killed_at:.1f} s after the kill")
    print(summary)
    record_property("raw_duplicate_deliveries", sum(duplicates.values()) - len(duplicates))
    record_property("durability_summary", summary)
