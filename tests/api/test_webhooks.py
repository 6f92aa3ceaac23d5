"""Webhooks: signed deliveries to a real HTTP receiver on loopback, retried with backoff.

The outbox relay and the Huey tasks are driven by hand (``Jobs.relay_once`` and the queued
tasks run one by one), so the fake clock decides when a retry is due.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi.testclient import TestClient

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.domain.webhooks import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    retry_delay,
    verify,
)
from leadflow.entrypoints.worker import Jobs
from leadflow.services.webhooks import RelayReport, deliver, relay
from tests.api.conftest import Keys, Receiver, bearer, count, rows, run_queued
from tests.conftest import T0, FakeClock


def jobs_of(api: TestClient) -> Jobs:
    jobs: Jobs = api.app.state.jobs  # type: ignore[attr-defined]
    return jobs


def subscribe(api: TestClient, keys: Keys, url: str, *topics: str) -> dict[str, Any]:
    reply = api.post("/api/v1/webhooks", headers=bearer(keys.admin),
                     json={"url": url, "topics": list(topics or ["stage.changed"])})
    assert reply.status_code == 201, reply.text
    hook: dict[str, Any] = reply.json()
    return hook


def new_contact(api: TestClient, keys: Keys, email: str = "ann@acme.example") -> int:
    reply = api.post("/api/v1/contacts", headers=bearer(keys.write), json={"email": email})
    assert reply.status_code == 201
    contact_id: int = reply.json()["id"]
    return contact_id


def log(api: TestClient, keys: Keys, **params: Any) -> list[dict[str, Any]]:
    reply = api.get("/api/v1/webhooks/deliveries", headers=bearer(keys.admin), params=params)
    assert reply.status_code == 200
    entries: list[dict[str, Any]] = reply.json()
    return entries


def test_a_signed_delivery_reaches_the_receiver(api: TestClient, app: App, keys: Keys,
                                                receiver: Receiver) -> None:
    hook = subscribe(api, keys, receiver.url, "stage.changed", "milestone.reached")
    assert hook["secret"].startswith("whsec_")
    listed = api.get("/api/v1/webhooks", headers=bearer(keys.admin)).json()
    assert listed == [{k: hook[k] for k in ("id", "url", "topics", "stages", "active",
                                            "created_at")}]
    contact = new_contact(api, keys)
    [message] = rows(app, t.outbox)
    assert (message.topic, message.contact_id, message.relayed_at) == (
        "stage.changed", contact, None)

    jobs = jobs_of(api)
    assert jobs.relay_once() == 2  # one message relayed, one delivery handed out
    assert run_queued(jobs) == 1
    [got] = receiver.received
    assert got.path == "/hooks/leadflow"
    stamp = int(got.headers[TIMESTAMP_HEADER])
    assert stamp == int(T0)
    assert verify(hook["secret"], stamp, got.body, got.headers[SIGNATURE_HEADER])
    assert not verify("whsec_someone-else-entirely", stamp, got.body,
                      got.headers[SIGNATURE_HEADER])
    assert not verify(hook["secret"], stamp + 1, got.body, got.headers[SIGNATURE_HEADER])
    payload = json.loads(got.body)
    assert payload["topic"] == "stage.changed"
    assert payload["data"]["contact"] == {"id": contact, "email": "ann@acme.example",
                                          "stage": "suspect", "owner_id": None}
    assert payload["data"]["to_stage"] == "suspect"
    [entry] = log(api, keys)
    assert (entry["status"], entry["attempts"], entry["last_status_code"],
            entry["delivered_at"]) == ("delivered", 1, 200, T0)
    [row] = rows(app, t.outbox)
    assert row.relayed_at == T0
    # Nothing more to do: a second round relays and posts nothing.
    assert jobs.relay_once() == 0
    assert run_queued(jobs) == 0
    assert len(receiver.received) == 1
    # Other topics are not sent to a hook that did not subscribe to them.
    other = subscribe(api, keys, receiver.url, "temperature.changed")
    new_contact(api, keys, "bob@acme.example")
    jobs.relay_once()
    run_queued(jobs)
    assert len(receiver.received) == 2
    assert log(api, keys, webhook_id=other["id"]) == []


def test_a_failing_receiver_gets_retries_with_backoff(api: TestClient, app: App, keys: Keys,
                                                      clock: FakeClock,
                                                      receiver: Receiver) -> None:
    subscribe(api, keys, receiver.url)
    new_contact(api, keys)
    jobs = jobs_of(api)
    receiver.replies = [500, 503]
    jobs.relay_once()
    run_queued(jobs)
    [entry] = log(api, keys)
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == (
        "pending", 1, 500)
    assert entry["last_error"] == "HTTP 500: no"
    assert entry["next_attempt_at"] == T0 + retry_delay(1)

    # Not due yet: nothing is handed out.
    clock.advance(retry_delay(1) - 1)  # type: ignore[operator]
    assert jobs.relay_once() == 0
    clock.advance(1)
    assert jobs.relay_once() == 1
    run_queued(jobs)
    [entry] = log(api, keys)
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == (
        "pending", 2, 503)
    assert entry["next_attempt_at"] == clock.now() + retry_delay(2)
    assert retry_delay(2) == 2 * retry_delay(1)  # type: ignore[operator]

    clock.advance(retry_delay(2))  # type: ignore[arg-type]
    jobs.relay_once()
    run_queued(jobs)
    [entry] = log(api, keys, status="delivered")
    assert (entry["attempts"], entry["last_status_code"], entry["last_error"],
            entry["next_attempt_at"], entry["delivered_at"]) == (3, 200, None, None,
                                                                 clock.now())
    assert len(receiver.received) == 3
    assert len({r.headers["X-Leadflow-Delivery"] for r in receiver.received}) == 1
    assert [int(r.headers[TIMESTAMP_HEADER]) for r in receiver.received] == [
        int(T0), int(T0 + 10), int(T0 + 30)]


def test_after_every_attempt_the_delivery_fails(api: TestClient, app: App, keys: Keys,
                                                clock: FakeClock, receiver: Receiver) -> None:
    subscribe(api, keys, receiver.url)
    new_contact(api, keys)
    jobs = jobs_of(api)
    receiver.replies = [500] * (MAX_ATTEMPTS + 2)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert jobs.relay_once() >= 1, attempt
        assert run_queued(jobs) == 1
        delay = retry_delay(attempt)
        if delay is not None:
            clock.advance(delay)
    [entry] = log(api, keys)
    assert (entry["status"], entry["attempts"], entry["next_attempt_at"]) == (
        "failed", MAX_ATTEMPTS, None)
    assert len(receiver.received) == MAX_ATTEMPTS
    clock.advance(86400)
    assert jobs.relay_once() == 0
    assert run_queued(jobs) == 0
    assert log(api, keys, status="failed") == [entry]
    metrics = api.get("/metrics").text
    assert "leadflow_webhook_deliveries_failed 1.0" in metrics


def test_a_removed_webhook_gets_nothing_more(api: TestClient, app: App, keys: Keys,
                                             clock: FakeClock, receiver: Receiver) -> None:
    kept = subscribe(api, keys, receiver.url + "/kept")
    removed = subscribe(api, keys, receiver.url + "/removed")
    new_contact(api, keys)
    jobs = jobs_of(api)
    receiver.replies = [500, 500]  # both fail once: both wait for a retry
    jobs.relay_once()
    run_queued(jobs)
    assert len(receiver.received) == 2
    new_contact(api, keys, "bob@acme.example")
    jobs.relay_once()  # Bob's deliveries are queued, not yet run
    gone = api.delete(f"/api/v1/webhooks/{removed['id']}", headers=bearer(keys.admin))
    assert gone.status_code == 204
    assert api.delete(f"/api/v1/webhooks/{removed['id']}",
                      headers=bearer(keys.admin)).status_code == 404
    statuses = [(e["status"], e["attempts"]) for e in log(api, keys, webhook_id=removed["id"])]
    assert statuses == [("cancelled", 0), ("cancelled", 1)]
    assert run_queued(jobs) == 2  # the removed hook's queued job does nothing
    clock.advance(3600)
    new_contact(api, keys, "cy@acme.example")
    for _ in range(2):
        jobs.relay_once()
        run_queued(jobs)
    paths = [r.path for r in receiver.received]
    assert paths.count("/hooks/leadflow/removed") == 1  # its first, failed attempt only
    assert paths.count("/hooks/leadflow/kept") == 4  # Ann's twice, Bob's, Cy's
    assert count(app, t.webhook_deliveries, t.webhook_deliveries.c.webhook_id ==
                 removed["id"]) == 2
    assert {e["status"] for e in log(api, keys, webhook_id=kept["id"])} == {"delivered"}
    [hook] = [h for h in api.get("/api/v1/webhooks", headers=bearer(keys.admin)).json()
              if h["id"] == removed["id"]]
    assert hook["active"] is False


def test_a_delivery_is_posted_once(api: TestClient, app: App, keys: Keys,
                                   receiver: Receiver) -> None:
    subscribe(api, keys, receiver.url)
    new_contact(api, keys)
    jobs = jobs_of(api)
    report = relay(uow=app.uow, ctx=app.ctx, lease_seconds=60)
    [(delivery_id, lease)] = report.handed_out
    # The same job queued twice (a retried enqueue, a worker that died after posting...).
    jobs.deliver_webhook(delivery_id, lease)
    jobs.deliver_webhook(delivery_id, lease)
    assert run_queued(jobs) == 2
    assert len(receiver.received) == 1
    assert deliver(uow=app.uow, ctx=app.ctx, sender=jobs.sender, delivery_id=delivery_id,
                   lease=lease, retry_seconds=10) == "delivered"
    assert deliver(uow=app.uow, ctx=app.ctx, sender=jobs.sender, delivery_id=delivery_id,
                   lease=lease + 1, retry_seconds=10) == "delivered"
    assert len(receiver.received) == 1
    [row] = rows(app, t.webhook_deliveries)
    assert (row.status, row.attempts) == ("delivered", 1)


def test_two_relays_never_hand_out_the_same_delivery(api: TestClient, app: App, keys: Keys,
                                                     receiver: Receiver) -> None:
    for n in range(3):
        subscribe(api, keys, f"{receiver.url}/{n}")
    for n in range(12):
        new_contact(api, keys, f"c{n}@acme.example")
    reports: list[RelayReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def one_relay() -> None:
        start.wait()
        try:
            reports.append(relay(uow=app.uow, ctx=app.ctx, lease_seconds=60, batch=5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    handed = [d for r in reports for d, _ in r.handed_out]
    assert len(handed) == len(set(handed))
    assert sum(r.relayed for r in reports) == count(app, t.outbox, t.outbox.c.relayed_at
                                                    .is_not(None))
    # Whatever the racing relays left is handed out by the next round, still once each.
    while (more := relay(uow=app.uow, ctx=app.ctx, lease_seconds=60)).relayed:
        handed += [d for d, _ in more.handed_out]
    handed += [d for d, _ in more.handed_out]
    assert sorted(handed) == sorted(r.id for r in rows(app, t.webhook_deliveries))
    assert count(app, t.webhook_deliveries) == 12 * 3


def test_webhook_subscriptions_are_checked(api: TestClient, app: App, keys: Keys) -> None:
    for topics in (["stage.changed", "nonsense"], []):
        reply = api.post("/api/v1/webhooks", headers=bearer(keys.admin),
                         json={"url": "https://crm.example/hook", "topics": topics})
        assert reply.status_code == 422
        assert reply.json()["error"]["field"] == "topics"
    bad_url = api.post("/api/v1/webhooks", headers=bearer(keys.admin),
                       json={"url": "ftp://crm.example/hook", "topics": ["stage.changed"]})
    assert (bad_url.status_code, bad_url.json()["error"]["field"]) == (422, "url")
    assert api.post("/api/v1/webhooks", headers=bearer(keys.write),
                    json={"url": "https://crm.example/hook",
                          "topics": ["stage.changed"]}).status_code == 403
    assert count(app, t.webhooks) == 0


def test_a_job_whose_lease_cannot_cover_the_post_leaves_it(api: TestClient, app: App,
                                                           keys: Keys, receiver: Receiver,
                                                           clock: FakeClock) -> None:
    subscribe(api, keys, receiver.url)
    new_contact(api, keys)
    jobs = jobs_of(api)
    [(delivery_id, lease)] = relay(uow=app.uow, ctx=app.ctx, lease_seconds=60).handed_out
    clock.advance(55)  # 5 s of lease left, a post may take 10: another job may get it soon
    assert deliver(uow=app.uow, ctx=app.ctx, sender=jobs.sender, delivery_id=delivery_id,
                   lease=lease, retry_seconds=10, timeout_seconds=10) == "superseded"
    assert receiver.received == []
    clock.advance(10)  # the lease ran out: the relay hands it out again, and it goes
    [(again, new_lease)] = relay(uow=app.uow, ctx=app.ctx, lease_seconds=60).handed_out
    assert again == delivery_id
    assert deliver(uow=app.uow, ctx=app.ctx, sender=jobs.sender, delivery_id=delivery_id,
                   lease=new_lease, retry_seconds=10, timeout_seconds=10) == "delivered"
    assert len(receiver.received) == 1
