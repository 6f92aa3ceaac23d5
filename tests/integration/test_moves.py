"""Moves by hand stick: a contact moved back is not carried forward by its old evidence."""

from __future__ import annotations

from leadflow.bootstrap import App
from leadflow.services.contacts import AccountIn, ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import move_stage
from tests.conftest import FakeClock


def test_a_backward_move_by_hand_is_not_undone_by_the_next_event(app: App,
                                                                  clock: FakeClock) -> None:
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="ann@acme.io", seniority="director", country="FR",
        account=AccountIn(name="Acme", domain="acme.io", industry="software", employees=300)))
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
