"""Concurrent tracking requests about the same new visitors, as several SDK instances (or
browser tabs, or wrk connections) send them, on SQLite and PostgreSQL.

Before 681695d two requests that both saw a new anonymousId both inserted its identity: the
second failed on uq_identities_kind_value and its whole batch got a 500 (bench/ingest.py
with four wrk connections hit it on 81 of 200 batches). Every batch must get its 200, every
event be stored once, and each visitor be one contact.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, text

from tests.e2e.conftest import LeadflowServer

ROUNDS = 6
CLIENTS = 6
VISITORS = 30


def test_concurrent_batches_about_the_same_new_visitors_are_all_stored(
        server: LeadflowServer, db: Engine) -> None:
    key = server.public_key()
    statuses: list[int] = []
    with httpx.Client(base_url=server.url, auth=(key, ""), timeout=60.0,
                      limits=httpx.Limits(max_connections=CLIENTS)) as client:
        for r in range(ROUNDS):
            visitors = [f"r{r}-visitor-{v}" for v in range(VISITORS)]
            start = threading.Barrier(CLIENTS)

            def send(c: int, r: int = r, visitors: list[str] = visitors,
                     start: threading.Barrier = start) -> int:
                body = {"batch": [{"type": "page", "anonymousId": v,
                                   "messageId": f"r{r}-c{c}-{v}",
                                   "properties": {"url": f"https://acme.example/{c}"}}
                                  for v in visitors]}
                start.wait(timeout=30)
                return client.post("/v1/batch", json=body).status_code

            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses += pool.map(send, range(CLIENTS))
    assert statuses == [200] * (ROUNDS * CLIENTS)
    with db.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        contacts = conn.execute(text(
            "SELECT count(DISTINCT contact_id) FROM identities "
            "WHERE kind = 'anonymous_id'")).scalar_one()
    assert events == ROUNDS * CLIENTS * VISITORS
    assert contacts == ROUNDS * VISITORS


def test_concurrent_batches_about_the_same_visitors_in_any_order_are_all_stored(
        server: LeadflowServer, db: Engine) -> None:
    """Known and new visitors in a different order in each concurrent batch, so that the
    batches take their row locks (PostgreSQL) in different orders and race on the new
    visitors' identities: every batch still gets its 200 and every event is stored once."""
    key = server.public_key()
    visitors = [f"known-{v}" for v in range(VISITORS)]
    statuses: list[int] = []
    with httpx.Client(base_url=server.url, auth=(key, ""), timeout=120.0,
                      limits=httpx.Limits(max_connections=CLIENTS)) as client:
        first = client.post("/v1/batch", json={"batch": [
            {"type": "page", "anonymousId": v, "messageId": f"first-{v}"} for v in visitors]})
        assert first.status_code == 200, first.text
        for r in range(ROUNDS):
            start = threading.Barrier(CLIENTS)

            def send(c: int, r: int = r, start: threading.Barrier = start) -> int:
                fresh = [f"new-{r}-{v}" for v in range(VISITORS)]
                order = random.Random(r * 100 + c).sample(visitors + fresh, 2 * VISITORS)
                body = {"batch": [{"type": "track", "event": "Docs Read", "anonymousId": v,
                                   "messageId": f"r{r}-c{c}-{v}"} for v in order]}
                start.wait(timeout=30)
                return client.post("/v1/batch", json=body).status_code

            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses += pool.map(send, range(CLIENTS))
    assert statuses == [200] * (ROUNDS * CLIENTS)
    with db.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    assert events == VISITORS + ROUNDS * CLIENTS * 2 * VISITORS
