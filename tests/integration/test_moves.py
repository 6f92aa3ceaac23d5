"""Moves by hand stick: a contact moved back is not carried forward by its old evidence."""

from __future__ import annotations

from leadflow.bootstrap import App
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import move_stage
from tests.conftest import FakeClock, good_fit_contact


def test_a_backward_move_by_hand_is_not_undone_by_the_next_event(app: App,
                                                                  clock: FakeClock) -> None:
    c = good_fit_contact(app)
    assert c.id is not None
    for kind in ("form_submitted", "demo_request", "deal_created"):
        clock.advance(60)
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=c.id))
    with app.uow() as uow:
        assert (got := uow.contacts.get(c.id)) is not None
        assert got.stage == "opportunity"
    clock.advance(60)
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id, to_stage="prospect",
               reason="the deal was created by mistake")
    clock.advance(60)
    result = record_event(uow=app.uow(), ctx=app.ctx,
                          event=EventIn(type="page_view", contact_id=c.id, url="/blog"))
    assert result.stage_changes == []
    with app.uow() as uow:
        assert (got := uow.contacts.get(c.id)) is not None
        assert got.stage == "prospect"
    clock.advance(60)
    result = record_event(uow=app.uow(), ctx=app.ctx,
                          event=EventIn(type="deal_created", contact_id=c.id))
    assert [ch.to_stage for ch in result.stage_changes] == ["opportunity"]  # new evidence counts


def test_identify_joins_the_contact_known_by_user_id_and_the_one_known_by_email(
        app: App) -> None:
    from leadflow.services.events import IdentifyIn, identify

    by_user = identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(user_id="u-1"))
    by_email = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="eve@x.io"))
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="webinar_attended", email="eve@x.io"))
    merged = identify(uow=app.uow(), ctx=app.ctx,
                      data=IdentifyIn(user_id="u-1", email="EVE@x.io"))
    assert merged.id == by_user.id
    assert merged.email == "eve@x.io"
    with app.uow() as uow:
        assert uow.contacts.get(by_email.id or 0) is None
        assert len(uow.events.history(merged.id or 0)) == 1
    # A user id whose contact already has another email keeps it; nothing breaks.
    identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(user_id="u-2", email="zed@x.io"))
    create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="other@x.io"))
    kept = identify(uow=app.uow(), ctx=app.ctx,
                    data=IdentifyIn(user_id="u-2", email="other@x.io"))
    assert kept.email == "zed@x.io"


def test_a_temperature_that_ends_now_is_read_again_not_kept_for_ever(app: App,
                                                                      clock: FakeClock) -> None:
    from leadflow.domain.engagement import EngagementState
    from leadflow.services.contacts import create_manual_lead
    from leadflow.services.temperatures import refresh_expired_temperatures

    lead = create_manual_lead(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="t@x.io"),
                              reason="a call")
    threshold = app.config.temperature.lead_warm_engagement
    with app.uow() as uow:
        c = uow.contacts.get(lead.id or 0)
        assert c is not None
        c.engagement = EngagementState(score=threshold, t0=clock.now())
        c.temperature_until = clock.now() - 1
        uow.contacts.save(c)
        uow.commit()
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    with app.uow() as uow:
        c = uow.contacts.get(lead.id or 0)
    assert c is not None
    assert c.temperature == "warm"
    clock.advance(5)
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    with app.uow() as uow:
        c = uow.contacts.get(lead.id or 0)
    assert c is not None
    assert c.temperature == "cold"


def test_a_merge_keeps_consent_qualification_and_referrals(app: App, clock: FakeClock) -> None:
    from leadflow.services.contacts import create_manual_lead
    from leadflow.services.events import IdentifyIn, identify
    from leadflow.services.moves import qualify

    visitor = identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(user_id="u-9"))
    known = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="k@x.io", consent={"email": False}, consent_source="unsubscribe link"))
    assert known.id is not None
    qualify(uow=app.uow(), ctx=app.ctx, contact_id=known.id, answers={"need": "yes"})
    friend = create_manual_lead(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="f@x.io"),
                                reason="referred", referred_by_id=known.id)
    clock.advance(60)
    merged = identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(user_id="u-9",
                                                                  email="k@x.io"))
    assert merged.id == visitor.id
    with app.uow() as uow:
        assert uow.contacts.get(known.id) is None
        got = uow.contacts.get(friend.id or 0)
        survivor = uow.contacts.get(merged.id or 0)
    assert got is not None
    assert survivor is not None
    assert got.referred_by_id == merged.id
    assert survivor.qualification.answers == {"need": True}
    assert survivor.consent["email"].granted is False
