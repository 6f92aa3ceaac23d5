"""The use cases on a real database — each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import late_contacts
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.config import parse_config
from leadflow.domain.engagement import replay
from leadflow.domain.errors import Conflict, InvalidInput, MoveNotAllowed, NotFound, Suppressed
from leadflow.domain.model import Contact
from leadflow.domain.ports import NullProgress
from leadflow.services.contacts import (
    ContactIn,
    create_contact,
    create_manual_lead,
    update_contact,
)
from leadflow.services.events import (
    EventIn,
    IdentifyIn,
    identify,
    record_event,
    record_events,
)
from leadflow.services.moves import disqualify, erase, move_stage, qualify, recycle
from leadflow.services.rescore import check_scores, rescore_all
from tests.conftest import T0, FakeClock, good_fit_contact

DAY = 86400.0
TOL = 1e-9




def counts(app: App) -> dict[str, int]:
    with app.engine.connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in t.metadata.sorted_tables if table.name != "config_versions"}


def load(app: App, contact_id: int | None) -> Contact:
    assert contact_id is not None
    with app.uow() as uow:
        contact = uow.contacts.get(contact_id)
    assert contact is not None
    return contact


def event(app: App, kind: str, **fields: Any) -> Any:
    return record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, **fields))


def it_director(app: App, email: str = "ann@example.com") -> Contact:
    return good_fit_contact(app, email, first_name="Ann", last_name="Lovelace",
                            phone="+33 1 23 45 67 89")


def stage_path(app: App, contact_id: int | None) -> list[tuple[str | None, str, str]]:
    assert contact_id is not None
    with app.uow() as uow:
        return [(c.from_stage, c.to_stage, c.kind) for c in uow.history.stage_changes(contact_id)]


def assert_scores_replay(app: App, contact_id: int | None) -> None:
    assert contact_id is not None
    with app.uow() as uow:
        contact = uow.contacts.get(contact_id)
        history = uow.events.history(contact_id)
    assert contact is not None
    want = replay(history, app.config.engagement)
    assert contact.engagement.score == pytest.approx(want.score, rel=TOL, abs=TOL)
    assert contact.engagement.t0 == want.t0
    assert contact.engagement.breakdown == pytest.approx(want.breakdown, rel=TOL, abs=TOL)


# ------------------------------------------------------------------ recording events


def test_record_event_is_idempotent_on_message_id(app: App) -> None:
    c = it_director(app)
    first = event(app, "form_submitted", contact_id=c.id, message_id="msg-1")
    again = event(app, "form_submitted", contact_id=c.id, message_id="msg-1")
    assert not first.duplicate
    assert again.duplicate
    assert again.event_id is None
    assert counts(app)["events"] == 1
    assert load(app, c.id).engagement.score == 10


def test_a_batch_dedupes_within_itself_and_against_the_past(app: App) -> None:
    c = it_director(app)
    event(app, "page_view", contact_id=c.id, message_id="a", url="/")
    results = record_events(uow=app.uow(), ctx=app.ctx, events=[
        EventIn(type="page_view", contact_id=c.id, message_id="a", url="/"),
        EventIn(type="page_view", contact_id=c.id, message_id="b", url="/"),
        EventIn(type="page_view", contact_id=c.id, message_id="b", url="/"),
    ])
    assert [r.duplicate for r in results] == [True, False, True]
    assert counts(app)["events"] == 2


@pytest.mark.parametrize(("bad", "field"), [
    (EventIn(type="Page View!", email="x@example.com"), "events[2].type"),
    (EventIn(type="page_view", email="x@example.com", ts=T0 + DAY), "events[2].timestamp"),
    (EventIn(type="page_view", email="not an email"), "events[2].email"),
    (EventIn(type="page_view"), "events[2].contact"),
    (EventIn(type="page_view", contact_id=999_999), "events[2].contact_id"),
])
def test_a_batch_with_one_bad_event_stores_nothing(app: App, bad: EventIn, field: str) -> None:
    c = it_director(app)
    before = counts(app)
    good = [EventIn(type="form_submitted", contact_id=c.id, message_id="g1"),
            EventIn(type="page_view", anonymous_id="visitor-9", url="/pricing")]
    with pytest.raises((InvalidInput, NotFound)) as info:
        record_events(uow=app.uow(), ctx=app.ctx, events=[*good, bad])
    assert info.value.field == field
    assert field in str(info.value)
    assert counts(app) == before
    assert load(app, c.id).engagement.score == 0
    # the same batch without the bad event goes through
    record_events(uow=app.uow(), ctx=app.ctx, events=good)
    assert counts(app)["events"] == 2


def test_an_event_for_an_unknown_contact_id_writes_nothing(app: App) -> None:
    it_director(app)
    before = counts(app)
    with pytest.raises(NotFound) as info:
        event(app, "demo_request", contact_id=424242, message_id="lost")
    assert info.value.field == "contact_id"
    assert counts(app) == before
    # and its message id is still free
    assert not event(app, "page_view", anonymous_id="v", message_id="lost").duplicate


def test_an_invalid_email_is_refused(app: App) -> None:
    before = counts(app)
    with pytest.raises(InvalidInput) as info:
        event(app, "form_submitted", email="ann@@example")
    assert info.value.field == "email"
    with pytest.raises(InvalidInput) as info:
        create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="ann at example.com"))
    assert info.value.field == "email"
    assert counts(app) == before


def test_an_email_is_one_contact_in_any_letter_case(app: App) -> None:
    c = it_director(app, "Ann@Example.com")
    r = event(app, "form_submitted", email="ANN@example.COM")
    assert r.contact_id == c.id
    with pytest.raises(Conflict):
        create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="ann@EXAMPLE.com"))


def test_a_late_event_recomputes_the_contact_exactly(app: App, clock: FakeClock) -> None:
    c = it_director(app)
    day = T0 - 3 * DAY
    for i in range(10):  # a full day of page views: the cap is reached
        event(app, "page_view", contact_id=c.id, url="/blog", ts=day + 3600 * (i + 1))
    late = event(app, "page_view", contact_id=c.id, url="/pricing", ts=day + 60)
    assert late.event_id is not None
    stored = load(app, c.id)
    assert stored.engagement.caps["page_view"][1] == 10
    assert stored.engagement.breakdown["pricing_page"] > 0
    assert_scores_replay(app, c.id)


# ------------------------------------------------------------------ identity


def test_identify_merges_an_anonymous_visitor_into_the_known_contact(app: App,
                                                                     clock: FakeClock) -> None:
    known = it_director(app)
    event(app, "newsletter_signup", contact_id=known.id, ts=T0 - 5 * DAY)
    visit = event(app, "page_view", anonymous_id="anon-1", url="/pricing", ts=T0 - 2 * DAY)
    event(app, "demo_request", anonymous_id="anon-1", ts=T0 - DAY)
    assert visit.created_contact
    anon = load(app, visit.contact_id)
    assert anon.stage == "suspect"  # no contact details: a demo request alone is not enough
    assert load(app, known.id).stage == "lead"
    before = counts(app)

    merged = identify(uow=app.uow(), ctx=app.ctx,
                      data=IdentifyIn(anonymous_id="anon-1", email="ANN@example.com"))

    assert merged.id == known.id
    after = counts(app)
    assert after["contacts"] == before["contacts"] - 1
    assert after["events"] == before["events"]
    with app.uow() as uow:
        assert uow.contacts.get(visit.contact_id) is None
        assert [s.type for _, s in uow.events.history(known.id)] == [
            "newsletter_signup", "page_view", "demo_request"]
        assert uow.contacts.find_by_identity("anonymous_id", "anon-1") == known.id
    stored = load(app, known.id)
    assert stored.stage == "prospect"  # fit A and a demo request, now on the same person
    assert stored.engagement.breakdown.keys() == {"newsletter_signup", "page_view",
                                                  "pricing_page", "demo_request"}
    assert_scores_replay(app, known.id)
    assert stage_path(app, known.id)[-1] == ("lead", "prospect", "forward")
    # the visitor's later events land on the known contact
    assert event(app, "page_view", anonymous_id="anon-1", url="/").contact_id == known.id


def test_identify_keeps_the_visitors_further_stage_and_milestones(app: App) -> None:
    known = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="bob@example.com"))
    r = event(app, "deal_created", anonymous_id="anon-2", ts=T0 - DAY)
    event(app, "trial_started", anonymous_id="anon-2", ts=T0 - DAY)
    assert load(app, r.contact_id).stage == "opportunity"
    merged = identify(uow=app.uow(), ctx=app.ctx,
                      data=IdentifyIn(anonymous_id="anon-2", email="bob@example.com"))
    assert merged.stage == "opportunity"
    assert "pql" in load(app, known.id).milestones
    assert all(k != "backward" for *_, k in stage_path(app, known.id))


def test_identify_an_unknown_visitor_gives_it_the_email(app: App) -> None:
    r = event(app, "content_download", anonymous_id="anon-3", premium=False)
    c = identify(uow=app.uow(), ctx=app.ctx,
                 data=IdentifyIn(anonymous_id="anon-3", traits={"email": "cy@example.com",
                                                                "first_name": "Cy"}))
    assert c.id == r.contact_id
    stored = load(app, c.id)
    assert (stored.email, stored.first_name, stored.stage) == ("cy@example.com", "Cy", "lead")


def test_identify_needs_an_identity(app: App) -> None:
    with pytest.raises(InvalidInput):
        identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(traits={"first_name": "X"}))


# ------------------------------------------------------------------ contacts and moves


def test_a_manual_lead_with_a_referrer(app: App) -> None:
    customer = it_director(app, "client@acme.example")
    lead = create_manual_lead(uow=app.uow(), ctx=app.ctx,
                              data=ContactIn(first_name="Neighbour", phone="+33 6 12 34 56 78"),
                              reason="a customer's neighbour might need it",
                              referred_by_id=customer.id)
    stored = load(app, lead.id)
    assert (stored.stage, stored.referred_by_id, stored.source) == ("lead", customer.id,
                                                                   "referral")
    with app.uow() as uow:
        changes = uow.history.stage_changes(stored.id or 0)
    assert [(c.from_stage, c.to_stage) for c in changes] == [(None, "suspect"),
                                                            ("suspect", "lead")]
    assert changes[1].reason == "a customer's neighbour might need it"
    assert changes[1].actor == "user"


@pytest.mark.parametrize(("data", "reason", "referrer", "error", "field"), [
    (ContactIn(email="x@example.com"), "  ", None, InvalidInput, "reason"),
    (ContactIn(first_name="No details"), "heard of them", None, InvalidInput, "email"),
    (ContactIn(email="x@example.com"), "heard of them", 987_654, NotFound, "referred_by_id"),
])
def test_a_manual_lead_needs_a_reason_details_and_a_real_referrer(
        app: App, data: ContactIn, reason: str, referrer: int | None, error: type[Exception],
        field: str) -> None:
    before = counts(app)
    with pytest.raises(error) as info:
        create_manual_lead(uow=app.uow(), ctx=app.ctx, data=data, reason=reason,
                           referred_by_id=referrer)
    assert getattr(info.value, "field", None) == field
    assert counts(app) == before


def test_moves_by_hand_need_a_reason_and_backward_ones_say_so(app: App,
                                                              clock: FakeClock) -> None:
    c = it_director(app)
    event(app, "demo_request", contact_id=c.id)
    assert load(app, c.id).stage == "prospect"
    for reason in ("", "   "):
        with pytest.raises(InvalidInput) as info:
            move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="lead",
                       reason=reason)
        assert info.value.field == "reason"
    with pytest.raises(InvalidInput) as info:
        move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="won",
                   reason="typo")
    assert info.value.field == "stage"
    with pytest.raises(MoveNotAllowed):
        move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="prospect",
                   reason="already there")
    with pytest.raises(NotFound):
        move_stage(uow=app.uow(), ctx=app.ctx, contact_id=555_555, to_stage="lead",
                   reason="who?")
    clock.advance(3600)
    back = move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="lead",
                      reason="wants to learn more first", actor="user:rep1")
    assert back.stage == "lead"
    assert back.recycled_at == clock.now()  # back to nurture counts as a recycle
    clock.advance(3600)
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="opportunity",
               reason="signed the letter of intent", actor="user:rep1")
    clock.advance(3600)
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="prospect",
               reason="deal on hold", actor="user:rep1")
    with app.uow() as uow:
        changes = uow.history.stage_changes(c.id or 0)
    assert [(ch.from_stage, ch.to_stage, ch.kind) for ch in changes] == [
        (None, "suspect", "forward"), ("suspect", "prospect", "forward"),
        ("prospect", "lead", "backward"), ("lead", "opportunity", "forward"),
        ("opportunity", "prospect", "backward")]
    assert [ch.reason for ch in changes[2:]] == ["wants to learn more first",
                                                 "signed the letter of intent", "deal on hold"]
    assert {ch.actor for ch in changes[2:]} == {"user:rep1"}
    assert all(ch.config_version == app.config.config_version for ch in changes)


def test_disqualify_then_recycle(app: App, clock: FakeClock) -> None:
    c = it_director(app)
    event(app, "form_submitted", contact_id=c.id)
    with pytest.raises(MoveNotAllowed):  # a lead is already in nurture
        recycle(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="again")
    out = disqualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="no project")
    assert out.stage == "disqualified"
    event(app, "demo_request", contact_id=c.id)
    assert load(app, c.id).stage == "disqualified"  # rules leave a side stage alone
    clock.advance(DAY)
    back = recycle(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="new budget")
    assert (back.stage, back.recycled_at) == ("lead", clock.now())
    assert stage_path(app, c.id)[-2:] == [("lead", "disqualified", "side"),
                                          ("disqualified", "lead", "backward")]
    clock.advance(60)
    event(app, "content_download", contact_id=c.id, premium=True)
    assert load(app, c.id).stage == "prospect"


def test_evidence_from_before_a_recycle_recorded_after_it(app: App, clock: FakeClock) -> None:
    """Dated before the recycle but newer than the contact's last event: not since the
    recycle, and the stored baseline matches the set-based rescore."""
    c = it_director(app)
    event(app, "demo_request", contact_id=c.id, ts=T0 - 30 * DAY)
    recycle(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="not this quarter")
    for _ in range(2):
        event(app, "demo_request", contact_id=c.id, ts=T0 - DAY)
    assert load(app, c.id).stage == "lead"
    assert check_scores(scoring=app.bulk_scoring(), progress=NullProgress()).differences == []


def test_qualify_sets_the_qualified_milestone(app: App, clock: FakeClock) -> None:
    c = it_director(app)
    with pytest.raises(InvalidInput) as info:
        qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, answers={"mood": "good"})
    assert info.value.field == "answers.mood"
    part = qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0,
                   answers={"budget": "approved", "need": "yes"})
    assert not part.qualification.passed
    assert "qualified" not in load(app, c.id).milestones
    clock.advance(60)
    done = qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0,
                   answers={"timeline": "2026-06-30", "has_crm_data": True,
                            "authority": "decision_maker"}, actor="user:rep1")
    assert done.qualification.passed
    stored = load(app, c.id)
    assert stored.qualification.passed
    assert stored.qualification.answers["budget"] == "approved"  # earlier answers kept
    assert stored.milestones["qualified"] == clock.now()


def test_authority_from_the_account_role_qualifies(app: App) -> None:
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="boss@acme.example", account_role="Decision Maker"))
    q = qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, answers={
        "budget": "planned", "need": True, "timeline": "2026-12-01", "has_crm_data": "yes"})
    assert q.qualification.passed
    assert "qualified" in load(app, c.id).milestones


def test_an_update_that_reveals_a_competitor_disqualifies(app: App) -> None:
    c = it_director(app)
    update_contact(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0,
                   changes={"email": "ann@rivalcrm.com"})
    stored = load(app, c.id)
    assert (stored.stage, stored.fit.excluded_by) == ("disqualified", "competitor")


# ------------------------------------------------------------------ erasure


def all_text(app: App) -> str:
    """Every value of every row of every table, as one lower-case string."""
    parts: list[str] = []
    with app.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            if table is t.config_versions:
                continue
            for row in conn.execute(select(table)):
                parts.extend(str(v) for v in row)
    return "\n".join(parts).lower()


def test_erase_removes_personal_data_and_suppresses_the_person(app: App,
                                                               clock: FakeClock) -> None:
    c = it_director(app, "Ann.Lovelace@Example.com")
    event(app, "form_submitted", contact_id=c.id, message_id="form-ann",
          properties={"message": "Call me, Ann Lovelace, on +33 1 23 45 67 89"})
    identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(
        anonymous_id="anon-ann", user_id="u-ann", email="ann.lovelace@example.com",
        traits={"title": "CIO"}))
    qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, answers={"budget": "approved"})
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="opportunity",
               reason="Lovelace agreed to a pilot")
    clock.advance(60)
    erased = erase(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0,
                   reason="asked to be forgotten")
    assert erased.stage == "closed"
    stored = load(app, c.id)
    assert (stored.email, stored.phone, stored.first_name, stored.last_name,
            stored.title) == (None, None, None, None, None)
    assert stored.attributes == {}
    assert stored.qualification.answers == {}
    text = all_text(app)
    for secret in ("ann.lovelace", "lovelace", "23 45 67", "anon-ann", "u-ann", "cio"):
        assert secret not in text, secret
    # the events stay (for the funnel), stripped of what they said
    assert counts(app)["events"] == 1
    # nobody brings the person back, in any letter case, through any door
    attempts = {
        "event by email": lambda: event(app, "page_view", email="ANN.LOVELACE@example.COM"),
        "event by anonymous id": lambda: event(app, "page_view", anonymous_id="anon-ann"),
        "event by user id": lambda: event(app, "page_view", user_id="u-ann"),
        "event by contact id": lambda: event(app, "page_view", contact_id=c.id),
        "new contact": lambda: create_contact(
            uow=app.uow(), ctx=app.ctx, data=ContactIn(email="Ann.Lovelace@EXAMPLE.com")),
        "manual lead": lambda: create_manual_lead(
            uow=app.uow(), ctx=app.ctx, data=ContactIn(email="ann.lovelace@example.com"),
            reason="met at a fair"),
        "identify": lambda: identify(uow=app.uow(), ctx=app.ctx,
                                     data=IdentifyIn(email="ann.lovelace@example.com")),
    }
    for label, attempt in attempts.items():
        try:
            attempt()
        except Suppressed:
            continue
        pytest.fail(f"{label} brought the erased person back")
    other = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="bo@example.com"))
    with pytest.raises(Suppressed):
        update_contact(uow=app.uow(), ctx=app.ctx, contact_id=other.id or 0,
                       changes={"email": "ANN.lovelace@example.com"})
    assert counts(app)["events"] == 1
    # and the erased contact does not move any more
    with pytest.raises((MoveNotAllowed, Conflict)):
        move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, to_stage="lead",
                   reason="oops")
    with pytest.raises(MoveNotAllowed):
        erase(uow=app.uow(), ctx=app.ctx, contact_id=c.id or 0, reason="twice")


# ------------------------------------------------------------------ rescoring


def late(app: App) -> Any:
    def contacts_after(watermark: int) -> list[int]:
        with app.engine.connect() as conn:
            return late_contacts(conn, watermark)
    return contacts_after


def populate(app: App, clock: FakeClock) -> list[int]:
    """A few contacts with in-order, late and batched events (caps and decay at work)."""
    ids = []
    for n in range(9):  # more contacts than one rescore chunk (7)
        c = create_contact(uow=app.uow(), ctx=app.ctx,
                           data=ContactIn(email=f"c{n}@example.com"))
        assert c.id is not None
        ids.append(c.id)
    kinds = ["page_view", "page_view", "email_opened", "demo_request", "page_view",
             "content_download", "product_used", "unsubscribed", "webinar_attended"]
    for i, cid in enumerate(ids):
        for j in range(12):
            ts = T0 - 10 * DAY + j * 7 * 3600 + i * 600
            event(app, kinds[(i + j) % len(kinds)], contact_id=cid, ts=ts,
                  url="/pricing" if j % 5 == 0 else "/docs")
        event(app, "page_view", contact_id=cid, ts=T0 - 9 * DAY, url="/")  # late
        record_events(uow=app.uow(), ctx=app.ctx, events=[
            EventIn(type="email_clicked", contact_id=cid, ts=T0 - 8 * DAY + k * 60)
            for k in range(7)])  # late, as a batch, past the weekly cap
    event(app, "page_view", anonymous_id="no-rule-matches", url="/")
    event(app, "visit", anonymous_id="no-rule-at-all")
    return ids


def test_check_scores_is_clean_after_in_order_and_late_events(app: App,
                                                              clock: FakeClock) -> None:
    ids = populate(app, clock)
    report = check_scores(scoring=app.bulk_scoring(), progress=NullProgress())
    assert report.differences == []
    assert report.differing_contacts == 0
    for cid in ids:
        assert_scores_replay(app, cid)


def test_a_rule_change_shows_in_check_and_rescore_applies_it(app: App, clock: FakeClock,
                                                              settings: Settings) -> None:
    ids = populate(app, clock)
    raw = copy.deepcopy(app.config.raw)
    rules = {r["key"]: r for r in raw["engagement"]["rules"]}
    rules["page_view"]["points"] = 2
    rules["page_view"]["cap"] = {"points": 5, "per": "12h"}
    rules["demo_request"]["points"] = 40
    rules["unsubscribe"]["points"] = -5
    raw["engagement"]["half_life_days"] = 14
    edited = App(settings, clock=clock, config=parse_config(raw))
    try:
        report = check_scores(scoring=edited.bulk_scoring(), progress=NullProgress())
        assert report.differing_contacts == len(ids) + 1  # and the anonymous page viewer
        fields = {d.field for d in report.differences}
        assert {"engagement", "breakdown.page_view", "cap.page_view"} <= fields
        # checking writes nothing
        assert check_scores(scoring=edited.bulk_scoring(),
                            progress=NullProgress()).differing_contacts == len(ids) + 1

        done = rescore_all(scoring=edited.bulk_scoring(), progress=NullProgress(),
                           uow_factory=edited.uow, ctx=edited.ctx, late_contacts=late(edited))
        assert done.contacts_changed >= len(ids)
        assert check_scores(scoring=edited.bulk_scoring(), progress=NullProgress()).differences \
            == []
        for cid in ids:
            assert_scores_replay(edited, cid)  # equal to replaying under the new rules
        # the old rules now disagree, and a new event keeps the new scores exact
        assert check_scores(scoring=app.bulk_scoring(),
                            progress=NullProgress()).differing_contacts == len(ids) + 1
        record_event(uow=edited.uow(), ctx=edited.ctx,
                     event=EventIn(type="page_view", contact_id=ids[0], url="/x"))
        record_event(uow=edited.uow(), ctx=edited.ctx,
                     event=EventIn(type="demo_request", contact_id=ids[1], ts=T0 - 30 * DAY))
        assert check_scores(scoring=edited.bulk_scoring(), progress=NullProgress()).differences \
            == []
    finally:
        if "engine" in edited.__dict__:
            edited.engine.dispose()


def test_rescore_all_on_a_clean_database_changes_nothing(app: App, clock: FakeClock) -> None:
    ids = populate(app, clock)
    before = {cid: load(app, cid).engagement for cid in ids}
    rescore_all(scoring=app.bulk_scoring(), progress=NullProgress(), uow_factory=app.uow,
                ctx=app.ctx, late_contacts=late(app))
    for cid in ids:
        after = load(app, cid).engagement
        assert after.score == pytest.approx(before[cid].score, rel=TOL, abs=TOL)
        assert after.t0 == before[cid].t0
        assert after.caps.keys() == before[cid].caps.keys()
    assert check_scores(scoring=app.bulk_scoring(), progress=NullProgress()).differences == []
