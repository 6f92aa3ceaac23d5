"""Assignments outside a stage move: the sweep that hands off contacts a bulk path moved,
and reassignment by hand with a reason."""

from __future__ import annotations

from collections.abc import Callable

from leadflow.domain.errors import Forbidden, InvalidInput
from leadflow.domain.model import Contact
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import SALES_STAGE_ROLES
from leadflow.domain.users import SALES_ROLES, Principal
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.handoff import announce, hand_off, hand_off_if_needed
from leadflow.services.users import find_user

SWEEP_BATCH = 200


def assign_unowned(*, uow_factory: Callable[[], UnitOfWork], ctx: Context) -> int:
    """Hand off every unowned contact in a hand-off stage (those that got there by a bulk
    path: import, demo, batched tracking). Returns how many got an owner; stops early when
    no rep is available."""
    stages = [s.key for s in ctx.config.stages if s.role in SALES_STAGE_ROLES]
    done = 0
    while True:
        with uow_factory() as uow:
            uow.serialize("assignment")
            ids = uow.contacts.unowned_ids(stages, SWEEP_BATCH)
            if not ids:
                return done
            now = ctx.clock.now()
            for contact in uow.contacts.get_many(ids):
                if hand_off(uow, ctx.config, contact, at=now, actor="rule:handoff",
                            note_unassigned=False) is None:
                    uow.commit()
                    return done
                contact.updated_at = now
                uow.contacts.save(contact)
                done += 1
            uow.commit()


def reassign(*, uow: UnitOfWork, ctx: Context, contact_id: int, owner: str | int,
             reason: str, actor: str, principal: Principal | None = None) -> Contact:
    """Give a contact (and its open tasks and deals) to another sales user, with a reason.
    A sales manager (``principal``) reassigns within their team only."""
    why = (reason or "").strip()
    if not why:
        raise InvalidInput("a reassignment needs a reason", field="reason")
    now = ctx.clock.now()
    with uow:
        contact = load_contact(uow, contact_id)
        new = find_user(uow, owner)
        if new.role not in SALES_ROLES or not new.active:
            raise InvalidInput(f"{new.email} is not an active sales user", field="owner")
        if principal is not None and not principal.sees_owner(new.id):
            raise Forbidden(f"{new.email} is not in your team", field="owner")
        before = contact.owner_id
        if before == new.id:
            raise InvalidInput(f"{new.email} owns this contact already", field="owner")
        contact.owner_id = new.id
        contact.updated_at = now
        uow.tasks.reassign_open(contact_id, new.id)
        uow.opportunities.reassign_owner(contact_id, new.id)
        hand_off_if_needed(uow, ctx.config, contact, at=now, actor=actor)
        uow.history.add_audit(contact_id, now, actor, "reassigned", {
            "from_owner_id": before, "owner_id": new.id, "owner": new.email, "reason": why})
        announce(uow, contact, new, None, at=now, rule="manual", reason=why)
        uow.contacts.save(contact)
        uow.commit()
    return contact

