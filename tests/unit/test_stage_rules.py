"""The default pipeline rules of DESIGN §1, one by one, and the properties they keep:
automatic moves never go backwards, a recycled contact is promoted only by new evidence, and a
jump is one StageChange.

The pure tests drive the domain the way ``services.events.record_in`` does; the ones that take
``app`` go through the services on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadflow.adapters.config_file import load_config
from leadflow.bootstrap import App
from leadflow.domain.engagement import replay
from leadflow.domain.errors import MoveNotAllowed
from leadflow.domain.fit import score_fit
from leadflow.domain.lifecycle import (
    Outcome,
    apply_event_in_order,
    evaluate,
    move,
    rebuild_from_history,
    recycle_now,
    refresh_temperature,
)
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact, StageChange
from leadflow.domain.qualification import evaluate as evaluate_qualification
from leadflow.services.contacts import AccountIn, ContactIn, create_contact, update_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import erase, move_stage, recycle
from tests.conftest import T0, FakeClock, good_fit_contact

CFG = load_config(None)
DAY = 86400.0
H = CFG.engagement.half_life_seconds

SOFTWARE = Account(id=1, name="Acme", industry="software", employees=300, country="FR")
SHOP = Account(id=2, name="Corner shop", industry="retail", employees=4, country="FR")


@dataclass
class Sim:
    """One contact, fed events as record_in feeds them (late ones rebuild the history)."""

    contact: Contact
    history: list[tuple[float, int, EventShape]] = field(default_factory=list)
    changes: list[StageChange] = field(default_factory=list)
    now: float = T0 - 1000 * DAY  # the clock: the latest time seen so far

    def event(self, ts: float, kind: str, **shape: Any) -> Outcome:
        s = EventShape(type=kind, **shape)
        self.history.append((ts, len(self.history), s))
        self.now = max(self.now, ts)
        c = self.contact
        if c.last_event_at is None or ts >= c.last_event_at:
            apply_event_in_order(c, ts=ts, shape=s, config=CFG)
        else:
            rebuild_from_history(c, [(t, sh) for t, _, sh in sorted(self.history,
                                                                   key=lambda x: x[:2])], CFG)
        out = evaluate(c, CFG, at=ts, now=self.now)
        self.changes.extend(out.stage_changes)
        return out

    def recycle(self, at: float) -> StageChange:
        """What services.moves.recycle does, by hand."""
        self.now = max(self.now, at)
        recycle_now(self.contact, CFG, now=self.now)
        change = move(self.contact, CFG.first_stage("interest").key, at=self.now, actor="user",
                      config=CFG, reason="not now", kind="backward")
        refresh_temperature(self.contact, CFG, now=self.now)
        return change


def person(*, email: str | None = "ann@example.com", phone: str | None = None,
           seniority: str | None = "director", country: str | None = "FR",
           account: Account | None = SOFTWARE) -> Sim:
    c = Contact(id=1, stage="suspect", email=email, phone=phone, seniority=seniority,
                country=country, account_id=account.id if account else None,
                stage_entered_at=T0 - 400 * DAY)
    c.fit = score_fit(c, account, CFG.fit)
    return Sim(c)


# ------------------------------------------------------------------ one test per default rule


def test_suspect_on_first_seen(app: App) -> None:
    created = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(first_name="Ann"))
    tracked = record_event(uow=app.uow(), ctx=app.ctx,
                           event=EventIn(type="page_view", anonymous_id="visitor-1", url="/"))
    assert tracked.created_contact
    with app.uow() as uow:
        for cid in (created.id, tracked.contact_id):
            assert cid is not None
            contact = uow.contacts.get(cid)
            assert contact is not None
            assert contact.stage == "suspect"
            (first,) = uow.history.stage_changes(cid)
            assert (first.from_stage, first.to_stage, first.reason) == (None, "suspect",
                                                                         "first seen")
            assert first.config_version == app.config.config_version


@pytest.mark.parametrize("kind", ["form_submitted", "newsletter_signup", "content_download",
                                  "webinar_registered", "webinar_attended"])
def test_lead_needs_contact_details_and_an_interest_event(kind: str) -> None:
    sim = person(account=None, seniority=None)
    sim.event(T0, "page_view", url="/blog")
    assert sim.contact.stage == "suspect"
    sim.event(T0 + 60, kind)
    assert sim.contact.stage == "lead"
    (change,) = sim.changes
    assert (change.from_stage, change.to_stage, change.actor, change.kind) == (
        "suspect", "lead", "rule:lead", "forward")
    assert change.at == T0 + 60
    assert change.config_version == CFG.config_version


def test_a_phone_number_is_contact_details_too() -> None:
    sim = person(email=None, phone="+33 1 23 45 67 89", account=None)
    sim.event(T0, "webinar_registered")
    assert sim.contact.stage == "lead"


def test_interest_without_contact_details_stays_suspect() -> None:
    sim = person(email=None, account=None)
    sim.event(T0, "form_submitted")
    sim.event(T0 + 1, "content_download", premium=True)
    assert sim.contact.stage == "suspect"
    assert sim.changes == []


def test_mql_milestone_at_engagement_40() -> None:
    sim = person(account=None)
    for _ in range(3):
        sim.event(T0, "form_submitted")  # 30 points
    assert "mql" not in sim.contact.milestones
    sim.event(T0, "newsletter_signup")  # 35
    assert "mql" not in sim.contact.milestones
    out = sim.event(T0, "webinar_registered")  # 40: exactly the threshold
    assert out.milestones == ["mql"]
    assert sim.contact.milestones["mql"] == T0
    sim.event(T0 + 1, "form_submitted")
    assert sim.contact.milestones["mql"] == T0  # reached once, kept


def test_mql_counts_decayed_engagement() -> None:
    sim = person(account=None)
    sim.event(T0 - H, "demo_request")  # 30, halved to 15 one half-life later
    sim.event(T0, "email_replied")  # 15 + 15 = 30
    assert "mql" not in sim.contact.milestones
    sim.event(T0, "form_submitted")  # 40
    assert "mql" in sim.contact.milestones


@pytest.mark.parametrize("kind", ["trial_started", "product_signup", "product_used"])
def test_pql_on_product_usage(kind: str) -> None:
    sim = person(email=None, account=None)
    out = sim.event(T0, kind)
    assert out.milestones == ["pql"]
    assert sim.contact.stage == "suspect"  # a milestone is not a stage


def test_fit_grades_of_the_test_people() -> None:
    assert person().contact.fit.grade == "A"
    assert person(seniority=None, account=SHOP).contact.fit.grade == "C"


@pytest.mark.parametrize(("kind", "shape"), [
    ("content_download", {"premium": True}),
    ("demo_request", {}),
])
def test_prospect_on_fit_and_intent(kind: str, shape: dict[str, Any]) -> None:
    sim = person()
    sim.event(T0, "form_submitted")
    assert sim.contact.stage == "lead"
    sim.event(T0 + 60, kind, **shape)
    assert sim.contact.stage == "prospect"
    assert sim.changes[-1].actor == "rule:prospect"


def test_prospect_on_fit_and_engagement_60() -> None:
    sim = person()
    for _ in range(3):
        sim.event(T0, "webinar_attended")  # 45
    sim.event(T0, "email_replied")  # 60, no premium content, no demo
    assert sim.contact.stage == "prospect"


def test_engagement_59_is_not_enough() -> None:
    sim = person()
    for _ in range(3):
        sim.event(T0, "webinar_attended")
    sim.event(T0, "webinar_registered")
    sim.event(T0, "newsletter_signup")
    sim.event(T0, "page_view", url="/x")
    sim.event(T0, "page_view", url="/x")
    sim.event(T0, "page_view", url="/x")
    sim.event(T0, "page_view", url="/x")  # 59
    assert sim.contact.engagement.at(T0, H) == pytest.approx(59)
    assert sim.contact.stage == "lead"


def test_a_non_premium_download_is_not_intent() -> None:
    sim = person()
    sim.event(T0, "content_download", premium=False)
    assert sim.contact.stage == "lead"


def test_no_prospect_below_the_persona_minimum_grade() -> None:
    sim = person(seniority=None, account=SHOP)  # grade C; both personas want B
    sim.event(T0, "demo_request")
    sim.event(T0, "content_download", premium=True)
    assert sim.contact.stage == "lead"


def test_no_prospect_for_an_anonymous_visitor() -> None:
    sim = person(email=None)
    sim.event(T0, "demo_request")
    assert sim.contact.stage == "suspect"


def test_a_jump_suspect_to_prospect_is_one_stage_change() -> None:
    sim = person()
    out = sim.event(T0, "demo_request")  # interest and intent at once
    assert [(c.from_stage, c.to_stage) for c in out.stage_changes] == [("suspect", "prospect")]


@pytest.mark.parametrize("start", ["suspect", "lead", "prospect"])
def test_opportunity_on_deal_created(start: str) -> None:
    sim = person()
    sim.contact.stage = start
    sim.event(T0, "deal_created")
    assert sim.contact.stage == "opportunity"
    assert [(c.from_stage, c.to_stage) for c in sim.changes] == [(start, "opportunity")]


@pytest.mark.parametrize("kind", ["purchase", "deal_won"])
def test_customer_on_purchase_or_deal_won(kind: str) -> None:
    sim = person()
    sim.event(T0, "deal_created")
    sim.event(T0 + DAY, kind)
    assert sim.contact.stage == "customer"
    assert sim.changes[-1].from_stage == "opportunity"


def test_a_customer_stays_a_customer() -> None:
    sim = person()
    sim.event(T0, "purchase")
    for kind in ("deal_created", "form_submitted", "demo_request", "unsubscribed"):
        sim.event(T0 + DAY, kind)
    assert sim.contact.stage == "customer"


@pytest.mark.parametrize("start", ["suspect", "lead", "prospect"])
def test_disqualified_by_the_competitor_exclusion(start: str) -> None:
    sim = person(email="spy@RivalCRM.com")
    assert sim.contact.fit.excluded_by == "competitor"
    assert sim.contact.fit.grade == "D"
    sim.contact.stage = start
    sim.event(T0, "demo_request")
    assert sim.contact.stage == "disqualified"
    (change,) = sim.changes
    assert (change.actor, change.kind, change.reason) == (
        "rule:exclusion:competitor", "side", "Works for a competitor")
    sim.event(T0 + 1, "purchase")
    assert sim.contact.stage == "disqualified"  # rules never take anyone out of a side stage


def test_the_exclusion_rule_leaves_opportunities_and_customers_alone() -> None:
    sim = person(email="buyer@odoo.com")
    sim.contact.stage = "opportunity"
    sim.event(T0, "page_view")
    assert sim.contact.stage == "opportunity"


def test_qualified_milestone_when_qualification_passes() -> None:
    sim = person()
    sim.contact.qualification = evaluate_qualification(
        CFG.questions, {"budget": "approved", "authority": "decision_maker", "need": True,
                        "timeline": "2026-05-01", "has_crm_data": True}, now=T0)
    out = sim.event(T0, "page_view")
    assert "qualified" in out.milestones


def test_closed_only_by_erase(app: App) -> None:
    c = good_fit_contact(app)
    assert c.id is not None
    for kind in ("form_submitted", "demo_request", "unsubscribed", "deal_created", "purchase"):
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=c.id))
    with pytest.raises(MoveNotAllowed):
        move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id, to_stage="closed",
                   reason="never buys")
    with app.uow() as uow:
        stored = uow.contacts.get(c.id)
        assert stored is not None
        assert stored.stage == "customer"
        assert all(ch.to_stage != "closed" for ch in uow.history.stage_changes(c.id))
    erased = erase(uow=app.uow(), ctx=app.ctx, contact_id=c.id, reason="asked to be forgotten")
    assert erased.stage == "closed"
    with app.uow() as uow:
        last = uow.history.stage_changes(c.id)[-1]
    assert (last.from_stage, last.to_stage, last.kind) == ("customer", "closed", "side")


# ------------------------------------------------------------------ properties

RULE_TYPES = ["page_view", "form_submitted", "newsletter_signup", "content_download",
              "content_view", "webinar_registered", "webinar_attended", "demo_request",
              "trial_started", "product_used", "email_opened", "email_replied",
              "unsubscribed", "email_bounced", "deal_created", "purchase", "deal_won", "visit"]

events_st = st.tuples(
    st.floats(T0 - 200 * DAY, T0 + 60 * DAY),
    st.sampled_from(RULE_TYPES),
    st.sampled_from([None, "/pricing", "/careers", "/blog"]),
    st.sampled_from([None, True, False]),
)
people = st.fixed_dictionaries({
    "email": st.sampled_from([None, "ann@example.com", "spy@hubspot.com"]),
    "phone": st.sampled_from([None, "+33 1 23 45 67 89"]),
    "seniority": st.sampled_from([None, "director", "manager", "intern"]),
    "country": st.sampled_from([None, "FR", "JP"]),
    "account": st.sampled_from([None, SOFTWARE, SHOP]),
})


def assert_automatic(change: StageChange) -> None:
    """A change made by a rule: forward along the main path, or aside to the excluded stage."""
    assert change.actor.startswith("rule:")
    if change.kind == "side":
        assert CFG.role_of(change.to_stage) == "excluded"
        assert CFG.role_of(str(change.from_stage)) in ("entry", "interest", "handoff")
    else:
        assert change.kind == "forward"
        assert CFG.rank(change.to_stage) > CFG.rank(str(change.from_stage)) >= 0


@settings(max_examples=300, deadline=None)
@given(who=people, steps=st.lists(st.one_of(events_st, st.just("recycle")), max_size=30),
       qualified=st.booleans())
def test_automatic_moves_never_go_backwards(who: dict[str, Any], steps: list[Any],
                                            qualified: bool) -> None:
    sim = person(**who)
    sim.contact.qualification.passed = qualified
    milestones: dict[str, float] = {}
    for step in steps:
        before = sim.contact.stage
        if step == "recycle":
            if CFG.role_of(before) in ("handoff", "commit", "excluded"):
                sim.recycle(sim.now + 60)
            continue
        ts, kind, url, premium = step
        out = sim.event(ts, kind, url=url, premium=premium)
        assert len(out.stage_changes) <= 1  # a jump is one change
        for change in out.stage_changes:
            assert change.from_stage == before
            assert_automatic(change)
        after = sim.contact.stage
        if CFG.rank(before) >= 0 and CFG.rank(after) >= 0:
            assert CFG.rank(after) >= CFG.rank(before)
        if CFG.rank(before) < 0:
            assert after == before  # side stages are left by hand only
        assert CFG.role_of(after) != "erased"
        # milestones are reached once and kept with their first date
        for key, at in milestones.items():
            assert sim.contact.milestones[key] == at
        milestones = dict(sim.contact.milestones)


old_evidence = st.tuples(
    st.floats(1 * DAY, 200 * DAY),  # how long before the recycle it happened
    st.sampled_from(RULE_TYPES),
    st.sampled_from([None, "/pricing", "/blog"]),
    st.sampled_from([None, True]),
)
# After the recycle: activity that is no hand-off evidence (no premium content, no demo, no
# deal, few points).
new_noise = st.tuples(
    st.floats(0, 20 * DAY),  # how long after the recycle
    st.sampled_from(["email_opened", "visit", "content_view", "unsubscribed", "email_bounced"]),
)


@settings(max_examples=300, deadline=None)
@given(before=st.lists(old_evidence, max_size=12), late=st.lists(old_evidence, max_size=8),
       noise=st.lists(new_noise, max_size=12), order=st.randoms(use_true_random=False))
def test_a_recycled_contact_is_not_promoted_by_evidence_older_than_its_recycle(
        before: list[Any], late: list[Any], noise: list[Any], order: Any) -> None:
    sim = person()
    recycled_at = T0
    sim.event(recycled_at - 300 * DAY, "demo_request")
    assert sim.contact.stage == "prospect"
    for ago, kind, url, premium in before:
        sim.event(recycled_at - ago, kind, url=url, premium=premium)
    assume(CFG.role_of(sim.contact.stage) in ("handoff", "commit"))
    sim.recycle(recycled_at)
    assert sim.contact.stage == "lead"
    # old evidence arriving late, mixed with new activity that is no evidence
    arrivals = [("old", a) for a in late] + [("new", n) for n in noise]
    order.shuffle(arrivals)
    for what, item in arrivals:
        if what == "old":
            ago, kind, url, premium = item
            sim.event(recycled_at - ago, kind, url=url, premium=premium)
        else:
            after, kind = item
            sim.event(recycled_at + after, kind)
        assert sim.contact.stage == "lead", (what, item, sim.changes[-1:])
    # new evidence promotes it again
    sim.event(sim.now + 60, "demo_request")
    assert sim.contact.stage == "prospect"


def test_a_recycled_contact_is_promoted_by_new_engagement() -> None:
    sim = person()
    sim.event(T0 - 10 * DAY, "demo_request")
    for _ in range(4):
        sim.event(T0 - 10 * DAY, "webinar_attended")  # plenty of engagement, before
    sim.recycle(T0 - 5 * DAY)
    sim.event(T0, "form_submitted")
    assert sim.contact.stage == "lead"  # 10 points since the recycle
    for _ in range(4):
        sim.event(T0, "webinar_attended")
    assert sim.contact.stage == "prospect"  # 70 since the recycle


def test_evidence_dated_before_the_recycle_that_arrives_after_it_does_not_count() -> None:
    """Regression: two demo requests from the day before the recycle, newer than anything
    seen so far (so not "late"), reached 60 points "since the recycle" and promoted."""
    sim = person()
    sim.event(T0 - 300 * DAY, "demo_request")
    sim.recycle(T0)
    sim.event(T0 - DAY, "demo_request")
    sim.event(T0 - DAY, "demo_request")
    assert sim.contact.stage == "lead"
    scratch = replay([(t, s) for t, _, s in sorted(sim.history, key=lambda x: x[:2])],
                     CFG.engagement, until=T0)
    assert sim.contact.recycle_baseline == pytest.approx(scratch.at(T0, H), rel=1e-12)


def test_a_late_old_event_does_not_inflate_new_engagement() -> None:
    """Regression: an event from long ago, arriving late, was evaluated at its own time with
    the current score extrapolated backwards, so 45 points earned since the recycle counted
    as over 60 and promoted the contact."""
    sim = person()
    sim.event(T0 - 400 * DAY, "demo_request")
    sim.recycle(T0 - 300 * DAY)
    sim.event(T0, "webinar_attended")
    sim.event(T0, "webinar_attended")
    sim.event(T0, "webinar_attended")  # 45 since the recycle, at T0
    assert sim.contact.stage == "lead"
    sim.event(T0 - 320 * DAY, "visit")  # old, late, worth nothing
    assert sim.contact.stage == "lead"


def test_a_late_event_does_not_grant_mql_on_engagement_never_reached() -> None:
    """Regression: 30 points now and 1 point a month ago, arriving late, never made 40."""
    sim = person(account=None)
    sim.event(T0, "demo_request")
    sim.event(T0 - 30 * DAY, "page_view", url="/blog")
    assert sim.contact.engagement.at(T0, H) < 40
    assert "mql" not in sim.contact.milestones


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.floats(T0 - 60 * DAY, T0), st.sampled_from(RULE_TYPES)),
                      max_size=10),
       who=st.sampled_from(["ann@example.com", "spy@mautic.org", None]))
def test_recorded_events_never_move_a_contact_backwards(app: App, clock: FakeClock,
                                                        steps: list[Any],
                                                        who: str | None) -> None:
    clock.t = T0
    data = ContactIn(seniority="director", country="FR",
                     account=AccountIn(name="Acme", domain="acme.example", industry="software",
                                       employees=300))
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=data)
    assert c.id is not None
    if who is not None:
        # emails must be unique across examples
        local, domain = who.split("@")
        update_contact(uow=app.uow(), ctx=app.ctx, contact_id=c.id,
                       changes={"email": f"{local}{c.id}@{domain}"})
    for ts, kind in steps:
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=c.id,
                                                               ts=ts))
    with app.uow() as uow:
        changes = uow.history.stage_changes(c.id)
    assert (changes[0].from_stage, changes[0].to_stage) == (None, "suspect")
    for change in changes[1:]:
        assert_automatic(change)


def test_recycle_through_the_service_stamps_and_moves_back(app: App, clock: FakeClock) -> None:
    c = good_fit_contact(app)
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="demo_request", contact_id=c.id, ts=T0 - DAY))
    clock.advance(60)
    back = recycle(uow=app.uow(), ctx=app.ctx, contact_id=c.id, reason="no budget this year")
    assert back.stage == "lead"
    assert back.recycled_at == clock.now()
    # the old demo request, replayed late, does not promote it; a new one does
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="demo_request", contact_id=c.id, ts=T0 - 2 * DAY))
    with app.uow() as uow:
        stored = uow.contacts.get(c.id)
        assert stored is not None
        assert stored.stage == "lead"
    clock.advance(60)
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request", contact_id=c.id))
    with app.uow() as uow:
        stored = uow.contacts.get(c.id)
        assert stored is not None
        assert stored.stage == "prospect"
        kinds = [(ch.from_stage, ch.to_stage, ch.kind) for ch in uow.history.stage_changes(c.id)]
    assert kinds == [(None, "suspect", "forward"), ("suspect", "prospect", "forward"),
                     ("prospect", "lead", "backward"), ("lead", "prospect", "forward")]
