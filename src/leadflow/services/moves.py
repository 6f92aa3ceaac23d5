"""Moves made by people: by hand with a reason, disqualify, recycle, qualify, erase."""

from __future__ import annotations

from typing import Any

from leadflow.domain.errors import InvalidInput, MoveNotAllowed
from leadflow.domain.identity import suppression_hash
from leadflow.domain.lifecycle import evaluate, move, recycle_now, refresh_temperature
from leadflow.domain.model import Contact, StageChange
from leadflow.domain.ports import Mailer, UnitOfWork
from leadflow.domain.qualification import evaluate as evaluate_qualification
from leadflow.domain.qualification import parse_answer
from leadflow.domain.sales import SALES_STAGE_ROLES
from leadflow.services.common import (
    load_contact,
    persist_outcome,
    record_stage_change,
    record_temperature_change,
)
from leadflow.services.context import Context

RECYCLABLE_ROLES = ("handoff", "commit", "excluded")


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise InvalidInput("a move by hand needs a reason", field="reason")
    return reason.strip()


def _not_erased(contact: Contact, ctx: Context) -> None:
    if ctx.config.is_erased(contact.stage):
        raise MoveNotAllowed("this contact was erased at its own request; it cannot move",
                             field="stage")


def _leave_sales(uow: UnitOfWork, ctx: Context, contact: Contact, change: StageChange, *,
                 actor: str) -> None:
    """A contact leaving sales' stages closes its open tasks; one sent back to marketing
    (entry or interest) is nobody's any more, so a later hand-off assigns it afresh."""
    cfg = ctx.config
    assert contact.id is not None
    if not change.from_stage or not cfg.has_stage(change.from_stage) or (
            cfg.role_of(change.from_stage) not in SALES_STAGE_ROLES):
        return
    to_role = cfg.role_of(change.to_stage)
    if to_role in SALES_STAGE_ROLES or to_role == "won":
        return
    uow.tasks.close_open(contact.id, at=change.at, by=actor,
                         outcome=f"left {change.from_stage} for {change.to_stage}")
    if to_role in ("entry", "interest") and contact.owner_id is not None:
        uow.history.add_audit(contact.id, change.at, actor, "unassigned", {
            "from_owner_id": contact.owner_id, "reason": change.reason})
        contact.owner_id = None


def _finish(uow: UnitOfWork, ctx: Context, contact: Contact, change: StageChange, *,
            actor: str) -> Contact:
    now = ctx.clock.now()
    _leave_sales(uow, ctx, contact, change, actor=actor)
    outcome = evaluate(contact, ctx.config, at=now, now=now) if change.kind == "forward" else None
    contact.updated_at = now
    if outcome is None:
        before = contact.temperature
        if refresh_temperature(contact, ctx.config, now=now):
            record_temperature_change(uow, contact, before=before, at=now)
    record_stage_change(uow, contact, change, ctx.config)
    if outcome is not None:
        persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
    else:
        uow.contacts.save(contact)
    return contact


def move_stage(*, uow: UnitOfWork, ctx: Context, contact_id: int, to_stage: str,
               reason: str, actor: str = "user") -> Contact:
    """Move a contact to any stage by hand (forward or backward), with a reason."""
    with uow:
        contact = move_stage_in(uow, ctx, contact_id=contact_id, to_stage=to_stage,
                                reason=reason, actor=actor)
        uow.commit()
    return contact


def move_stage_in(uow: UnitOfWork, ctx: Context, *, contact_id: int, to_stage: str,
                  reason: str, actor: str) -> Contact:
    """``move_stage`` inside the caller's transaction (it commits)."""
    why = _reason(reason)
    cfg = ctx.config
    if not cfg.has_stage(to_stage):
        raise InvalidInput(f"unknown stage {to_stage!r} (stages: "
                           f"{', '.join(s.key for s in cfg.stages)})", field="stage")
    role = cfg.role_of(to_stage)
    if role == "erased":
        raise MoveNotAllowed("a contact is closed only at its own request: use erase",
                             field="stage")
    contact = load_contact(uow, contact_id)
    _not_erased(contact, ctx)
    if contact.stage == to_stage:
        raise MoveNotAllowed(f"the contact is already in {to_stage}", field="stage")
    now = ctx.clock.now()
    if role == "excluded":
        kind = "side"
    elif cfg.rank(to_stage) > cfg.rank(contact.stage) >= 0:
        kind = "forward"
    else:
        kind = "backward"
    if kind == "backward":
        # Evidence from before a move back must not carry the contact forward again.
        recycle_now(contact, cfg, now=now)
    change = move(contact, to_stage, at=now, actor=actor, config=cfg, reason=why, kind=kind)
    _finish(uow, ctx, contact, change, actor=actor)
    return contact


def disqualify(*, uow: UnitOfWork, ctx: Context, contact_id: int, reason: str,
               actor: str = "user") -> Contact:
    """Not for us (competitor, outside every persona, failed qualification): excluded stage."""
    target = ctx.config.first_stage("excluded").key
    return move_stage(uow=uow, ctx=ctx, contact_id=contact_id, to_stage=target, reason=reason,
                      actor=actor)


