"""Taking tracking traffic (Segment-compatible calls) into the lifecycle.

Every message of a request is stored in one transaction, so the caller's 2xx means all the
valid ones are committed. A message the services refuse (an erased person, a bad email...) is
dropped on its own and listed; its valid neighbours are stored.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.errors import ConcurrentChange, LeadflowError, Unavailable
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
log = logging.getLogger("leadflow.tracking")


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
                  oversize: frozenset[int] = frozenset(), bulk: bool = True,
                  together: Together | None = None) -> TrackingResult:
    """Store every valid message of one request in one transaction; list the others.

    Runs of track and page calls go through the bulk path (``bulk``); identify, group and
    alias calls, which may merge contacts, one at a time between them. A request that meets
    a concurrent one creating the same visitor is simply done again. With ``together``,
    requests that come while another is being written are then written with others in one
    transaction (each still whole in one).
    """
    good, bad = read_messages(messages, envelope, kind=kind, oversize=oversize)
    request = _Request(good, bad)
    if together is None:
        _write_group(uow, ctx, [request], bulk=bulk)
    else:
        together.submit(request, lambda group: _write_group(uow, ctx, group, bulk=bulk))
    if request.error is not None:
        raise request.error
    assert request.result is not None
    return request.result


@dataclass(eq=False)
class _Request:
    good: list[_Prepared]
    bad: list[Rejected]
    result: TrackingResult | None = None
    error: Exception | None = None
    done: bool = False


class Together:
    """Group commit for tracking requests: one transaction (one commit, one statement per
    table) for the requests that queued while the last was being written, up to
    ``most_messages`` messages, instead of one each. PostgreSQL syncs its log at every
    commit, and every statement is a round trip."""

    def __init__(self, *, most_messages: int = 1000) -> None:
        self.most_messages = most_messages
        self._turn = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Request] = []

    def submit(self, request: _Request, write: Callable[[list[_Request]], None]) -> None:
        """Return once ``request`` is written (its result or error set), by this thread or by
        the one whose turn it was."""
        with self._queue_lock:
            self._queue.append(request)
        with self._turn:
            while not request.done:
                with self._queue_lock:
                    group: list[_Request] = []
                    size = 0
                    while self._queue and (not group or size + len(self._queue[0].good)
                                           <= self.most_messages):
                        size += len(self._queue[0].good)
                        group.append(self._queue.pop(0))
                try:
                    write(group)
                finally:
                    for member in group:
                        member.done = True


def _write_group(uow: UnitOfWork, ctx: Context, group: list[_Request], *, bulk: bool) -> None:
    """Write ``group`` in one transaction; when one of its messages fails it, each request on
    its own, so that only the one at fault fails. A database too busy fails them all alike,
    at once (each is answered "come again")."""
    try:
        _take_retrying(uow, ctx, group, bulk=bulk)
        return
    except (ConcurrentChange, Unavailable) as exc:
        for request in group:
            request.error = exc
        return
    except Exception as exc:
        if len(group) == 1:
            group[0].error = exc
            return
        log.warning("%d tracking requests written together failed (%s: %s); writing them "
                    "one at a time", len(group), type(exc).__name__, exc)
    for request in group:
        try:
            _take_retrying(uow, ctx, [request], bulk=bulk)
        except Exception as exc:
            request.error = exc


def _take_retrying(uow: UnitOfWork, ctx: Context, group: list[_Request], *,
                   bulk: bool) -> None:
    for attempt in range(CONCURRENT_RETRIES):
        try:
            _take(uow, ctx, group, bulk=bulk)
            return
        except ConcurrentChange:
            if attempt == CONCURRENT_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))


def _take(uow: UnitOfWork, ctx: Context, group: list[_Request], *, bulk: bool) -> None:
    good = {id(r): list(r.good) for r in group}
    bad = {id(r): list(r.bad) for r in group}
    while True:
        results = {id(r): TrackingResult(rejected=list(bad[id(r)])) for r in group}
        items = [(item, results[id(r)]) for r in group for item in good[id(r)]]
        failed: tuple[_Prepared, TrackingResult] | None = None
        with uow:
            # Tracking requests touch many contacts each, in no order: one at a time they
            # neither deadlock nor race to create the same new visitor.
            uow.serialize("tracking")
            try:
                failed = _apply_all(uow, ctx, items, bulk=bulk)
            except (NeedsOneByOne, LeadflowError):
                if not bulk:
                    raise
                bulk = False  # undo, and go again one message at a time to find the culprit
                continue
            if failed is None:
                uow.commit()
                for r in group:
                    r.result = results[id(r)]
                    r.result.rejected.sort(key=lambda rejected: rejected.index)
                return
        # Undo the whole attempt and go again without the message that failed: rare, and
        # cheaper than a savepoint around every message.
        item, result = failed
        owner = next(r for r in group if results[id(r)] is result)
        bad[id(owner)].append(result.rejected[-1])
        good[id(owner)] = [g for g in good[id(owner)] if g is not item]


def _apply_all(uow: UnitOfWork, ctx: Context, items: list[tuple[_Prepared, TrackingResult]],
               *, bulk: bool) -> tuple[_Prepared, TrackingResult] | None:
    """Apply the messages in order, each counted in its request's result; the one the
    services refused, if any (not applied)."""
    run: list[tuple[_Prepared, TrackingResult]] = []

    def flush() -> None:
        if run:
            recorded = record_many(uow=uow, ctx=ctx, events=[p.event for p, _ in run])
            for (_, result), contact_id in zip(run, recorded, strict=True):
                if contact_id is None:
                    result.duplicates += 1
                else:
                    result.stored += 1
                    result.contact_ids.add(contact_id)
            run.clear()

    for item, result in items:
        if bulk and isinstance(item.call, TrackCall) and item.event.contact_id is None:
            run.append((item, result))
            continue
        flush()
        try:
            _apply(uow, ctx, item, result)
        except LeadflowError as exc:
            result.rejected.append(Rejected(item.index, item.event.message_id, exc.field,
                                            exc.message))
            return item, result
    flush()
    return None
