"""Many track and page calls at once: what ``record_in`` does for each, in a few statements.

Identities are looked up for the whole run in three queries, new visitors are created
together, each contact's events are scored in event-time order with the stage rules applied
after each, and everything is written with one statement per table. The result is what
recording the calls one by one gives (the tests compare both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from leadflow.domain.fit import score_fit
from leadflow.domain.identity import suppression_hash
from leadflow.domain.lifecycle import (
    apply_event_in_order,
    evaluate,
    first_seen,
    rebuild_from_history,
)
from leadflow.domain.model import Contact, Event, StageChange
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.webhooks import Message, outcome_messages, stage_message
from leadflow.services.contacts import normalize_contact_fields
from leadflow.services.context import Context
from leadflow.services.events import EventIn

IDENTITY_KINDS = ("user_id", "email", "anonymous_id")


# What recording events can change on a contact's own row (fit, consent, qualification...
# stay); its scores are written whole.
TRACKING_COLUMNS = ("stage", "stage_entered_at", "temperature", "temperature_until",
                    "last_event_at", "updated_at")


class NeedsOneByOne(Exception):
    """This run holds something the bulk path does not do (an erased person's id)."""


@dataclass
class _Writes:
    changes: list[StageChange] = field(default_factory=list)
    milestones: list[tuple[int, str, float, str, str]] = field(default_factory=list)
    outbox: list[Message] = field(default_factory=list)


def record_many(*, uow: UnitOfWork, ctx: Context, events: Sequence[EventIn]
                ) -> list[int | None]:
    """Record validated events that name no contact id, inside an open unit of work; the
    contact each was recorded for, in order (None: a duplicate, not recorded)."""
    cfg = ctx.config
    now = ctx.clock.now()
    fresh: list[EventIn] = []
    seen: set[str] = set()
    stored = uow.events.existing_messages([e.message_id for e in events if e.message_id])
    contact_at: list[int | None] = [None] * len(events)
    fresh_at: list[int] = []
    for position, event in enumerate(events):
        if event.message_id and (event.message_id in stored or event.message_id in seen):
            continue
        fresh_at.append(position)
        if event.message_id:
            seen.add(event.message_id)
        fresh.append(event)
    if not fresh:
        return contact_at
    values: dict[str, set[str]] = {kind: set() for kind in IDENTITY_KINDS}
    for event in fresh:
        for kind, value in event.identities:
            values[kind].add(value)
    hashes = [suppression_hash(kind, value, ctx.suppression_salt)
              for kind in IDENTITY_KINDS for value in values[kind]]
    if uow.suppressions.is_suppressed(hashes):
        raise NeedsOneByOne("an erased person's identity is in this run")
    owners: dict[tuple[str, str], int] = {}
    for kind in IDENTITY_KINDS:
        if values[kind]:
            for value, cid in uow.contacts.find_identities(kind, sorted(values[kind])).items():
                owners[(kind, value)] = cid

    # Who each event is about, as record_in would decide one event after the other.
    new_identities: list[tuple[int, str, str]] = []
    new_contacts: dict[int, Contact] = {}  # provisional (negative) id → contact
    owner_of: list[int] = []
    for event in fresh:
        found = next((owners[k] for k in event.identities if k in owners), None)
        if found is None:
            found = -(len(new_contacts) + 1)
            new_contacts[found] = _visitor(ctx, event, provisional_id=found, now=now)
            for kind, value in event.identities:
                owners[(kind, value)] = found
                new_identities.append((found, kind, value))
        else:
            for kind in ("user_id", "anonymous_id"):
                value = getattr(event, kind)
                if value and (kind, value) not in owners:
                    owners[(kind, value)] = found
                    new_identities.append((found, kind, value))
        owner_of.append(found)

    known = {c.id or 0: c for c in uow.contacts.get_many(
        sorted({cid for cid in owner_of if cid > 0}))}
    erased = [cid for cid, c in known.items() if cfg.is_erased(c.stage)]
    if erased or len(known) != len({cid for cid in owner_of if cid > 0}):
        raise NeedsOneByOne("an erased or vanished contact is in this run")

    # Every write waits for the end: new contacts are inserted once, as they end up.
    for contact, cid in zip(new_contacts.values(), uow.contacts.reserve_ids(len(new_contacts)),
                            strict=True):
        contact.id = cid
    contacts: dict[int, Contact] = {**known, **new_contacts}
    writes = _Writes()
    for contact in new_contacts.values():
        first = first_seen(contact, actor="tracking", config=cfg)
        writes.changes.append(first)
        writes.outbox.append(stage_message(contact, first))

    by_contact: dict[int, list[Event]] = {}
    stored_events: list[Event] = []
    for event, key in zip(fresh, owner_of, strict=True):
        contact = contacts[key]
        assert contact.id is not None
        assert event.ts is not None
        recorded = Event(contact_id=contact.id, ts=event.ts, shape=event.shape,
                         message_id=event.message_id, properties=event.properties,
                         received_at=now)
        stored_events.append(recorded)
        by_contact.setdefault(key, []).append(recorded)

    for mine in by_contact.values():
        mine.sort(key=lambda e: e.ts)
    # A late event (older than its contact's latest): replay the whole history, the stored
    # events (read in one statement) and this run's, in the order the database keeps them
    # (time, then id: this run's come after the stored ones, in arrival order), so that caps
    # and decay are exact.
    late = uow.events.histories(sorted(
        contacts[key].id or 0 for key, mine in by_contact.items()
        if contacts[key].last_event_at is not None
        and mine[0].ts < (contacts[key].last_event_at or 0.0)))
    for row in stored_events:
        if row.contact_id in late:
            late[row.contact_id].append((row.ts, row.shape))
    for key, mine in by_contact.items():
        contact = contacts[key]
        assert contact.id is not None
        if contact.id in late:
            history = late[contact.id]
            history.sort(key=lambda entry: entry[0])  # stable: ties keep the order above
            rebuild_from_history(contact, history, cfg)
            _evaluate(contact, ctx, at=mine[-1].ts, now=now, writes=writes)
        else:
            for row in mine:
                apply_event_in_order(contact, ts=row.ts, shape=row.shape, config=cfg)
                _evaluate(contact, ctx, at=row.ts, now=now, writes=writes)
        contact.updated_at = now

    uow.contacts.add_many(list(new_contacts.values()))
    uow.history.add_audits([
        (c.id, now, "tracking", "created",
         {k: v for k, v in (("email", c.email), ("source", c.source)) if v is not None})
        for c in new_contacts.values() if c.id is not None])
    uow.contacts.add_identities([(contacts[cid].id or 0, kind, value)
                                 for cid, kind, value in new_identities])
    uow.events.add_many(stored_events)
    uow.history.add_stage_changes(writes.changes)
    uow.history.add_milestones(writes.milestones)
    uow.outbox.add_many(writes.outbox)
    uow.contacts.save_many([contacts[k] for k in by_contact if k > 0], columns=TRACKING_COLUMNS)
    for position, key in zip(fresh_at, owner_of, strict=True):
        contact_at[position] = contacts[key].id
    return contact_at


def _visitor(ctx: Context, event: EventIn, *, provisional_id: int, now: float) -> Contact:
    """A first-seen visitor, as ``new_contact`` makes one for a tracking call."""
    assert event.ts is not None
    values = normalize_contact_fields({"email": event.email, "source": event.utm_source})
    contact = Contact(id=provisional_id, stage=ctx.config.first_stage("entry").key,
                      stage_entered_at=event.ts, created_at=now, updated_at=now,
                      email=values["email"], source=values["source"])
    contact.fit = score_fit(contact, None, ctx.config.fit)
    return contact


def _evaluate(contact: Contact, ctx: Context, *, at: float, now: float,
              writes: _Writes) -> None:
    assert contact.id is not None
    cfg = ctx.config
    contact.updated_at = now
    outcome = evaluate(contact, cfg, at=at, now=now)
    writes.milestones += [(contact.id, key, contact.milestones[key], "rule", cfg.config_version)
                          for key in outcome.milestones]
    writes.changes += outcome.stage_changes
    writes.outbox += outcome_messages(contact, outcome, at=now)
