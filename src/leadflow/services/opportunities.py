"""Opportunities (deals): create, change, win, lose, list.

A deal moves its contact: creating one records a ``deal_created`` event (the commit stage's
rule in the shipped pipeline), winning one a ``deal_won`` event (the won stage's), so that
scoring and rules see them like any other evidence; where custom rules do not move the contact,
the service moves it by hand with the deal as the reason. A lost deal records its reason and
sends its contact to nurture or to the excluded stage: it never erases anyone.

The opportunity and its event are written in one unit of work; the move by hand, when one is
needed, is a second (``moves.move_stage`` commits its own).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

from leadflow.domain.errors import Conflict, InvalidInput, MoveNotAllowed, NotFound
from leadflow.domain.model import Contact
from leadflow.domain.ports import UnitOfWork, UnitOfWorkFactory
from leadflow.domain.sales import DEAL_STATUSES, SALES_STAGE_ROLES, Opportunity
from leadflow.domain.sales_config import LOST_NEXT
from leadflow.domain.users import SALES_ROLES, Principal
from leadflow.services import moves
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.events import EventIn, record_in, validate_event

NAME_MAX = 300
NEXT_STEP_MAX = 500
NOTE_MAX = 2000
EDITABLE = ("name", "amount", "currency", "expected_close", "deal_stage", "probability",
            "next_step")
MAX_PAGE = 500


class OpportunityReads(Protocol):
    """The read model behind the list of deals (adapters/db/sales_read_models)."""

    def list_opportunities(
        self, *, visible_owners: tuple[int, ...] | None, status: str | None,
        deal_stage: str | None, owner_id: int | None, limit: int, offset: int,
    ) -> tuple[list[dict[str, Any]], int]: ...


# ---------------------------------------------------------------- validation


def _name(value: Any) -> str:
    name = str(value or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a deal needs a name of 1 to {NAME_MAX} characters", field="name")
    return name


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < 0:
        raise InvalidInput(f"an amount is a finite number >= 0, not {value!r}", field="amount")
    return float(value)


def _currency(value: Any, ctx: Context) -> str:
    code = str(value or "").strip().upper()
    rates = ctx.config.sales.rates
    if code not in rates:
        raise InvalidInput(f"unknown currency {value!r} (configured: {', '.join(sorted(rates))})",
                           field="currency")
    return code


def _expected_close(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidInput(f"expected a date like 2026-06-30, got {value!r}",
                           field="expected_close") from None


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not 0 <= value <= 1:
        raise InvalidInput(f"a probability is a number from 0 to 1, not {value!r}",
                           field="probability")
    return float(value)


def _next_step(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if len(text) > NEXT_STEP_MAX:
        raise InvalidInput(f"longer than {NEXT_STEP_MAX} characters", field="next_step")
    return text or None


def _deal_stage(value: Any, ctx: Context) -> str:
    return ctx.config.sales.deal_stage(str(value or "").strip()).key


def _open_to_deals(contact: Contact, ctx: Context) -> None:
    role = ctx.config.role_of(contact.stage)
    if role == "erased":
        raise MoveNotAllowed("this contact was erased at its own request", field="contact_id")
    if role == "excluded":
        raise MoveNotAllowed(f"this contact is {contact.stage}: recycle it before a deal",
                             field="contact_id")


def _load(uow: UnitOfWork, opportunity_id: int) -> Opportunity:
    found = uow.opportunities.get(opportunity_id)
    if found is None:
        raise NotFound(f"no opportunity {opportunity_id}", field="opportunity_id")
    return found


def _still_open(opportunity: Opportunity) -> None:
    if opportunity.status != "open":
        raise Conflict(f"opportunity {opportunity.id} is {opportunity.status} already",
                       field="status")


def _record_deal_event(uow: UnitOfWork, ctx: Context, opportunity: Opportunity, kind: str,
                       tag: str) -> str:
    """Record the deal's event (so scoring and rules see it); return the contact's stage."""
    now = ctx.clock.now()
    event = validate_event(EventIn(
        type=kind, contact_id=opportunity.contact_id, ts=now,
        message_id=f"opportunity:{opportunity.id}:{tag}",
        properties={"opportunity_id": opportunity.id, "amount": opportunity.amount,
                    "currency": opportunity.currency}), now=now)
    uow.serialize("tracking")
    record_in(uow=uow, ctx=ctx, event=event)
    return load_contact(uow, opportunity.contact_id).stage


def _move_unless_there(uow: UnitOfWork, ctx: Context, *, contact_id: int, stage: str,
                       roles: tuple[str, ...], target_role: str, reason: str,
                       actor: str) -> None:
    """Within the deal's transaction, move the contact by hand to the first stage of
    ``target_role`` unless it is in a stage of ``roles`` already (the rules moved it)."""
    if ctx.config.role_of(stage) in roles:
        return
    moves.move_stage_in(uow, ctx, contact_id=contact_id,
                        to_stage=ctx.config.first_stage(target_role).key, reason=reason,
                        actor=actor)


# ---------------------------------------------------------------- use cases


def create_opportunity(
    *, uow_factory: UnitOfWorkFactory, ctx: Context, contact_id: int, name: str,
    amount: float, currency: str, expected_close: str | None = None,
    deal_stage: str | None = None, probability: float | None = None,
    next_step: str | None = None, actor: str = "user", owner_id: int | None = None,
) -> Opportunity:
    """Open a deal for a contact, who enters the commit stage (``deal_created`` event)."""
    sales = ctx.config.sales
    stage = _deal_stage(deal_stage, ctx) if deal_stage is not None else sales.deal_stages[0].key
    values: dict[str, Any] = {
        "name": _name(name), "amount": _amount(amount), "currency": _currency(currency, ctx),
        "expected_close": _expected_close(expected_close), "deal_stage": stage,
        "probability": sales.deal_stage(stage).probability if probability is None
        else _probability(probability),
        "next_step": _next_step(next_step)}
    with uow_factory() as uow:
        contact = load_contact(uow, contact_id)
        _open_to_deals(contact, ctx)
        if owner_id is not None:
            owner = uow.users.get(owner_id)
            if owner is None or owner.role not in SALES_ROLES or not owner.active:
                raise InvalidInput(f"user {owner_id} is not an active sales user",
                                   field="owner_id")
        now = ctx.clock.now()
        opportunity = uow.opportunities.add(Opportunity(
            id=0, contact_id=contact_id, account_id=contact.account_id,
            owner_id=owner_id if owner_id is not None else contact.owner_id,
            status="open", lost_reason=None, closed_at=None, created_at=now, updated_at=now,
            created_by=actor, **values))
        uow.history.add_audit(contact_id, now, actor, "opportunity_created", {
            "opportunity_id": opportunity.id, **values, "owner_id": opportunity.owner_id})
        stage_now = _record_deal_event(uow, ctx, opportunity, "deal_created", "created")
        _move_unless_there(uow, ctx, contact_id=contact_id, stage=stage_now,
                           roles=("commit", "won"), target_role="commit",
                           reason=f"deal {opportunity.id} created", actor=actor)
        uow.commit()
    return opportunity


def update_opportunity(*, uow: UnitOfWork, ctx: Context, opportunity_id: int,
                       changes: dict[str, Any], actor: str = "user") -> Opportunity:
    """Change an open deal; a new deal stage brings its default probability unless one is
    given (a probability of None also means the stage's default)."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)} (editable: "
                           f"{', '.join(EDITABLE)})", field=unknown[0])
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            clean[key] = _name(value)
        elif key == "amount":
            clean[key] = _amount(value)
        elif key == "currency":
            clean[key] = _currency(value, ctx)
        elif key == "expected_close":
            clean[key] = _expected_close(value)
        elif key == "deal_stage":
            clean[key] = _deal_stage(value, ctx)
        elif key == "probability" and value is not None:
            clean[key] = _probability(value)
        elif key == "next_step":
            clean[key] = _next_step(value)
    with uow:
        before = _load(uow, opportunity_id)
        _still_open(before)
        stage = clean.get("deal_stage", before.deal_stage)
        if "probability" not in clean and ("probability" in changes
                                           or stage != before.deal_stage):
            clean["probability"] = ctx.config.sales.deal_stage(stage).probability
        diff = {k: [getattr(before, k), v] for k, v in clean.items() if getattr(before, k) != v}
        if not diff:
            return before
        now = ctx.clock.now()
        after = replace(before, **{k: v for k, (_, v) in diff.items()}, updated_at=now)
        uow.opportunities.save(after)
        uow.history.add_audit(before.contact_id, now, actor, "opportunity_updated",
                              {"opportunity_id": opportunity_id, "changes": diff})
        uow.commit()
    return after


