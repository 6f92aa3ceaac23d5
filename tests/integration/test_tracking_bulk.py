"""The bulk path for runs of track/page calls gives what recording them one by one gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.services.tracking import take_messages
from leadflow.services.tracking_messages import Envelope
from tests.conftest import T0, FakeClock

PAGES = ["/blog/a", "/pricing", "/careers", "/product/tour", "/"]
EVENTS = [("Content Download", {"content_stage": "evaluation", "premium": True}),
          ("Demo Request", {}), ("Webinar Attended", {}), ("Newsletter Signup", {}),
          ("Email Opened", {})]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def scenario(rng: random.Random, prefix: str) -> list[list[dict[str, Any]]]:
    """Requests (lists of messages) from a few visitors over weeks, some arriving late."""
    visitors = [f"{prefix}-v{i}" for i in range(rng.randint(1, 4))]
    ts = T0 - 60 * 86400
    messages: list[dict[str, Any]] = []
    for n in range(rng.randint(1, 40)):
        ts += rng.choice([60, 3600, 86400, 5 * 86400])
        who = rng.choice(visitors)
        base: dict[str, Any] = {"anonymousId": who, "messageId": f"{prefix}-m{n}",
                                "timestamp": _iso(ts)}
        roll = rng.random()
        if roll < 0.5:
            messages.append({**base, "type": "page",
                             "properties": {"url": f"https://acme.example{rng.choice(PAGES)}"},
                             "context": {"campaign": {"source": "google"}}})
        elif roll < 0.9:
            name, props = rng.choice(EVENTS)
            messages.append({**base, "type": "track", "event": name, "properties": props})
        elif roll < 0.95:
            messages.append({**base, "type": "identify", "userId": f"{prefix}-u-{who}",
                             "traits": {"email": f"{who}@acme.example", "title": "CTO",
                                        "seniority": "director", "country": "FR"}})
        else:
            messages.append({**base, "type": "group", "groupId": f"{prefix}-g",
                             "traits": {"name": "Acme", "website": f"{prefix}.acme.example",
                                        "industry": "software", "employees": 300}})
    if len(messages) > 3 and rng.random() < 0.4:  # a client that sends an old batch late
        i = rng.randrange(len(messages) - 2)
        messages.append(messages.pop(i))
    if messages and rng.random() < 0.3:
        messages.append(dict(messages[0]))  # a retried message
    requests: list[list[dict[str, Any]]] = []
    while messages:
        size = rng.randint(1, 12)
        requests.append(messages[:size])
        messages = messages[size:]
    return requests


def _state(app: App, prefix: str) -> list[tuple[Any, ...]]:
    c = t.contacts.c
    s = t.contact_scores.c
    with app.engine.connect() as conn:
        ids = {row.value: row.contact_id for row in conn.execute(
            select(t.identities.c.value, t.identities.c.contact_id).where(
                t.identities.c.kind == "anonymous_id",
                t.identities.c.value.like(f"{prefix}-%")))}
        out = []
        for anon in sorted(ids):
            cid = ids[anon]
            row = conn.execute(select(c.stage, c.temperature, s.engagement_score,
                                      s.engagement_t0, s.engagement_breakdown, s.signals,
                                      c.last_event_at).join_from(
                t.contacts, t.contact_scores, s.contact_id == c.id).where(c.id == cid)).one()
            events = conn.execute(select(func.count()).select_from(t.events).where(
                t.events.c.contact_id == cid)).scalar()
            stages = [s for (s,) in conn.execute(select(t.stage_changes.c.to_stage).where(
                t.stage_changes.c.contact_id == cid).order_by(t.stage_changes.c.id))]
            milestones = sorted(k for (k,) in conn.execute(select(t.milestones.c.key).where(
                t.milestones.c.contact_id == cid)))
            topics = sorted(x for (x,) in conn.execute(select(t.outbox.c.topic).where(
                t.outbox.c.contact_id == cid)))
            breakdown = {k: round(v, 9) for k, v in (row.engagement_breakdown or {}).items()}
            out.append((anon.split("-", 1)[1], row.stage, row.temperature,
                        round(row.engagement_score, 9), row.engagement_t0, breakdown,
                        row.signals, row.last_event_at, events, stages, milestones, topics))
        return out


def test_bulk_path_equals_one_by_one(app: App, clock: FakeClock) -> None:
    rng = random.Random(20261122)
    for n in range(30):
        requests = scenario(rng, f"s{n}")
        for bulk, prefix in ((True, f"b{n}"), (False, f"o{n}")):
            for request in requests:
                renamed = [_rename(m, f"s{n}", prefix) for m in request]
                take_messages(uow=app.uow(), ctx=app.ctx, messages=renamed,
                              envelope=Envelope(received_at=clock.now()), bulk=bulk)
        assert _state(app, f"b{n}") == _state(app, f"o{n}"), f"scenario {n}"


def _rename(message: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    out = dict(message)
    for key in ("anonymousId", "userId", "messageId", "groupId"):
        if isinstance(out.get(key), str):
            out[key] = out[key].replace(old, new, 1)
    traits = out.get("traits")
    if traits and "email" in traits:
        out["traits"] = {**traits, "email": traits["email"].replace(old, new, 1)}
    if traits and "website" in traits:
        out["traits"] = {**traits, "website": traits["website"].replace(old, new, 1)}
    return out
