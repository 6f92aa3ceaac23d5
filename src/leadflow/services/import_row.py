"""One imported row at a time: create or update its contact and store its new events.

Used for rows whose contact is already known, and for new ones the batch of
``import_batch`` cannot take (an account to find, an id seen twice in a chunk, a failed batch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Conflict, InvalidInput, Suppressed
from leadflow.domain.identity import suppression_hash
from leadflow.domain.lifecycle import (
    Outcome,
    apply_event_in_order,
    evaluate,
    move,
    rebuild_from_history,
)
from leadflow.domain.model import ConsentRecord, Contact, Event
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import load_contact, persist_outcome, record_stage_change, refit
from leadflow.services.contacts import (
    CONTACT_FIELDS,
    AccountIn,
    new_contact,
    normalize_contact_fields,
    upsert_account,
)
from leadflow.services.context import Context
from leadflow.services.events import EventIn, validate_event
from leadflow.services.import_rows import RowPlan


@dataclass(frozen=True)
class ImportTarget:
    stage: str  # where new contacts enter
    reason: str | None
    actor: str


def identity_hashes(plan: RowPlan, salt: str) -> list[str]:
    hashes = [suppression_hash(plan.identity_kind, plan.identity_value, salt)]
    if plan.contact.email:
        hashes.append(suppression_hash("email", plan.contact.email, salt))
    return hashes


def stored_events(contact_id: int, events: list[EventIn], *, now: float) -> list[Event]:
    """The events as stored for the contact. ``contact_id`` may be provisional (negative: a
    contact of ``import_batch`` not written yet), which ``validate_event`` rightly refuses as
    an id from outside; the events are checked as a stored contact's."""
    out = []
    for e in events:
        valid = validate_event(replace(e, contact_id=max(contact_id, 1)), now=now)
        out.append(Event(contact_id=contact_id, ts=valid.ts or now, shape=valid.shape,
                         message_id=valid.message_id, properties=valid.properties,
                         received_at=now))
    return out


def score_in_order(contact: Contact, events: list[Event], config: LifecycleConfig, *,
                   now: float) -> Outcome:
    """Score events no older than the contact's latest and apply the rules after each one,
    as recording them one by one would."""
    merged = Outcome()
    for event in events:
        apply_event_in_order(contact, ts=event.ts, shape=event.shape, config=config)
        outcome = evaluate(contact, config, at=event.ts, now=now)
        merged.milestones += outcome.milestones
        merged.stage_changes += outcome.stage_changes
    return merged


def write_row(*, uow: UnitOfWork, ctx: Context, plan: RowPlan, target: ImportTarget,
              now: float) -> tuple[str, int]:
    """Create or update the row's contact; its status (imported, updated, unchanged) and the
    number of events stored."""
    if uow.suppressions.is_suppressed(identity_hashes(plan, ctx.suppression_salt)):
        raise Suppressed("this person asked to be forgotten; the row is not imported")
    found = uow.contacts.find_by_identity(plan.identity_kind, plan.identity_value)
    if found is None and plan.contact.email and plan.identity_kind != "email":
        by_email = uow.contacts.get_by_email(plan.contact.email)
        found = by_email.id if by_email else None
    if found is None:
        contact, _ = new_contact(uow=uow, ctx=ctx, data=plan.contact, actor=target.actor,
                                 stage=target.stage, reason=target.reason, at=plan.entry_at)
        assert contact.id is not None
        if plan.identity_kind not in ("email", "user_id"):  # new_contact keeps those itself
            uow.contacts.add_identity(contact.id, plan.identity_kind, plan.identity_value)
        outcome, written = _record(uow, ctx, contact, plan.events, now=now)
        if not written:
            outcome = evaluate(contact, ctx.config, at=plan.entry_at, now=now)
        persist_outcome(uow, contact, outcome, ctx.config, actor="rule")
        return "imported", written
    contact = load_contact(uow, found)
    if ctx.config.is_erased(contact.stage):
        raise Suppressed("this person asked to be forgotten; the row is not imported")
    diff = apply_row(contact, plan, target, ctx.config, now=now)
    _write_links(uow, contact, plan, diff, now=now)
    if "stage" in diff:
        record_stage_change(uow, contact, move(contact, target.stage, at=now,
                                               actor=target.actor, config=ctx.config,
                                               reason=target.reason, kind="forward"),
                            ctx.config)
    outcome, written = _record(uow, ctx, contact, plan.events, now=now)
    if not (diff or written):
        return "unchanged", 0
    contact.updated_at = now
    if diff:
        refit(uow, contact, ctx.config)
        uow.history.add_audit(found, now, target.actor, "updated", diff)
    if not written:
        outcome = evaluate(contact, ctx.config, at=now, now=now)
    persist_outcome(uow, contact, outcome, ctx.config, actor="rule")
    return "updated", written