def win_opportunity(*, uow_factory: UnitOfWorkFactory, ctx: Context, opportunity_id: int,
                    actor: str = "user") -> Opportunity:
    """Close a deal as won: its contact becomes a customer (``deal_won`` event)."""
    with uow_factory() as uow:
        before = _load(uow, opportunity_id)
        _still_open(before)
        if ctx.config.is_erased(load_contact(uow, before.contact_id).stage):
            raise MoveNotAllowed("this contact was erased at its own request",
                                 field="contact_id")
        now = ctx.clock.now()
        won = replace(before, status="won", closed_at=now, updated_at=now)
        uow.opportunities.save(won)
        uow.history.add_audit(won.contact_id, now, actor, "opportunity_won", {
            "opportunity_id": won.id, "amount": won.amount, "currency": won.currency})
        stage_now = _record_deal_event(uow, ctx, won, "deal_won", "won")
        _move_unless_there(uow, ctx, contact_id=won.contact_id, stage=stage_now,
                           roles=("won",), target_role="won", reason=f"deal {won.id} won",
                           actor=actor)
        uow.commit()
    return won


def lose_opportunity(*, uow_factory: UnitOfWorkFactory, ctx: Context, opportunity_id: int,
                     reason: str, then: str | None = None, note: str | None = None,
                     actor: str = "user") -> Opportunity:
    """Close a deal as lost with a configured reason; unless the contact has another open
    deal, it goes to nurture (recycled) or is disqualified. Nobody is erased.

    Only a contact in a hand-off or commit stage moves: a customer (an upsell lost), or a
    contact someone already recycled or disqualified, stays where it is.
    """
    sales = ctx.config.sales
    why = sales.lost_reason(reason)
    next_move = sales.lost_next if then is None else str(then).strip()
    if next_move not in LOST_NEXT:
        raise InvalidInput(f"after a lost deal the contact goes to {' or '.join(LOST_NEXT)}, "
                           f"not {then!r}", field="then")
    remark = str(note).strip() if note is not None else ""
    if len(remark) > NOTE_MAX:
        raise InvalidInput(f"longer than {NOTE_MAX} characters", field="note")
    with uow_factory() as uow:
        before = _load(uow, opportunity_id)
        _still_open(before)
        contact = load_contact(uow, before.contact_id)
        others = [o for o in uow.opportunities.of_contact(before.contact_id)
                  if o.status == "open" and o.id != before.id]
        moving = not others and ctx.config.role_of(contact.stage) in SALES_STAGE_ROLES
        now = ctx.clock.now()
        lost = replace(before, status="lost", lost_reason=why, closed_at=now, updated_at=now)
        uow.opportunities.save(lost)
        uow.history.add_audit(lost.contact_id, now, actor, "opportunity_lost", {
            "opportunity_id": lost.id, "lost_reason": why, "note": remark or None,
            "then": next_move if moving else None,
            "other_open_opportunities": [o.id for o in others]})
        if moving:  # in the same transaction: the deal is not lost without its move
            move_reason = f"lost deal: {why}"
            if next_move == "nurture":
                moves.recycle_in(uow, ctx, contact_id=lost.contact_id, reason=move_reason,
                                 actor=actor)
            else:
                moves.disqualify_in(uow, ctx, contact_id=lost.contact_id, reason=move_reason,
                                    actor=actor)
        uow.commit()
    return lost


def list_opportunities(
    *, reads: OpportunityReads, ctx: Context, principal: Principal, status: str | None = None,
    deal_stage: str | None = None, owner_id: int | None = None, limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the deals the principal may see (a rep: theirs and their contacts'), and
    how many there are."""
    if status is not None and status not in DEAL_STATUSES:
        raise InvalidInput(f"status is one of {', '.join(DEAL_STATUSES)}, not {status!r}",
                           field="status")
    stage = _deal_stage(deal_stage, ctx) if deal_stage is not None else None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is from 1 to {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidInput("offset is 0 or more", field="offset")
    return reads.list_opportunities(visible_owners=principal.visible_owners, status=status,
                                    deal_stage=stage, owner_id=owner_id, limit=limit,
                                    offset=offset)
