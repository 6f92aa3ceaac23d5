"""Repositories over one SQLAlchemy connection, and the unit of work that owns it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Connection,
    CursorResult,
    Engine,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_rows import (
    begin_now,
    insert_returning_ids,
    insert_rows,
    is_postgresql,
    next_ids,
    update_rows,
)
from leadflow.adapters.db.engine import one_writer_at_a_time, try_again_later
from leadflow.adapters.db.mapping import (
    account_from_row,
    account_values,
    contact_from_row,
    contact_values,
    queue_rank,
    score_values,
    shape_from_row,
    shape_row,
    shape_signature,
)
from leadflow.adapters.db.nurture_repositories import (
    SqlContentRepository,
    SqlEnrollmentRepository,
    SqlFormRepository,
    SqlMailRepository,
    SqlTrackRepository,
)
from leadflow.adapters.db.operations import (
    SqlApiKeyRepository,
    SqlOutboxRepository,
    SqlWebhookRepository,
)
from leadflow.adapters.db.sales_repositories import (
    SqlActivityRepository,
    SqlOpportunityRepository,
    SqlTaskRepository,
    SqlUserRepository,
)
from leadflow.adapters.db.segment_repository import SqlSegmentRepository
from leadflow.domain.errors import ConcurrentChange, Unavailable
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact, Event, StageChange
from leadflow.domain.nurture_ports import (
    ContentRepository,
    EnrollmentRepository,
    FormRepository,
    MailRepository,
    TrackRepository,
)
from leadflow.domain.ports import (
    AccountRepository,
    ActivityRepository,
    ApiKeyRepository,
    ContactRepository,
    EventRepository,
    HistoryRepository,
    OpportunityRepository,
    OutboxRepository,
    SegmentRepository,
    SuppressionRepository,
    TaskRepository,
    UserRepository,
    WebhookRepository,
)

# Built once: a statement made anew on every call costs more than running it.
FIND_IDENTITY = select(t.identities.c.contact_id).where(
    t.identities.c.kind == bindparam("kind"), t.identities.c.value == bindparam("value"))
FIND_MESSAGE = select(t.events.c.id).where(t.events.c.message_id == bindparam("message_id"))


def _json_list(name: str) -> Select[Any]:
    """The values of a JSON array parameter, on SQLite: one statement, compiled once,
    whatever the number of values (an expanding IN is rendered anew at each run)."""
    return select(literal_column("value")).select_from(func.json_each(bindparam(name)))


FIND_SUPPRESSED = select(t.suppressions.c.hash).where(
    t.suppressions.c.hash.in_(_json_list("hashes")))
FIND_IDENTITIES = select(t.identities.c.value, t.identities.c.contact_id).where(
    t.identities.c.kind == bindparam("kind"), t.identities.c.value.in_(_json_list("values")))
FIND_MESSAGES = select(t.events.c.message_id).where(
    t.events.c.message_id.in_(_json_list("ids")))
# PostgreSQL takes the whole list as one array parameter: a short statement, planned once.
PG_FIND_IDENTITIES = select(t.identities.c.value, t.identities.c.contact_id).where(
    t.identities.c.kind == bindparam("kind"),
    t.identities.c.value == any_(bindparam("values", type_=ARRAY(String))))
# The explicit IS NOT NULL lets a generic (prepared) plan use the partial unique index.
PG_FIND_MESSAGES = select(t.events.c.message_id).where(
    t.events.c.message_id.is_not(None),
    t.events.c.message_id == any_(bindparam("ids", type_=ARRAY(String))))
PG_FIND_SUPPRESSED = select(t.suppressions.c.hash).where(
    t.suppressions.c.hash == any_(bindparam("hashes", type_=ARRAY(String))))
TRANSIENT_SQLSTATES = {"23505", "40001", "40P01"}  # unique violation, serialization, deadlock


def is_transient(exc: object) -> bool:
    """A failure that running the same work again can get past: another transaction
    inserted the same key first, or the database chose this one to break a deadlock.
    (COPY runs on the driver's own cursor, so its errors come unwrapped.)"""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if getattr(orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    if not isinstance(exc, DBAPIError):
        return False
    text = str(orig).lower()
    return "unique constraint failed" in text or "database is locked" in text


IN_SLICE = 500  # values per IN (...) list: within every database's limit of parameters
# A contact is read with its scores (one contact_scores row each).
CONTACT_COLUMNS = tuple(c.name for c in t.contacts.c)
CONTACT_WITH_SCORES = select(
    t.contacts, *(c for c in t.contact_scores.c if c.name not in ("contact_id", "rescored"))
).join(t.contact_scores, t.contact_scores.c.contact_id == t.contacts.c.id)


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _slices(conn: Connection, values: Sequence[str]) -> list[Any]:
    """``values`` as the FIND_ and PG_FIND_ statements take them: an array on PostgreSQL,
    JSON arrays of up to IN_SLICE values on SQLite."""
    if is_postgresql(conn):
        return [list(values)] if values else []
    return [orjson.dumps(list(values[i:i + IN_SLICE])).decode()
            for i in range(0, len(values), IN_SLICE)]


class SqlContactRepository:
    def __init__(self, conn: Connection, half_life_seconds: float) -> None:
        self.conn = conn
        self.half_life_seconds = half_life_seconds
        # Each contact's own row as this unit of work last read or wrote it, so that
        # ``save_many`` writes only the columns that changed: SQLite rewrites the entry of
        # every index on a column an UPDATE sets, changed or not (a tracked event changes
        # two or three of the nine such indexes of what it may set).
        self._as_stored: dict[int, dict[str, Any]] = {}

    def _milestones(self, ids: Sequence[int]) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {i: {} for i in ids}
        rows = self.conn.execute(
            select(t.milestones.c.contact_id, t.milestones.c.key, t.milestones.c.reached_at)
            .where(t.milestones.c.contact_id.in_(ids)))
        for cid, key, at in rows:
            out[cid][key] = at
        return out

    def get(self, contact_id: int) -> Contact | None:
        found = self.get_many([contact_id])
        return found[0] if found else None

    def get_many(self, contact_ids: Sequence[int]) -> list[Contact]:
        """Contacts by id. On PostgreSQL their rows stay locked until the transaction ends,
        so two units of work changing the same contact take turns (SQLite locks it all)."""
        if not contact_ids:
            return []
        query = CONTACT_WITH_SCORES.where(t.contacts.c.id.in_(contact_ids))
        if is_postgresql(self.conn):
            query = query.order_by(t.contacts.c.id).with_for_update()
        rows = self.conn.execute(query)
        rows_by_id = {r.id: r for r in rows}
        for cid, r in rows_by_id.items():
            self._as_stored[cid] = dict(zip(CONTACT_COLUMNS, r, strict=False))  # theirs lead
        ms = self._milestones(list(rows_by_id))
        return [contact_from_row(rows_by_id[i], ms[i]) for i in contact_ids if i in rows_by_id]

    def get_by_email(self, email: str) -> Contact | None:
        cid = self.conn.execute(
            select(t.contacts.c.id).where(t.contacts.c.email == email.strip().lower())
        ).scalar()
        return self.get(cid) if cid is not None else None

    def find_by_identity(self, kind: str, value: str) -> int | None:
        return self.conn.execute(FIND_IDENTITY, {"kind": kind, "value": value}).scalar()

    def find_identities(self, kind: str, values: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        query = PG_FIND_IDENTITIES if is_postgresql(self.conn) else FIND_IDENTITIES
        for part in _slices(self.conn, values):
            for value, cid in self.conn.execute(query, {"kind": kind, "values": part}):
                out[value] = cid
        return out

    def identities(self, contact_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            select(t.identities.c.kind, t.identities.c.value)
            .where(t.identities.c.contact_id == contact_id).order_by(t.identities.c.id))
        return [(k, v) for k, v in rows]

    def _own(self, contact: Contact, scores: dict[str, Any]) -> dict[str, Any]:
        return {**contact_values(contact), "queue_rank": queue_rank(contact, scores)}

    def add(self, contact: Contact) -> int:
        scores = score_values(contact, self.half_life_seconds)
        contact.id = _new_id(self.conn.execute(insert(t.contacts), self._own(contact, scores)))
        self.conn.execute(insert(t.contact_scores), {"contact_id": contact.id, **scores})
        return contact.id

    def add_many(self, contacts: Sequence[Contact]) -> None:
        """Insert new contacts in one statement batch. Each gets its id, unless all have
        one already (from ``reserve_ids``), which is much faster on SQLite."""
        if not contacts:
            return
        scores = [score_values(c, self.half_life_seconds) for c in contacts]
        if all(c.id is not None and c.id > 0 for c in contacts):
            insert_rows(self.conn, t.contacts, [
                {**self._own(c, s), "id": c.id} for c, s in zip(contacts, scores, strict=True)])
        else:
            ids = insert_returning_ids(self.conn, t.contacts, [
                self._own(c, s) for c, s in zip(contacts, scores, strict=True)])
            for contact, cid in zip(contacts, ids, strict=True):
                contact.id = cid
        insert_rows(self.conn, t.contact_scores, [
            {"contact_id": c.id, **s} for c, s in zip(contacts, scores, strict=True)])

    def reserve_ids(self, count: int) -> list[int]:
        """Ids for ``count`` contacts that ``add_many`` will insert in this transaction. On
        SQLite the unit of work holds the write lock, so nobody else takes them meanwhile."""
        if count <= 0:
            return []
        if is_postgresql(self.conn):
            return next_ids(self.conn, t.contacts, count)
        # AUTOINCREMENT: never an id used before, even by a contact since merged away.
        last = self.conn.exec_driver_sql(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'contacts'), 0),"
            " COALESCE((SELECT MAX(id) FROM contacts), 0))").scalar() or 0
        return list(range(int(last) + 1, int(last) + 1 + count))

    def save(self, contact: Contact) -> None:
        assert contact.id is not None
        scores = score_values(contact, self.half_life_seconds)
        own = self._own(contact, scores)
        self.conn.execute(update(t.contacts).where(t.contacts.c.id == contact.id), own)
        self._as_stored[contact.id] = own
        if not self.conn.execute(update(t.contact_scores)
                                 .where(t.contact_scores.c.contact_id == contact.id),
                                 scores).rowcount:
            self.conn.execute(insert(t.contact_scores), {"contact_id": contact.id, **scores})

    def save_many(self, contacts: Sequence[Contact], *, columns: Sequence[str] | None = None
                  ) -> None:
        """Update many contacts with one statement batch per table: their scores, and of
        their own row only ``columns`` when given."""
        if not contacts:
            return
        own: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # by the columns that changed
        scores = []
        for contact in contacts:
            assert contact.id is not None
            score = score_values(contact, self.half_life_seconds)
            values = self._own(contact, score)
            if columns is not None:
                values = {c: values[c] for c in (*columns, "queue_rank")}
            stored = self._as_stored.get(contact.id)
            changed = tuple(c for c, v in values.items()
                            if stored is None or c not in stored or stored[c] != v)
            if changed:
                own.setdefault(changed, []).append(
                    {**{c: values[c] for c in changed}, "id": contact.id})
            if stored is not None:
                stored.update(values)
            scores.append({**score, "contact_id": contact.id})
        for rows in own.values():
            update_rows(self.conn, t.contacts, "id", rows)
        update_rows(self.conn, t.contact_scores, "contact_id", scores)

    def delete(self, contact_id: int) -> None:
        self._as_stored.clear()  # referrals change below
        self.conn.execute(delete(t.milestones).where(t.milestones.c.contact_id == contact_id))
        self.conn.execute(delete(t.identities).where(t.identities.c.contact_id == contact_id))
        self.conn.execute(delete(t.contact_scores)
                          .where(t.contact_scores.c.contact_id == contact_id))
        self.conn.execute(update(t.contacts).where(t.contacts.c.referred_by_id == contact_id)
                          .values(referred_by_id=None))
        self.conn.execute(delete(t.contacts).where(t.contacts.c.id == contact_id))

    def add_identity(self, contact_id: int, kind: str, value: str) -> None:
        if self.find_by_identity(kind, value) is None:
            self.conn.execute(insert(t.identities),
                              {"contact_id": contact_id, "kind": kind, "value": value})

    def add_identities(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Insert identities known to be new: (contact id, kind, value)."""
        insert_rows(self.conn, t.identities, [
            {"contact_id": cid, "kind": kind, "value": value} for cid, kind, value in rows])

    def move_identities(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.identities).where(t.identities.c.contact_id == from_id)
                          .values(contact_id=to_id))

    def move_referrals(self, from_id: int, to_id: int) -> None:
        self._as_stored.clear()
        self.conn.execute(update(t.contacts).where(t.contacts.c.referred_by_id == from_id,
                                                   t.contacts.c.id != to_id)
                          .values(referred_by_id=to_id))

    def delete_identities(self, contact_id: int) -> None:
        self.conn.execute(delete(t.identities).where(t.identities.c.contact_id == contact_id))

    def record_merge(self, absorbed_id: int, survivor_id: int, at: float, actor: str) -> None:
        m = t.contact_merges
        self.conn.execute(update(m).where(m.c.survivor_id == absorbed_id)
                          .values(survivor_id=survivor_id))
        self.conn.execute(insert(m).values(absorbed_id=absorbed_id, survivor_id=survivor_id,
                                           at=at, actor=actor))

    def merged_into(self, contact_id: int) -> int | None:
        m = t.contact_merges
        return self.conn.execute(select(m.c.survivor_id)
                                 .where(m.c.absorbed_id == contact_id)).scalar()

    def unowned_ids(self, stages: Sequence[str], limit: int) -> list[int]:
        rows = self.conn.execute(
            select(t.contacts.c.id).where(t.contacts.c.owner_id.is_(None),
                                          t.contacts.c.stage.in_(list(stages)))
            .order_by(t.contacts.c.id).limit(limit))
        return [r[0] for r in rows]

    def expired_temperature_ids(self, now: float, limit: int) -> list[int]:
        rows = self.conn.execute(
            select(t.contacts.c.id).where(t.contacts.c.temperature_until <= now)
            .order_by(t.contacts.c.temperature_until).limit(limit))
        return [r[0] for r in rows]


class SqlAccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, account_id: int) -> Account | None:
        row = self.conn.execute(select(t.accounts).where(t.accounts.c.id == account_id)).first()
        return account_from_row(row) if row else None

    def get_by_domain(self, domain: str) -> Account | None:
        row = self.conn.execute(
            select(t.accounts).where(t.accounts.c.domain == domain.strip().lower())).first()
        return account_from_row(row) if row else None

    def get_by_name(self, name: str) -> Account | None:
        row = self.conn.execute(
            select(t.accounts).where(func.lower(t.accounts.c.name) == name.strip().lower())
            .order_by(t.accounts.c.id)).first()
        return account_from_row(row) if row else None

    def add(self, account: Account) -> int:
        account.id = _new_id(self.conn.execute(insert(t.accounts), account_values(account)))
        return account.id

    def save(self, account: Account) -> None:
        self.conn.execute(update(t.accounts).where(t.accounts.c.id == account.id)
                          .values(**account_values(account)))

    def contact_ids(self, account_id: int) -> list[int]:
        rows = self.conn.execute(select(t.contacts.c.id)
                                 .where(t.contacts.c.account_id == account_id))
        return [r[0] for r in rows]


class SqlEventRepository:
    def __init__(self, conn: Connection, committed_shapes: dict[str, int] | None = None
                 ) -> None:
        self.conn = conn
        self._shape_ids: dict[str, int] = {}  # found or made in this transaction
        self._by_shape: dict[EventShape, int] = {}  # the same, without writing signatures
        self.committed_shapes = committed_shapes if committed_shapes is not None else {}

    def has_message(self, message_id: str) -> bool:
        return self.conn.execute(FIND_MESSAGE, {"message_id": message_id}).first() is not None

    def existing_messages(self, message_ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        query = PG_FIND_MESSAGES if is_postgresql(self.conn) else FIND_MESSAGES
        for part in _slices(self.conn, message_ids):
            out.update(self.conn.execute(query, {"ids": part}).scalars())
        return out

    def shape_id(self, shape: EventShape) -> int:
        known = self._by_shape.get(shape)
        if known is not None:
            return known
        sig = shape_signature(shape)
        sid = self._shape_ids.get(sig) or self.committed_shapes.get(sig)
        if sid is None:
            sid = self.conn.execute(
                select(t.event_shapes.c.id).where(t.event_shapes.c.signature == sig)).scalar()
            if sid is None:
                sid = _new_id(self.conn.execute(insert(t.event_shapes), shape_row(shape)))
            self._shape_ids[sig] = int(sid)
        self._by_shape[shape] = int(sid)
        return int(sid)

    def add(self, event: Event) -> int:
        return _new_id(self.conn.execute(insert(t.events), self._row(event)))

    def add_many(self, events: Sequence[Event]) -> None:
        insert_rows(self.conn, t.events, [self._row(e) for e in events])

    def _row(self, event: Event) -> dict[str, Any]:
        return {"contact_id": event.contact_id, "ts": event.ts,
                "shape_id": self.shape_id(event.shape), "message_id": event.message_id,
                "properties": event.properties or None, "received_at": event.received_at}

    def history(self, contact_id: int) -> list[tuple[float, EventShape]]:
        rows = self.conn.execute(
            select(t.events.c.ts, t.event_shapes)
            .join(t.event_shapes, t.event_shapes.c.id == t.events.c.shape_id)
            .where(t.events.c.contact_id == contact_id)
            .order_by(t.events.c.ts, t.events.c.id))
        return [(r.ts, shape_from_row(r)) for r in rows]

    def histories(self, contact_ids: Sequence[int]
                  ) -> dict[int, list[tuple[float, EventShape]]]:
        """``history`` of several contacts in one statement (every id gets a list)."""
        found: dict[int, list[tuple[float, EventShape]]] = {i: [] for i in contact_ids}
        if not found:
            return found
        shapes: dict[int, EventShape] = {}
        rows = self.conn.execute(
            select(t.events.c.contact_id, t.events.c.ts, t.event_shapes)
            .join(t.event_shapes, t.event_shapes.c.id == t.events.c.shape_id)
            .where(t.events.c.contact_id.in_(list(found)))
            .order_by(t.events.c.contact_id, t.events.c.ts, t.events.c.id))
        for r in rows:
            shape = shapes.get(r.id)
            if shape is None:
                shape = shapes[r.id] = shape_from_row(r)
            found[r.contact_id].append((r.ts, shape))
        return found

    def timeline(self, contact_id: int, limit: int) -> list[Event]:
        rows = self.conn.execute(
            select(t.events.c.id, t.events.c.ts, t.events.c.message_id, t.events.c.properties,
                   t.events.c.received_at, t.event_shapes)
            .join(t.event_shapes, t.event_shapes.c.id == t.events.c.shape_id)
            .where(t.events.c.contact_id == contact_id)
            .order_by(t.events.c.ts.desc(), t.events.c.id.desc()).limit(limit))
        return [Event(contact_id=contact_id, ts=r.ts, shape=shape_from_row(r), id=r.id,
                      message_id=r.message_id, properties=r.properties or {},
                      received_at=r.received_at) for r in rows]

    def reassign(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.events).where(t.events.c.contact_id == from_id)
                          .values(contact_id=to_id))

    def strip_properties(self, contact_id: int) -> None:
        self.conn.execute(update(t.events).where(t.events.c.contact_id == contact_id)
                          .values(properties=None, message_id=None))


def _stage_change_row(change: StageChange) -> dict[str, Any]:
    return {"contact_id": change.contact_id, "from_stage": change.from_stage,
            "to_stage": change.to_stage, "at": change.at, "actor": change.actor,
            "config_version": change.config_version, "reason": change.reason,
            "kind": change.kind}


class SqlHistoryRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_stage_change(self, change: StageChange) -> None:
        self.conn.execute(insert(t.stage_changes), _stage_change_row(change))

    def add_stage_changes(self, changes: Sequence[StageChange]) -> None:
        insert_rows(self.conn, t.stage_changes, [_stage_change_row(c) for c in changes])

    def add_milestone(self, contact_id: int, key: str, at: float, actor: str,
                      config_version: str) -> None:
        self.conn.execute(insert(t.milestones), {
            "contact_id": contact_id, "key": key, "reached_at": at, "actor": actor,
            "config_version": config_version})

    def add_milestones(self, rows: Sequence[tuple[int, str, float, str, str]]) -> None:
        """(contact id, key, reached at, actor, config version) for each milestone."""
        insert_rows(self.conn, t.milestones, [
            {"contact_id": cid, "key": key, "reached_at": at, "actor": actor,
             "config_version": version} for cid, key, at, actor, version in rows])

    def add_audit(self, contact_id: int, at: float, actor: str, action: str,
                  details: dict[str, Any]) -> None:
        self.conn.execute(insert(t.audit), {"contact_id": contact_id, "at": at,
                                            "actor": actor, "action": action,
                                            "details": details})

    def add_audits(self, rows: Sequence[tuple[int, float, str, str, dict[str, Any]]]
                   ) -> None:
        """(contact id, at, actor, action, details) for each entry."""
        insert_rows(self.conn, t.audit, [
            {"contact_id": cid, "at": at, "actor": actor, "action": action,
             "details": details} for cid, at, actor, action, details in rows])

    def stage_changes(self, contact_id: int) -> list[StageChange]:
        rows = self.conn.execute(select(t.stage_changes)
                                 .where(t.stage_changes.c.contact_id == contact_id)
                                 .order_by(t.stage_changes.c.at, t.stage_changes.c.id))
        return [StageChange(contact_id=r.contact_id, from_stage=r.from_stage,
                            to_stage=r.to_stage, at=r.at, actor=r.actor,
                            config_version=r.config_version, reason=r.reason, kind=r.kind)
                for r in rows]

    def audit_entries(self, contact_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(t.audit).where(t.audit.c.contact_id == contact_id)
                                 .order_by(t.audit.c.at, t.audit.c.id))
        return [dict(r._mapping) for r in rows]

    def erase_audit_details(self, contact_id: int) -> None:
        """Keep who did what and when; drop the values and the free-text reasons."""
        self.conn.execute(update(t.audit).where(t.audit.c.contact_id == contact_id)
                          .values(details={}))
        self.conn.execute(update(t.stage_changes)
                          .where(t.stage_changes.c.contact_id == contact_id,
                                 t.stage_changes.c.reason.is_not(None))
                          .values(reason="(erased)"))

    def reassign(self, from_id: int, to_id: int) -> None:
        for table in (t.stage_changes, t.audit):
            self.conn.execute(update(table).where(table.c.contact_id == from_id)
                              .values(contact_id=to_id))
        existing = {r[0] for r in self.conn.execute(
            select(t.milestones.c.key).where(t.milestones.c.contact_id == to_id))}
        moved = self.conn.execute(select(t.milestones).where(t.milestones.c.contact_id == from_id)
                                  ).all()
        self.conn.execute(delete(t.milestones).where(t.milestones.c.contact_id == from_id))
        for r in moved:
            if r.key not in existing:
                self.conn.execute(insert(t.milestones).values(**{**r._mapping,
                                                                 "contact_id": to_id}))

    def record_config_version(self, version: str, content: dict[str, Any], at: float) -> None:
        found = self.conn.execute(select(t.config_versions.c.id)
                                  .where(t.config_versions.c.version == version)).first()
        if found is None:
            self.conn.execute(insert(t.config_versions).values(version=version, content=content,
                                                               created_at=at))


class SqlSuppressionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def is_suppressed(self, hashes: Sequence[str]) -> bool:
        if not hashes:
            return False
        query = PG_FIND_SUPPRESSED if is_postgresql(self.conn) else FIND_SUPPRESSED
        return any(self.conn.execute(query, {"hashes": part}).first() is not None
                   for part in _slices(self.conn, hashes))

    def add(self, hash_: str, kind: str, at: float) -> None:
        if not self.is_suppressed([hash_]):
            self.conn.execute(insert(t.suppressions).values(hash=hash_, kind=kind, created_at=at))


class SqlUnitOfWork:
    """One transaction. Leaving the block without ``commit()`` rolls everything back."""

    def __init__(self, engine: Engine, half_life_seconds: float,
                 committed_shapes: dict[str, int] | None = None, *,
                 write_lock: bool = True) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self.half_life_seconds = half_life_seconds
        # Event shape ids known to be committed, shared by the units of work of one engine:
        # a shape row is never deleted, so a committed id stays right.
        self.committed_shapes = committed_shapes if committed_shapes is not None else {}

    def __enter__(self) -> SqlUnitOfWork:
        if getattr(self, "_open", False):
            raise RuntimeError("this unit of work is already open")
        self._turn = ExitStack()
        try:
            if self.write_lock:
                self._turn.enter_context(one_writer_at_a_time(self.engine))
            conn = self._turn.enter_context(self.engine.connect())
            self.tx = conn.begin()
            if self.write_lock and conn.dialect.name == "sqlite":
                # Take the write lock now, before reading: what this unit reads stays true
                # until it commits (no lost update), and it never fails upgrading a stale read
                # snapshot.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._turn.close()
            why = try_again_later(exc) if isinstance(exc, Exception) else None
            if why is not None:  # nothing was done: the same work can simply come again
                raise Unavailable(f"{why}; try again shortly") from exc
            raise
        self._open = True
        self.conn = conn
        # Typed as the ports, as the UnitOfWork protocol's (mutable) attributes require.
        self.contacts: ContactRepository = SqlContactRepository(self.conn,
                                                                self.half_life_seconds)
        self.accounts: AccountRepository = SqlAccountRepository(self.conn)
        self._events = SqlEventRepository(self.conn, self.committed_shapes)
        self.events: EventRepository = self._events
        self.history: HistoryRepository = SqlHistoryRepository(self.conn)
        self.suppressions: SuppressionRepository = SqlSuppressionRepository(self.conn)
        self.api_keys: ApiKeyRepository = SqlApiKeyRepository(self.conn)
        self.outbox: OutboxRepository = SqlOutboxRepository(self.conn)
        self.webhooks: WebhookRepository = SqlWebhookRepository(self.conn)
        self.users: UserRepository = SqlUserRepository(self.conn)
        self.tasks: TaskRepository = SqlTaskRepository(self.conn)
        self.activities: ActivityRepository = SqlActivityRepository(self.conn)
        self.opportunities: OpportunityRepository = SqlOpportunityRepository(self.conn)
        self.content: ContentRepository = SqlContentRepository(self.conn)
        self.forms: FormRepository = SqlFormRepository(self.conn)
        self.tracks: TrackRepository = SqlTrackRepository(self.conn)
        self.enrollments: EnrollmentRepository = SqlEnrollmentRepository(self.conn)
        self.mail: MailRepository = SqlMailRepository(self.conn)
        self.segments: SegmentRepository = SqlSegmentRepository(self.conn)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self.tx.is_active:
                self.tx.rollback()
        finally:
            self._open = False
            self._turn.close()  # closes the connection, then ends this process's write turn
        if isinstance(exc, Exception) and is_transient(exc):
            raise ConcurrentChange("a concurrent change got in the way; try again") from exc

    def commit(self) -> None:
        self.tx.commit()
        self.committed_shapes.update(self._events._shape_ids)

    def serialize(self, name: str) -> None:
        if is_postgresql(self.conn):
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big",
                                 signed=True)
            self.conn.execute(select(func.pg_advisory_xact_lock(key)))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what it wrote, then rises."""
        begin_now(self.conn)  # or the SAVEPOINT's RELEASE would commit
        nested = self.conn.begin_nested()
        try:
            yield
        except BaseException:
            nested.rollback()
            # Shape ids it made may be undone, and contact rows as it wrote them.
            self._events = SqlEventRepository(self.conn, self.committed_shapes)
            self.events = self._events
            self.contacts = SqlContactRepository(self.conn, self.half_life_seconds)
            raise
        nested.commit()
