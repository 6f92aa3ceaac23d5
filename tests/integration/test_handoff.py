"""Hand-off to sales and follow-up, on SQLite and PostgreSQL: who gets a new prospect, when
its follow-up is due, reminders, escalation, the breach policy, accept and reject."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from leadflow.adapters.config_file import parse_config_text
from leadflow.adapters.db import tables as t
from leadflow.adapters.db.work_queues import falling_through_cracks
from leadflow.bootstrap import App
from leadflow.domain.errors import MoveNotAllowed
from leadflow.services import followup, moves
from leadflow.services.assignments import assign_unowned, reassign
from leadflow.services.events import EventIn, record_event
from leadflow.services.users import create_user, get_user, principal_of, update_user
from tests.conftest import T0, FakeClock, good_fit_contact

HOUR = 3600.0
DEFAULT_YAML = (Path(__file__).resolve().parents[2] / "src/leadflow/default_pipeline.yaml"
                ).read_text()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


Variant = Callable[[str, str], App]


@pytest.fixture
def with_sales(app: App, clock: FakeClock) -> Iterator[Variant]:
    """Apps on the same database with the sales section of the pipeline changed."""
    made: list[App] = []

    def variant(old: str, new: str) -> App:
        assert old in DEFAULT_YAML
        config = parse_config_text(DEFAULT_YAML.replace(old, new), source="test")
        made.append(App(app.settings, clock=clock, config=config))
        return made[-1]
    yield variant
    for instance in made:
        if "engine" in instance.__dict__:
            instance.engine.dispose()


def rep(app: App, email: str, **fields: Any) -> int:
    return create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email.split("@")[0],
                       role=fields.pop("role", "sales_rep"), **fields).id


def make_prospect(app: App, email: str, **fields: Any) -> int:
    c = good_fit_contact(app, email=email, **fields)
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request",
                                                           contact_id=c.id))
    return c.id


def contact_row(app: App, contact_id: int) -> Any:
    with app.engine.connect() as conn:
        return conn.execute(select(t.contacts).where(t.contacts.c.id == contact_id)).one()


def open_tasks(app: App, contact_id: int) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.tasks).where(
            t.tasks.c.contact_id == contact_id, t.tasks.c.done_at.is_(None))).all())


def audits(app: App, contact_id: int, action: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.audit).where(
            t.audit.c.contact_id == contact_id, t.audit.c.action == action)).all())


def outbox(app: App, topic: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.outbox).where(t.outbox.c.topic == topic)).all())


def test_a_new_prospect_gets_an_owner_and_a_follow_up_within_its_sla(app: App) -> None:
    generalist = rep(app, "gil@sales.example")
    french = rep(app, "fanny@sales.example", territories=["FR"])
    cid = make_prospect(app, "ann@acme.example")
    row = contact_row(app, cid)
    assert (row.stage, row.temperature, row.owner_id) == ("prospect", "hot", french)
    [task] = open_tasks(app, cid)
    assert task.owner_id == french
    assert task.due_at == T0 + 4 * HOUR  # hot: 4 working hours, Monday 09:00 → 13:00
    [assigned] = audits(app, cid, "assigned")
    assert assigned.details["rule"] == "territory_country"
    assert assigned.details["temperature"] == "hot"
    [message] = outbox(app, "contact.assigned")
    assert message.payload["owner"]["email"] == "fanny@sales.example"
    assert generalist != french


def test_sla_due_times_follow_working_hours_and_holidays(with_sales: Variant,
                                                        clock: FakeClock) -> None:
    holiday = with_sales("  holidays: []", '  holidays: ["2026-03-09"]')
    rep(holiday, "rob@sales.example")
    clock.t = at("2026-03-06T16:00")  # a Friday, one working hour left
    cid = make_prospect(holiday, "ann@acme.example")
    [task] = open_tasks(holiday, cid)
    # 1 h on Friday, Monday the 9th is a holiday, 3 h on Tuesday.
    assert task.due_at == at("2026-03-10T12:00")


def test_an_out_of_office_rep_gets_none_and_catches_up(app: App, clock: FakeClock) -> None:
    ann, bob = rep(app, "ann@sales.example"), rep(app, "bob@sales.example")
    update_user(uow=app.uow(), ctx=app.ctx, ref=bob, changes={"away_until": T0 + 7 * 86400})
    owners = [contact_row(app, make_prospect(app, f"p{i}@acme.example")).owner_id
              for i in range(4)]
    assert owners == [ann] * 4
    clock.advance(8 * 86400)  # Bob is back
    owners = [contact_row(app, make_prospect(app, f"q{i}@acme.example")).owner_id
              for i in range(6)]
    assert owners == [bob] * 4 + [ann, bob]  # he catches up, then they alternate


def test_the_sweep_hands_off_what_bulk_paths_made_prospects_by_weight(app: App) -> None:
    made = [make_prospect(app, f"p{i}@acme.example") for i in range(60)]
    assert {contact_row(app, c).owner_id for c in made} == {None}  # no rep yet
    ids = [rep(app, f"r{w}@sales.example", weight=w) for w in (1, 2, 3)]
    assert assign_unowned(uow_factory=app.uow, ctx=app.ctx) == 60
    owners = [contact_row(app, c).owner_id for c in made]
    assert [owners.count(i) for i in ids] == [10, 20, 30]
    assert all(len(open_tasks(app, c)) == 1 for c in made)
    assert assign_unowned(uow_factory=app.uow, ctx=app.ctx) == 0


def test_accept_sets_sal_and_reject_recycles_to_marketing(app: App) -> None:
    rob = principal_of(get_user(uow=app.uow(), ref=rep(app, "rob@sales.example")),
                       scope="write")
    first, second = make_prospect(app, "a@acme.example"), make_prospect(app, "b@acme.example")
    eve = principal_of(get_user(uow=app.uow(), ref=rep(app, "eve@sales.example")),
                       scope="write")
    with pytest.raises(MoveNotAllowed, match="only its owner"):
        followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=first, principal=eve)
    followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=first, principal=rob)
    with app.engine.connect() as conn:
        sal = conn.execute(select(t.milestones).where(t.milestones.c.contact_id == first,
                                                      t.milestones.c.key == "sal")).one()
    assert sal.actor == "user:rob@sales.example"
    with pytest.raises(MoveNotAllowed, match="accepted already"):
        followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=first, principal=rob)
    followup.reject(uow=app.uow(), ctx=app.ctx, contact_id=second, reason="a student",
                    principal=rob)
    row = contact_row(app, second)
    assert (row.stage, row.owner_id) == ("lead", None)
    assert row.recycled_at is not None
    assert open_tasks(app, second) == []
    with app.engine.connect() as conn:
        last = conn.execute(select(t.stage_changes).where(
            t.stage_changes.c.contact_id == second).order_by(t.stage_changes.c.id.desc())
        ).first()
    assert last is not None
    assert last.reason == "rejected by sales: a student"


def test_a_done_follow_up_opens_the_next_so_none_falls_through(app: App,
                                                              clock: FakeClock) -> None:
    rep(app, "rob@sales.example")
    cid = make_prospect(app, "a@acme.example")
    [task] = open_tasks(app, cid)
    clock.advance(HOUR)
    following = followup.complete_task(uow=app.uow(), ctx=app.ctx, task_id=task.id,
                                       outcome="left a voicemail", actor="user:rob")
    assert following is not None
    assert following.due_at == T0 + HOUR + 3 * 86400  # cadence: 3 working days, Thursday
    [still] = open_tasks(app, cid)
    assert still.id == following.id


def test_prospects_without_a_next_task_show_in_the_cracks_list(app: App) -> None:
    rob = rep(app, "rob@sales.example")
    cid = make_prospect(app, "a@acme.example")
    with app.uow() as uow:
        uow.tasks.close_open(cid, at=T0, by="test", outcome="closed by hand")
        uow.commit()
    with app.engine.connect() as conn:
        found = falling_through_cracks(conn, app.config, owners=None)
        theirs = falling_through_cracks(conn, app.config, owners=(rob + 1,))
    assert [c["id"] for c in found["without_open_task"]] == [cid]
    assert theirs["without_open_task"] == []


def test_overdue_tasks_are_reminded_then_escalated_once(app: App, clock: FakeClock) -> None:
    rob = rep(app, "rob@sales.example", team="east")
    rep(app, "mia@sales.example", role="sales_manager", team="east", weight=0.001)
    rep(app, "wes@sales.example", role="sales_manager", team="west", weight=0.001)
    cid = make_prospect(app, "a@acme.example")
    assert contact_row(app, cid).owner_id == rob
    clock.advance(3.5 * HOUR)  # 30 minutes before due
    report = followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    assert (report.reminded, report.escalated) == (1, 0)
    clock.advance(HOUR)  # 30 minutes overdue
    report = followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    assert (report.reminded, report.escalated) == (0, 1)
    [escalation] = outbox(app, "task.overdue")
    assert [m["email"] for m in escalation.payload["managers"]] == ["mia@sales.example"]
    assert len(audits(app, cid, "escalated")) == 1
    again = followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    assert (again.reminded, again.escalated) == (0, 0)


def test_a_long_breach_recycles_when_the_policy_says_so(with_sales: Variant,
                                                       clock: FakeClock) -> None:
    strict = with_sales("  recycle_after: null", "  recycle_after: 2d")
    rep(strict, "rob@sales.example")
    cid = make_prospect(strict, "a@acme.example")
    clock.advance(86400)  # due at 13:00 Monday; Tuesday 09:00: 4 working hours late
    assert followup.sweep_follow_ups(uow_factory=strict.uow, ctx=strict.ctx).recycled == 0
    clock.t = at("2026-03-04T13:30")  # two working days and a half hour late
    assert followup.sweep_follow_ups(uow_factory=strict.uow, ctx=strict.ctx).recycled == 1
    row = contact_row(strict, cid)
    assert (row.stage, row.owner_id) == ("lead", None)
    with strict.engine.connect() as conn:
        actors = conn.execute(select(t.stage_changes.c.actor).where(
            t.stage_changes.c.contact_id == cid)).scalars().all()
    assert actors[-1] == "policy:sla_breach"


def test_reassignment_moves_open_tasks_and_says_why(app: App) -> None:
    rob, eve = rep(app, "rob@sales.example"), rep(app, "eve@sales.example", weight=0.01)
    cid = make_prospect(app, "a@acme.example")
    assert contact_row(app, cid).owner_id == rob
    reassign(uow=app.uow(), ctx=app.ctx, contact_id=cid, owner="eve@sales.example",
             reason="Eve speaks French", actor="user:mia")
    assert contact_row(app, cid).owner_id == eve
    assert [task.owner_id for task in open_tasks(app, cid)] == [eve]
    [entry] = audits(app, cid, "reassigned")
    assert entry.details["reason"] == "Eve speaks French"
    disqualified = moves.disqualify(uow=app.uow(), ctx=app.ctx, contact_id=cid,
                                    reason="competitor", actor="user:eve")
    assert disqualified.stage == "disqualified"
    assert open_tasks(app, cid) == []


def test_escalation_reaches_every_overdue_task_past_a_batch(app: App, clock: FakeClock) -> None:
    rep(app, "rob@sales.example")
    made = [make_prospect(app, f"p{i}@acme.example") for i in range(5)]
    clock.advance(86400)
    report = followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx, batch_size=2)
    assert report.escalated == 5
    assert all(len(audits(app, c, "escalated")) == 1 for c in made)


def test_a_task_already_overdue_gets_no_due_soon_reminder(app: App, clock: FakeClock) -> None:
    rep(app, "rob@sales.example")
    make_prospect(app, "a@acme.example")
    clock.advance(86400)  # overdue before any sweep ran
    report = followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    assert (report.reminded, report.escalated) == (0, 1)


def test_reassignment_takes_the_open_deals_along(app: App) -> None:
    from leadflow.services.opportunities import create_opportunity

    rob, eve = rep(app, "rob@sales.example"), rep(app, "eve@sales.example", weight=0.01)
    cid = make_prospect(app, "a@acme.example")
    deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=cid, name="Acme",
                              amount=1000, currency="EUR", actor="user:rob", owner_id=rob)
    reassign(uow=app.uow(), ctx=app.ctx, contact_id=cid, owner=eve, reason="holidays",
             actor="user:mia")
    with app.engine.connect() as conn:
        owner = conn.execute(select(t.opportunities.c.owner_id).where(
            t.opportunities.c.id == deal.id)).scalar()
    assert owner == eve


def test_a_deal_on_a_lead_nobody_owned_goes_to_sales(app: App) -> None:
    from leadflow.services.opportunities import create_opportunity

    rob = rep(app, "rob@sales.example")
    c = good_fit_contact(app, email="lee@acme.example")
    assert c.id is not None
    create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=c.id, name="Acme",
                       amount=1000, currency="EUR", actor="user:admin")
    row = contact_row(app, c.id)
    assert (row.stage, row.owner_id) == ("opportunity", rob)
    assert len(open_tasks(app, c.id)) == 1


def test_a_manager_reassigns_within_their_team_only(app: App) -> None:
    from leadflow.domain.errors import Forbidden

    rep(app, "rob@sales.example", team="east")
    west = rep(app, "wes@sales.example", team="west", weight=0.001)
    mia = get_user(uow=app.uow(), ref=rep(app, "mia@sales.example", role="sales_manager",
                                          team="east", weight=0.001))
    cid = make_prospect(app, "a@acme.example")
    manager = principal_of(mia, scope="write", team_ids=frozenset({1, mia.id}))
    with pytest.raises(Forbidden, match="not in your team"):
        reassign(uow=app.uow(), ctx=app.ctx, contact_id=cid, owner=west, reason="x",
                 actor=manager.name, principal=manager)


def test_the_queue_is_hot_first_then_by_score_page_by_page(app: App) -> None:
    from leadflow.adapters.db.work_queues import rep_queue

    rob = rep(app, "rob@sales.example")
    hot_low, hot_high = make_prospect(app, "h1@acme.example"), make_prospect(app, "h2@acme.example")
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="webinar_attended",
                                                           contact_id=hot_high))
    cooler = []
    for email, extra in (("n1@acme.example", 0), ("n2@acme.example", 2)):
        c = good_fit_contact(app, email=email)
        assert c.id is not None
        for _ in range(1 + extra):
            record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
                type="content_download", contact_id=c.id, premium=True))
        cooler.append(c.id)
    temps = {cid: contact_row(app, cid).temperature for cid in [hot_low, hot_high, *cooler]}
    assert temps[hot_low] == temps[hot_high] == "hot"
    assert temps[cooler[0]] == temps[cooler[1]] != "hot"
    expected = [hot_high, hot_low, cooler[1], cooler[0]]
    with app.engine.connect() as conn:
        whole = rep_queue(conn, app.config, owner_id=rob, now=T0, limit=10)
        pages = [rep_queue(conn, app.config, owner_id=rob, now=T0, limit=2, offset=o)
                 for o in (0, 1, 3, 4)]
    assert [p["id"] for p in whole["prospects"]] == expected
    assert whole["total"] == 4
    assert [[p["id"] for p in page["prospects"]] for page in pages] == [
        expected[0:2], expected[1:3], expected[3:4], []]
    assert all(p["open_tasks"] == 1 for p in whole["prospects"])


def test_owners_and_managers_get_reminder_and_escalation_emails(app: App,
                                                               clock: FakeClock) -> None:
    from email import message_from_bytes
    from email.policy import default as default_policy

    from leadflow.entrypoints.worker import Jobs

    rep(app, "rob@sales.example", team="east")
    rep(app, "mia@sales.example", role="sales_manager", team="east", weight=0.001)
    make_prospect(app, "a@acme.example")
    jobs = Jobs(app)
    outbox_dir = app.settings.data_dir / "mail-outbox"

    def mails() -> list[Any]:
        jobs.relay_once()
        while (job := jobs.huey.dequeue()) is not None:
            jobs.huey.execute(job)
        return sorted((message_from_bytes(f.read_bytes(), policy=default_policy)
                       for f in outbox_dir.glob("*.eml")), key=lambda m: str(m["To"]))

    clock.advance(3.5 * HOUR)
    followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    [reminder] = mails()
    assert "rob@sales.example" in str(reminder["To"])
    assert str(reminder["Subject"]).startswith("Due 2026-03-02 13:00 UTC: Follow up")
    clock.advance(HOUR)
    followup.sweep_follow_ups(uow_factory=app.uow, ctx=app.ctx)
    escalation = [m for m in mails() if str(m["Subject"]).startswith("Overdue")]
    assert ["mia@sales.example" in str(m["To"]) for m in escalation] == [True]