def apply_row(contact: Contact, plan: RowPlan, target: ImportTarget,
              config: LifecycleConfig, *, now: float) -> dict[str, Any]:
    """Change the contact in memory as the row says; the differences, for its timeline.

    A ``stage`` entry means the contact must still be moved forward to the import stage.
    """
    data = plan.contact
    values = normalize_contact_fields({k: getattr(data, k) for k in CONTACT_FIELDS
                                       if getattr(data, k) is not None})
    if contact.source is not None:
        values.pop("source", None)  # where someone came from is settled the first time
    diff: dict[str, Any] = {}
    for name, value in values.items():
        if getattr(contact, name) != value:
            diff[name] = [getattr(contact, name), value]
            setattr(contact, name, value)
    for name, value in data.attributes.items():
        if contact.attributes.get(name) != value:
            diff[f"attributes.{name}"] = [contact.attributes.get(name), value]
            contact.attributes[name] = value
    for channel, granted in data.consent.items():
        old = contact.consent.get(channel)
        if old is None or old.granted != granted:
            diff[f"consent.{channel}"] = [old.granted if old else None, granted]
            contact.consent[channel] = ConsentRecord(channel=channel, granted=granted,
                                                     source=data.consent_source, at=now)
    if 0 <= config.rank(contact.stage) < config.rank(target.stage):
        diff["stage"] = [contact.stage, target.stage]
    return diff


def _write_links(uow: UnitOfWork, contact: Contact, plan: RowPlan, diff: dict[str, Any], *,
                 now: float) -> None:
    """The identities and the account a row gives a known contact."""
    assert contact.id is not None
    if "email" in diff and contact.email:
        other = uow.contacts.get_by_email(contact.email)
        if other is not None and other.id != contact.id:
            raise Conflict(f"a contact with email {contact.email} already exists",
                           field="email")
        uow.contacts.add_identity(contact.id, "email", contact.email)
    uow.contacts.add_identity(contact.id, plan.identity_kind, plan.identity_value)
    data = plan.contact.account
    if data is None:
        return
    if contact.account_id is not None and not data.domain:
        _update_account(uow, contact.account_id, data, now=now)
        return
    account = upsert_account(uow=uow, data=data, now=now)
    if account.id != contact.account_id:
        diff["account_id"] = [contact.account_id, account.id]
        contact.account_id = account.id


def _update_account(uow: UnitOfWork, account_id: int, data: AccountIn, *, now: float) -> None:
    """Without a domain to find it by, the row's account is the contact's own."""
    account = uow.accounts.get(account_id)
    assert account is not None
    if data.employees is not None and data.employees < 0:
        raise InvalidInput("expected a whole number of employees", field="account.employees")
    values = {"name": data.name, "industry": data.industry, "employees": data.employees,
              "country": data.country.upper() if data.country else None,
              "annual_revenue": data.annual_revenue}
    changed = {k: v for k, v in values.items() if v is not None and getattr(account, k) != v}
    if changed or any(account.attributes.get(k) != v for k, v in data.attributes.items()):
        for key, value in changed.items():
            setattr(account, key, value)
        account.attributes.update(data.attributes)
        account.updated_at = now
        uow.accounts.save(account)


def _record(uow: UnitOfWork, ctx: Context, contact: Contact, events: list[EventIn], *,
            now: float) -> tuple[Outcome, int]:
    """Store the events not stored yet, and score them."""
    assert contact.id is not None
    fresh = [e for e in events if not (e.message_id and uow.events.has_message(e.message_id))]
    if not fresh:
        return Outcome(), 0
    stored = stored_events(contact.id, fresh, now=now)
    uow.events.add_many(stored)
    if contact.last_event_at is None or stored[0].ts >= contact.last_event_at:
        return score_in_order(contact, stored, ctx.config, now=now), len(stored)
    # Older than what the contact already has: replay its whole history, exactly.
    rebuild_from_history(contact, uow.events.history(contact.id), ctx.config)
    return evaluate(contact, ctx.config, at=contact.last_event_at or now, now=now), len(stored)
