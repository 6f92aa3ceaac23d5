"""Opportunities move their contacts: a deal makes an opportunity, a won deal a customer, a lost
deal goes back to nurture or out, and nobody is ever erased by it. Each test runs on SQLite and
on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.sales_read_models import SqlSalesReads
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.config import parse_config
from leadflow.domain.errors import Conflict, InvalidInput, MoveNotAllowed
from leadflow.domain.model import Contact
from leadflow.domain.sales import Opportunity
from leadflow.domain.users import OPERATOR, Principal, User
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import disqualify
from leadflow.services.opportunities import (
    create_opportunity,
    list_opportunities,
    lose_opportunity,
    update_opportunity,
    win_opportunity,
)
from leadflow.services.users import create_user
from tests.conftest import FakeClock, good_fit_contact


def load(app: App, contact_id: int | None) -> Contact:
    assert contact_id is not None
    with app.uow() as uow:
        contact = uow.contacts.get(contact_id)
    assert contact is not None
    return contact


def audit_actions(app: App, contact_id: int) -> list[str]:
    with app.uow() as uow:
        return [e["action"] for e in uow.history.audit_entries(contact_id)]


def counts(app: App) -> dict[str, int]:
    with app.engine.connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in t.metadata.sorted_tables if table.name != "config_versions"}


def rep(app: App, email: str = "rita@example.com") -> User:
    return create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email.split("@")[0],
                       role="sales_rep")


def prospect(app: App, clock: FakeClock, email: str = "ann@example.com") -> Contact:
    """A good-fit contact who asked for a demo: a prospect, handed off to a rep if any."""
    c = good_fit_contact(app, email)
    clock.advance(60)
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request", contact_id=c.id))
    clock.advance(60)
    got = load(app, c.id)
    assert got.stage == "prospect"
    return got


def deal(app: App, contact: Contact, **fields: Any) -> Opportunity:
    assert contact.id is not None
    args: dict[str, Any] = {"name": "Acme rollout", "amount": 12_000.0, "currency": "EUR",
                            "expected_close": None, "deal_stage": None, "probability": None,
                            "next_step": None, "actor": "rita", "owner_id": None}
    args.update(fields)
    return create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=contact.id, **args)


def test_a_deal_makes_an_opportunity_and_a_won_deal_a_customer(app: App,
                                                                 clock: FakeClock) -> None:
    rita = rep(app)
    c = prospect(app, clock)
    assert c.owner_id == rita.id
    opp = deal(app, c, amount=5000, currency="usd", expected_close="2026-06-30",
               next_step="send the proposal")
    assert (opp.status, opp.currency, opp.deal_stage, opp.probability) == (
        "open", "USD", "discovery", 0.1)
    assert opp.owner_id == rita.id  # the contact's owner
    assert opp.account_id == c.account_id is not None
    assert opp.expected_close == "2026-06-30"
    got = load(app, c.id)
    assert got.stage == "opportunity"
    with app.uow() as uow:
        assert uow.opportunities.get(opp.id) == opp
        changes = uow.history.stage_changes(c.id or 0)
        timeline = uow.events.timeline(c.id or 0, 10)
    assert changes[-1].to_stage == "opportunity"
    assert changes[-1].actor == "rule:opportunity"  # the deal_created event moved it
    assert "deal_created" in [e.shape.type for e in timeline]
    assert "opportunity_created" in audit_actions(app, c.id or 0)

    clock.advance(3600)
    won = win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id,
                          actor="rita")
    assert (won.status, won.closed_at) == ("won", clock.now())
    assert load(app, c.id).stage == "customer"
    assert "opportunity_won" in audit_actions(app, c.id or 0)
    with pytest.raises(Conflict):  # a closed deal stays closed
        win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id, actor="rita")


def test_where_custom_rules_do_not_move_the_contact_the_deal_does(
        app: App, clock: FakeClock, settings: Settings) -> None:
    raw = copy.deepcopy(app.config.raw)
    for stage in raw["stages"]:
        if stage["key"] in ("opportunity", "customer"):
            stage["enter_when"] = {"engagement_at_least": 100_000}  # never, in practice
    custom = App(settings, clock=clock, config=parse_config(raw))
    try:
        c = prospect(custom, clock)
        opp = deal(custom, c)
        got = load(custom, c.id)
        assert got.stage == "opportunity"
        with custom.uow() as uow:
            last = uow.history.stage_changes(c.id or 0)[-1]
        assert (last.actor, last.reason) == ("rita", f"deal {opp.id} created")
        win_opportunity(uow_factory=custom.uow, ctx=custom.ctx, opportunity_id=opp.id,
                        actor="rita")
        assert load(custom, c.id).stage == "customer"
        with custom.uow() as uow:
            last = uow.history.stage_changes(c.id or 0)[-1]
        assert last.reason == f"deal {opp.id} won"
    finally:
        custom.engine.dispose()


@pytest.mark.parametrize(("then", "stage"), [("nurture", "lead"),
                                             ("disqualify", "disqualified")])
def test_a_lost_deal_records_its_reason_and_never_erases(app: App, clock: FakeClock,
                                                         then: str, stage: str) -> None:
    rep(app)
    c = prospect(app, clock)
    opp = deal(app, c)
    clock.advance(60)
    lost = lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id,
                            reason="competitor", then=then, note="went with RivalCRM",
                            actor="rita")
    assert (lost.status, lost.lost_reason, lost.closed_at) == ("lost", "competitor",
                                                               clock.now())
    got = load(app, c.id)
    assert got.stage == stage
    assert got.email == "ann@example.com"  # the person is still known, not erased
    with app.uow() as uow:
        assert uow.opportunities.get(opp.id) == lost
        last = uow.history.stage_changes(c.id or 0)[-1]
        entry = next(e for e in uow.history.audit_entries(c.id or 0)
                     if e["action"] == "opportunity_lost")
    assert last.reason == "lost deal: competitor"
    assert entry["details"]["lost_reason"] == "competitor"
    assert entry["details"]["then"] == then
    assert entry["details"]["note"] == "went with RivalCRM"
    if then == "nurture":
        assert got.recycled_at == clock.now()


def test_a_lost_deal_follows_the_configured_default_and_waits_for_other_open_deals(
        app: App, clock: FakeClock) -> None:
    c = prospect(app, clock)
    first, second = deal(app, c, name="Licences"), deal(app, c, name="Services")
    lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=first.id,
                     reason="price", then=None, note=None, actor="rita")
    assert load(app, c.id).stage == "opportunity"  # a deal is still open
    lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=second.id,
                     reason="timing", then=None, note=None, actor="rita")
    assert app.config.sales.lost_next == "nurture"
    assert load(app, c.id).stage == "lead"


def test_bad_input_is_refused_naming_the_field_with_nothing_written(app: App,
                                                                    clock: FakeClock) -> None:
    c = prospect(app, clock)
    opp = deal(app, c)
    before = counts(app)
    with pytest.raises(InvalidInput) as bad_reason:
        lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id,
                         reason="bad_luck", then=None, note=None, actor="rita")
    assert bad_reason.value.field == "lost_reason"
    assert "competitor" in bad_reason.value.message  # says what is configured
    with pytest.raises(InvalidInput) as bad_currency:
        deal(app, c, currency="XYZ")
    assert bad_currency.value.field == "currency"
    for fields, name in (({"amount": -1}, "amount"), ({"expected_close": "30/06/2026"},
                                                      "expected_close"),
                         ({"deal_stage": "dreaming"}, "deal_stage"),
                         ({"probability": 1.5}, "probability"), ({"name": " "}, "name")):
        with pytest.raises(InvalidInput) as refused:
            deal(app, c, **fields)
        assert refused.value.field == name
    with pytest.raises(InvalidInput) as bad_then:
        lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id,
                         reason="price", then="erase", note=None, actor="rita")
    assert bad_then.value.field == "then"
    with pytest.raises(InvalidInput) as bad_change:
        update_opportunity(uow=app.uow(), ctx=app.ctx, opportunity_id=opp.id,
                           changes={"currency": "XYZ"}, actor="rita")
    assert bad_change.value.field == "currency"
    assert counts(app) == before
    with app.uow() as uow:
        assert uow.opportunities.get(opp.id) == opp


def test_changing_the_deal_stage_brings_its_default_probability(app: App,
                                                                clock: FakeClock) -> None:
    c = prospect(app, clock)
    opp = deal(app, c)
    assert opp.probability == 0.1
    clock.advance(60)
    moved = update_opportunity(uow=app.uow(), ctx=app.ctx, opportunity_id=opp.id,
                               changes={"deal_stage": "negotiation", "amount": 15_000},
                               actor="rita")
    assert (moved.deal_stage, moved.probability, moved.amount) == ("negotiation", 0.7, 15_000)
    assert moved.updated_at == clock.now()
    judged = update_opportunity(uow=app.uow(), ctx=app.ctx, opportunity_id=opp.id,
                                changes={"deal_stage": "proposal", "probability": 0.55},
                                actor="rita")
    assert (judged.deal_stage, judged.probability) == ("proposal", 0.55)  # the rep's word wins
    with app.uow() as uow:
        assert uow.opportunities.get(opp.id) == judged
        entries = [e for e in uow.history.audit_entries(c.id or 0)
                   if e["action"] == "opportunity_updated"]
    assert entries[0]["details"]["changes"] == {"deal_stage": ["discovery", "negotiation"],
                                                "probability": [0.1, 0.7],
                                                "amount": [12_000.0, 15_000.0]}
    win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opp.id, actor="rita")
    with pytest.raises(Conflict):  # only open deals change
        update_opportunity(uow=app.uow(), ctx=app.ctx, opportunity_id=opp.id,
                           changes={"amount": 1}, actor="rita")


def test_no_deal_for_a_disqualified_contact(app: App, clock: FakeClock) -> None:
    c = prospect(app, clock)
    disqualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="competitor")
    before = counts(app)
    with pytest.raises(MoveNotAllowed):
        deal(app, c)
    assert counts(app) == before


def test_a_rep_lists_the_deals_they_own_or_whose_contact_they_own(
        app: App, clock: FakeClock) -> None:
    rita, sam = rep(app, "rita@example.com"), rep(app, "sam@example.com")
    mine = prospect(app, clock, "ann@example.com")
    theirs = prospect(app, clock, "bob@example.com")
    assert {mine.owner_id, theirs.owner_id} == {rita.id, sam.id}
    if mine.owner_id != rita.id:
        mine, theirs = theirs, mine
    own = deal(app, mine, name="Own")
    given = deal(app, theirs, name="Given to Rita", owner_id=rita.id)
    other = deal(app, theirs, name="Sam's")
    as_rita = Principal(name="rita", role="sales_rep", scope="write", user_id=rita.id)
    with app.engine.connect() as conn:
        reads = SqlSalesReads(conn)
        items, total = list_opportunities(reads=reads, ctx=app.ctx, principal=as_rita)
        assert total == 2
        assert {i["id"] for i in items} == {own.id, given.id}
        items, total = list_opportunities(reads=reads, ctx=app.ctx, principal=OPERATOR,
                                          status="open", limit=2)
        assert total == 3
        assert [i["id"] for i in items] == [other.id, given.id]  # newest first
        assert items[0]["contact_email"] == "bob@example.com"
        with pytest.raises(InvalidInput) as bad:
            list_opportunities(reads=reads, ctx=app.ctx, principal=OPERATOR, status="maybe")
        assert bad.value.field == "status"
