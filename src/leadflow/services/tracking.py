"""Taking tracking traffic (Segment-compatible calls) into the lifecycle.

Every message of a request is stored in one transaction, so the caller's 2xx means all the
valid ones are committed. A message the services refuse (an erased person, a bad email...) is
dropped on its own and listed; its valid neighbours are stored.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.errors import ConcurrentChange, LeadflowError
from leadflow.domain.lifecycle import evaluate
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import load_contact, persist_outcome, refit
from leadflow.services.contacts import AccountIn, refit_colleagues, upsert_account
from leadflow.services.context import Context
from leadflow.services.events import (
    EventIn,
    identify_in,
    merge_contacts,
    record_in,
    validate_event,
)
from leadflow.services.tracking_bulk import NeedsOneByOne, record_many
from leadflow.services.tracking_messages import (
    AliasCall,
    Call,
    Envelope,
    GroupCall,
    IdentifyCall,
    Rejected,
    TrackCall,
    read_message,
)

CONCURRENT_RETRIES = 8


@dataclass
class TrackingResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    contact_ids: set[int] = field(default_factory=set)


@dataclass
class _Prepared:
    index: int
    call: Call
    event: EventIn  # validated


def read_messages(messages: Sequence[Any], envelope: Envelope, *, kind: str | None = None,
                  oversize: frozenset[int] = frozenset()) -> tuple[list[_Prepared],
                                                                    list[Rejected]]:
    """Check every message on its own; the good ones come back validated."""
    good: list[_Prepared] = []
    bad: list[Rejected] = []
    for i, message in enumerate(messages):
        message_id = message.get("messageId") if isinstance(message, dict) else None
        message_id = str(message_id) if isinstance(message_id, str | int) else None
        if i in oversize:
            bad.append(Rejected(i, message_id, None, "message larger than 32 KB"))
            continue
        try:
            call = read_message(message, envelope, kind=kind)
            event = validate_event(call.event, now=envelope.received_at)
        except LeadflowError as exc:
            bad.append(Rejected(i, message_id, exc.field, exc.message))
            continue
        good.append(_Prepared(i, call, event))
    return good, bad


def _identity_owner(uow: UnitOfWork, value: str) -> int | None:
    return (uow.contacts.find_by_identity("user_id", value)
            or uow.contacts.find_by_identity("anonymous_id", value))


def _apply(uow: UnitOfWork, ctx: Context, item: _Prepared, result: TrackingResult) -> None:
    call, event = item.call, item.event
    if event.message_id and uow.events.has_message(event.message_id):
        result.duplicates += 1
        return
    if isinstance(call, IdentifyCall):
        contact = identify_in(uow=uow, ctx=ctx, data=call.identify)
        assert contact.id is not None
        event.contact_id = contact.id
    elif isinstance(call, AliasCall):
        # alias(previousId → userId): one person known by two ids becomes one contact.
        previous = _identity_owner(uow, call.previous_id)
        current = uow.contacts.find_by_identity("user_id", call.user_id)
        if previous is not None and current is not None and previous != current:
            merge_contacts(uow=uow, ctx=ctx, survivor=load_contact(uow, current),
                           absorbed=load_contact(uow, previous), actor="tracking")
        elif previous is not None and current is None:
            uow.contacts.add_identity(previous, "user_id", call.user_id)
    outcome = record_in(uow=uow, ctx=ctx, event=event)
    result.contact_ids.add(outcome.contact_id)
    if isinstance(call, AliasCall) and _identity_owner(uow, call.previous_id) is None:
        # An id never seen before: the device's later calls are this user's.
        uow.contacts.add_identity(outcome.contact_id, "anonymous_id", call.previous_id)
    if isinstance(call, GroupCall):
        _link_account(uow, ctx, outcome.contact_id, call.account)
    if isinstance(call, IdentifyCall) and call.company is not None:
        _link_account(uow, ctx, outcome.contact_id, call.company)
    result.stored += 1


def _link_account(uow: UnitOfWork, ctx: Context, contact_id: int, data: AccountIn) -> None:
    contact = load_contact(uow, contact_id)
    now = ctx.clock.now()
    account = upsert_account(uow=uow, data=data, now=now, current=contact.account_id)
    assert account.id is not None
    if contact.account_id != account.id:
        uow.history.add_audit(contact_id, now, "tracking", "account linked",
                              {"account_id": [contact.account_id, account.id],
                               "group_id": data.attributes.get("group_id")})
        contact.account_id = account.id
    refit(uow, contact, ctx.config)
    contact.updated_at = now
    persist_outcome(uow, contact, evaluate(contact, ctx.config, at=now, now=now), ctx.config,
                    actor="tracking")
    refit_colleagues(uow=uow, ctx=ctx, account_id=account.id, except_id=contact_id,
                     actor="tracking")


def take_messages(*, uow: UnitOfWork, ctx: Context, messages: Sequence[Any],
                  envelope: Envelope, kind: str | None = None,
                  oversize: frozenset[int] = frozenset(), bulk: bool = True) -> TrackingResult:
    """Store every valid message of one request in one transaction; list the others.

    Runs of track and page calls go through the bulk path (``bulk``); identify, group and
    alias calls, which may merge contacts, one at a time between them. A request that meets
    a concurrent one creating the same visitor is simply done again.
    """
    good, bad = read_messages(messages, envelope, kind=kind, oversize=oversize)
    for attempt in range(CONCURRENT_RETRIES):
        try:
            return _take(uow, ctx, good, bad, bulk=bulk)
        except ConcurrentChange:
            if attempt == CONCURRENT_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
    raise AssertionError("unreachable")


def _take(uow: UnitOfWork, ctx: Context, good: list[_Prepared], bad: list[Rejected], *,
          bulk: bool) -> TrackingResult:
    bad = list(bad)
    while True:
        result = TrackingResult(rejected=list(bad))
        failed: _Prepared | None = None
        with uow:
            # Tracking requests touch many contacts each, in no order: one at a time they
            # neither deadlock nor race to create the same new visitor.
            uow.serialize("tracking")
            try:
                failed = _apply_all(uow, ctx, good, result, bulk=bulk)
            except (NeedsOneByOne, LeadflowError):
                if not bulk:
                    raise
                bulk = False  # undo, and go again one message at a time to find the culprit
                continue
            if failed is None:
                uow.commit()
                result.rejected.sort(key=lambda r: r.index)
                return result
        # Undo the whole attempt and go again without the message that failed: rare, and
        # cheaper than a savepoint around every message.
        bad.append(result.rejected[-1])
        good = [g for g in good if g is not failed]


def _apply_all(uow: UnitOfWork, ctx: Context, good: list[_Prepared], result: TrackingResult,
               *, bulk: bool) -> _Prepared | None:
    """Apply the messages in order; the one the services refused, if any (not applied)."""
    run: list[_Prepared] = []

    def flush() -> None:
        if run:
            done = record_many(uow=uow, ctx=ctx, events=[p.event for p in run])
            result.stored += done.stored
            result.duplicates += done.duplicates
            result.contact_ids |= done.contact_ids
            run.clear()

    for item in good:
        if bulk and isinstance(item.call, TrackCall) and item.event.contact_id is None:
            run.append(item)
            continue
        flush()
        try:
            _apply(uow, ctx, item, result)
        except LeadflowError as exc:
            result.rejected.append(Rejected(item.index, item.event.message_id, exc.field,
                                            exc.message))
            return item
    flush()
    return None
