"""New contacts of a chunk, built in memory and written in a few statements.

Each contact is built as ``new_contact`` then ``persist_outcome`` would build it (entry stage,
the move to the import stage with its reason, its events scored in time order with the rules
applied after each) and tells webhooks the same (through the outbox), but the chunk is written
with one statement per table instead of a dozen per row. The caller runs it inside a
savepoint, and falls back to ``import_row`` on any failure. (A contact imported into a hand-off
stage is handed to a rep by the follow-up sweep, which assigns unowned prospects.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from leadflow.domain.fit import score_fit
from leadflow.domain.lifecycle import Outcome, evaluate, first_seen, move
from leadflow.domain.model import ConsentRecord, Contact, Event, StageChange
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.webhooks import Message, outcome_messages, stage_message
from leadflow.services.contacts import CONTACT_FIELDS, normalize_contact_fields
from leadflow.services.context import Context
from leadflow.services.import_row import ImportTarget, score_in_order, stored_events
from leadflow.services.import_rows import RowPlan


@dataclass
class _Built:
    contact: Contact
    entry: list[StageChange]  # first seen, and the move to the import stage
    outcome: Outcome  # of its events, or of the rules at its entry
    identities: list[tuple[str, str]]
    created: dict[str, Any]  # what the audit entry "created" records
    events: list[Event]


def create_batch(*, uow: UnitOfWork, ctx: Context, plans: list[RowPlan],
                 target: ImportTarget, stored: set[str], now: float) -> int:
    """Create a contact for each plan (none of them known, none repeated) with its events,
    but those whose message id is ``stored`` already; the number of events stored."""
    built = [_build(ctx, plan, target, stored, now=now, provisional_id=-(i + 1))
             for i, plan in enumerate(plans)]
    uow.contacts.add_many([b.contact for b in built])
    changes: list[StageChange] = []
    identities: list[tuple[int, str, str]] = []
    audits: list[tuple[int, float, str, str, dict[str, Any]]] = []
    events: list[Event] = []
    milestones: list[tuple[int, str, float, str, str]] = []
    messages: list[Message] = []
    version = ctx.config.config_version
    for b in built:
        cid = b.contact.id
        assert cid is not None
        entry = [replace(c, contact_id=cid) for c in b.entry]
        outcome = replace(b.outcome, stage_changes=[replace(c, contact_id=cid)
                                                    for c in b.outcome.stage_changes])
        changes += entry + outcome.stage_changes
        identities += [(cid, kind, value) for kind, value in b.identities]
        audits.append((cid, now, target.actor, "created", b.created))
        events += [replace(e, contact_id=cid) for e in b.events]
        milestones += [(cid, key, b.contact.milestones[key], "rule", version)
                       for key in outcome.milestones]
        messages += [stage_message(b.contact, c) for c in entry]
        messages += outcome_messages(b.contact, outcome, at=now)
    uow.history.add_stage_changes(changes)
    uow.contacts.add_identities(identities)
    uow.history.add_audits(audits)
    uow.events.add_many(events)
    uow.history.add_milestones(milestones)
    uow.outbox.add_many(messages)
    return len(events)


def _build(ctx: Context, plan: RowPlan, target: ImportTarget, stored: set[str], *,
           now: float, provisional_id: int) -> _Built:
    cfg = ctx.config
    data = plan.contact
    values = normalize_contact_fields({k: getattr(data, k) for k in CONTACT_FIELDS})
    entry = cfg.first_stage("entry").key
    consent = {channel: ConsentRecord(channel=channel, granted=bool(granted),
                                      source=data.consent_source, at=now)
               for channel, granted in data.consent.items()}
    contact = Contact(id=provisional_id, stage=entry, stage_entered_at=plan.entry_at,
                      created_at=now, updated_at=now, attributes=dict(data.attributes),
                      consent=consent, **values)
    contact.fit = score_fit(contact, None, cfg.fit)
    changes = [first_seen(contact, actor=target.actor, config=cfg)]
    if target.stage != entry:
        changes.append(move(contact, target.stage, at=plan.entry_at, actor=target.actor,
                            config=cfg, reason=target.reason, kind="forward"))
    events = stored_events(provisional_id, [e for e in plan.events
                                            if e.message_id not in stored], now=now)
    if events:
        outcome = score_in_order(contact, events, cfg, now=now)
    else:
        outcome = evaluate(contact, cfg, at=plan.entry_at, now=now)
    identities = [(kind, value) for kind, value in (
        ("email", values.get("email")), ("user_id", data.user_id),
        (plan.identity_kind, plan.identity_value)) if value]
    return _Built(contact=contact, entry=changes, outcome=outcome,
                  identities=list(dict.fromkeys(identities)),
                  created={k: v for k, v in values.items() if v is not None},
                  events=events)