def disqualify_in(uow: UnitOfWork, ctx: Context, *, contact_id: int, reason: str,
                  actor: str) -> Contact:
    """``disqualify`` inside the caller's transaction."""
    return move_stage_in(uow, ctx, contact_id=contact_id,
                         to_stage=ctx.config.first_stage("excluded").key, reason=reason,
                         actor=actor)


def recycle(*, uow: UnitOfWork, ctx: Context, contact_id: int, reason: str,
            actor: str = "user") -> Contact:
    """Send a prospect, opportunity or disqualified contact back to nurture (interest stage).

    Evidence older than the recycle no longer counts for the hand-off rule.
    """
    with uow:
        contact = recycle_in(uow, ctx, contact_id=contact_id, reason=reason, actor=actor)
        uow.commit()
    return contact


def recycle_in(uow: UnitOfWork, ctx: Context, *, contact_id: int, reason: str,
               actor: str) -> Contact:
    """``recycle`` inside the caller's transaction."""
    why = _reason(reason)
    cfg = ctx.config
    contact = load_contact(uow, contact_id)
    role = cfg.role_of(contact.stage)
    if role not in RECYCLABLE_ROLES:
        raise MoveNotAllowed(
            f"only contacts in {', '.join(RECYCLABLE_ROLES)} stages can be recycled; "
            f"this one is in {contact.stage} ({role})", field="stage")
    now = ctx.clock.now()
    recycle_now(contact, cfg, now=now)
    change = move(contact, cfg.first_stage("interest").key, at=now, actor=actor, config=cfg,
                  reason=why, kind="backward")
    _finish(uow, ctx, contact, change, actor=actor)
    return contact


def qualify(*, uow: UnitOfWork, ctx: Context, contact_id: int, answers: dict[str, Any],
            actor: str = "user") -> Contact:
    """Record BANT and prerequisite answers; passing sets the `qualified` milestone."""
    questions = {q.key: q for q in ctx.config.questions}
    parsed: dict[str, Any] = {}
    for key, raw in answers.items():
        if key not in questions:
            raise InvalidInput(f"unknown question {key!r} (questions: "
                               f"{', '.join(questions)})", field=f"answers.{key}")
        parsed[key] = parse_answer(questions[key], raw)
    with uow:
        contact = load_contact(uow, contact_id)
        _not_erased(contact, ctx)
        now = ctx.clock.now()
        merged = {**contact.qualification.answers, **parsed}
        merged = {k: v for k, v in merged.items() if v is not None}
        result = evaluate_qualification(ctx.config.questions, merged, now=now,
                                        account_role=contact.account_role)
        result.answers = merged
        result.by, result.at = actor, now
        contact.qualification = result
        contact.updated_at = now
        outcome = evaluate(contact, ctx.config, at=now, now=now)
        persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
        uow.history.add_audit(contact_id, now, actor, "qualification",
                              {"answers": parsed, "passed": result.passed,
                               "missing": result.missing, "failed": result.failed})
        uow.commit()
    return contact


PERSONAL_FIELDS = ("email", "phone", "first_name", "last_name", "title", "seniority",
                   "account_role", "region", "referred_by_id")


def erase(*, uow: UnitOfWork, ctx: Context, contact_id: int, reason: str,
          actor: str = "user", mailer: Mailer | None = None) -> Contact:
    """"Lose my name and email": move to the erased stage and delete personal data.

    Only salted hashes of the email, user id and anonymous ids stay, in the suppression list,
    so that no later form, import or tracking call brings the person back.
    """
    why = _reason(reason)
    with uow:
        contact = load_contact(uow, contact_id)
        _not_erased(contact, ctx)
        now = ctx.clock.now()
        identities = uow.contacts.identities(contact_id)
        if contact.email:
            identities.append(("email", contact.email))
        for kind, value in identities:
            uow.suppressions.add(suppression_hash(kind, value, ctx.suppression_salt), kind, now)
        uow.contacts.delete_identities(contact_id)
        uow.events.strip_properties(contact_id)
        uow.history.erase_audit_details(contact_id)
        sent = uow.activities.message_ids(contact_id) + uow.mail.message_ids(contact_id)
        uow.mail.erase(contact_id)
        uow.tasks.close_open(contact_id, at=now, by=actor, outcome="erased")
        uow.tasks.erase_text(contact_id)
        uow.activities.erase_text(contact_id)
        uow.opportunities.erase_text(contact_id)
        for name in PERSONAL_FIELDS:
            setattr(contact, name, None)
        contact.attributes = {}
        contact.consent = {}
        contact.qualification.answers = {}
        contact.fit.breakdown = []
        change = move(contact, ctx.config.first_stage("erased").key, at=now, actor=actor,
                      config=ctx.config, reason=why, kind="side")
        contact.temperature, contact.temperature_until = None, None
        uow.outbox.forget_contact(contact_id)
        record_stage_change(uow, contact, change, ctx.config)
        uow.history.add_audit(contact_id, now, actor, "erased", {"reason": why})
        contact.updated_at = now
        uow.contacts.save(contact)
        uow.commit()
    if mailer is not None:  # copies of emails kept by the mailer (the file outbox), once the
        mailer.forget(sent)  # erasure is committed: a send finishing later forgets its own
    return contact
