"""Every stage change, milestone and temperature change leaves its webhook message in the
outbox, written in the transaction that made the change; erasure leaves no personal data there."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.domain.engagement import EngagementState
from leadflow.domain.errors import NotFound
from leadflow.services.contacts import ContactIn, create_manual_lead
from leadflow.services.events import EventIn, record_event, record_events
from leadflow.services.moves import erase, move_stage
from leadflow.services.temperatures import refresh_expired_temperatures
from tests.conftest import FakeClock, good_fit_contact


def outbox(app: App) -> list[tuple[str, int | None, dict[str, Any]]]:
    with app.engine.connect() as conn:
        return [(r.topic, r.contact_id, r.payload) for r in conn.execute(
            select(t.outbox).order_by(t.outbox.c.id))]


def stage_changes(app: App) -> list[tuple[int, str | None, str]]:
    with app.engine.connect() as conn:
        return [(r.contact_id, r.from_stage, r.to_stage) for r in conn.execute(
            select(t.stage_changes).order_by(t.stage_changes.c.id))]


def test_each_stage_change_and_milestone_has_its_message(app: App, clock: FakeClock) -> None:
    ann = good_fit_contact(app)
    for kind in ("demo_request", "webinar_attended", "content_download"):
        clock.advance(60)
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind,
                                                               email="ann@example.com"))
    clock.advance(60)
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=ann.id or 0, to_stage="lead",
               reason="not ready yet")
    messages = outbox(app)
    stage_messages = [(m["contact"]["id"], m["from_stage"], m["to_stage"])
                      for topic, _, m in messages if topic == "stage.changed"]
    assert stage_messages == stage_changes(app)  # one message per recorded change, in order
    assert [(f, to) for _, f, to in stage_messages] == [
        (None, "suspect"), ("suspect", "prospect"), ("prospect", "lead")]
    milestones = [m["milestone"] for topic, _, m in messages if topic == "milestone.reached"]
    with app.engine.connect() as conn:
        stored = sorted(conn.execute(select(t.milestones.c.key)).scalars())
    assert sorted(milestones) == stored
    assert "mql" in stored
    assert all(cid == ann.id for _, cid, _ in messages)
    temps = [(m["from_temperature"], m["to_temperature"]) for topic, _, m in messages
             if topic == "temperature.changed"]
    assert temps
    assert all(a != b for a, b in temps)


def test_a_rolled_back_change_leaves_no_message(app: App) -> None:
    good_fit_contact(app)
    before = outbox(app)
    with pytest.raises(NotFound):  # the batch is atomic: the first event's changes go too
        record_events(uow=app.uow(), ctx=app.ctx, events=[
            EventIn(type="demo_request", email="new@x.io"),
            EventIn(type="demo_request", contact_id=999)])
    assert outbox(app) == before


def test_the_temperature_sweep_writes_its_changes(app: App, clock: FakeClock) -> None:
    lead = create_manual_lead(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="t@x.io"),
                              reason="a call")
    threshold = app.config.temperature.lead_warm_engagement
    with app.uow() as uow:
        c = uow.contacts.get(lead.id or 0)
        assert c is not None
        c.engagement = EngagementState(score=threshold * 2, t0=clock.now())
        c.temperature_until = clock.now() - 1
        uow.contacts.save(c)
        uow.commit()
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    clock.advance(365 * 86400)  # the engagement has decayed: warm → cold
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    changes = [(m["from_temperature"], m["to_temperature"]) for topic, _, m in outbox(app)
               if topic == "temperature.changed"]
    assert changes[-2:] == [(changes[-2][0], "warm"), ("warm", "cold")]


def test_erasure_leaves_no_personal_data_in_the_outbox(app: App, clock: FakeClock) -> None:
    ann = good_fit_contact(app)
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request",
                                                           email="ann@example.com"))
    assert "ann@example.com" in str(outbox(app))
    clock.advance(60)
    erase(uow=app.uow(), ctx=app.ctx, contact_id=ann.id or 0, reason="asked to be forgotten")
    assert "ann@example.com" not in str(outbox(app))
    last = outbox(app)[-1]
    assert last[0] == "stage.changed"
    assert last[2]["to_stage"] == app.config.first_stage("erased").key
    assert last[2]["contact"]["email"] is None
