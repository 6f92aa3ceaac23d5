"""Repositories of content, forms, nurture tracks and enrollments, and queued email."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_rows import is_postgresql
from leadflow.domain.content import CONSUMING_EVENTS, Consumed, ContentItem
from leadflow.domain.forms import Form
from leadflow.domain.mail_policy import (
    CLAIMED,
    FAILED,
    INTERRUPTED_WHILE_SENDING,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    MailMessage,
)
from leadflow.domain.nurture import Enrollment

ITEM_FIELDS = ("key", "title", "url", "maturity", "format", "premium", "language", "summary",
               "archived")


def _item(row: Any) -> ContentItem:
    m = row._mapping
    return ContentItem(id=m["id"], topics=tuple(m["topics"] or ()),
                       **{f: m[f] for f in ITEM_FIELDS})


def _item_values(item: ContentItem) -> dict[str, Any]:
    return {**{f: getattr(item, f) for f in ITEM_FIELDS}, "topics": list(item.topics),
            "path": item.path}


# Statements that nurture runs per member and sending per message are built once: building
# and keying one costs SQLAlchemy more than running it does on these small lookups.
_ev, _sh, _ci = t.events.c, t.event_shapes.c, t.content_items.c
CONSUMED = (  # each item a contact consumed, with the last time (items read along)
    select(t.content_items, func.max(_ev.ts).label("consumed_at"))
    .select_from(t.events.join(t.event_shapes, _sh.id == _ev.shape_id)
                 .join(t.content_items, or_(_ci.path == _sh.url, _ci.path + "/" == _sh.url)))
    .where(_ev.contact_id == bindparam("contact_id"), _sh.type.in_(CONSUMING_EVENTS))
    .group_by(_ci.id))


class SqlContentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, item: ContentItem, at: float) -> ContentItem:
        result = self.conn.execute(insert(t.content_items).values(
            **_item_values(item), created_at=at, updated_at=at))
        key = result.inserted_primary_key
        assert key is not None
        return replace(item, id=int(key[0]))

    def save(self, item: ContentItem, at: float) -> None:
        self.conn.execute(update(t.content_items).where(t.content_items.c.id == item.id)
                          .values(**_item_values(item), updated_at=at))

    def get(self, key: str) -> ContentItem | None:
        row = self.conn.execute(select(t.content_items).where(
            t.content_items.c.key == key)).first()
        return _item(row) if row else None

    def get_by_id(self, item_id: int) -> ContentItem | None:
        row = self.conn.execute(select(t.content_items).where(
            t.content_items.c.id == item_id)).first()
        return _item(row) if row else None

    def by_ids(self, item_ids: Sequence[int]) -> dict[int, ContentItem]:
        if not item_ids:
            return {}
        rows = self.conn.execute(select(t.content_items).where(
            t.content_items.c.id.in_(sorted(set(item_ids)))))
        return {r.id: _item(r) for r in rows}

    def search(self, *, maturity: str | None = None, format: str | None = None,
               language: str | None = None, topic: str | None = None,
               include_archived: bool = False, limit: int = 100, offset: int = 0
               ) -> list[ContentItem]:
        c = t.content_items.c
        query = select(t.content_items).order_by(c.key)
        if maturity:
            query = query.where(c.maturity == maturity)
        if format:
            query = query.where(c.format == format)
        if language:
            query = query.where(c.language == language)
        if not include_archived:
            query = query.where(c.archived.is_(False))
        items = [_item(r) for r in self.conn.execute(query)]
        if topic:  # topics are a JSON list: filter here, the library is small
            items = [i for i in items if topic.lower() in i.topics]
        return items[offset:offset + limit]

    def active(self) -> list[ContentItem]:
        return self.search(limit=1_000_000)

    def consumed(self, contact_id: int) -> list[Consumed]:
        rows = self.conn.execute(CONSUMED, {"contact_id": contact_id})
        out = [Consumed(item=_item(r), at=float(r.consumed_at)) for r in rows]
        out.sort(key=lambda x: (-x.at, x.item.key))
        return out


FORM_FIELDS = ("key", "name", "headline", "pitch", "max_fields", "consent_label", "newsletter",
               "language", "active")


class SqlFormRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _values(self, form: Form) -> dict[str, Any]:
        item_id = None
        if form.item_key:
            item_id = self.conn.execute(select(t.content_items.c.id).where(
                t.content_items.c.key == form.item_key)).scalar()
        return {**{f: getattr(form, f) for f in FORM_FIELDS}, "fields": list(form.fields),
                "item_id": item_id}

    def _form(self, row: Any) -> Form:
        m = row._mapping
        return Form(id=m["id"], fields=tuple(m["fields"] or ()), item_key=m["item_key"],
                    **{f: m[f] for f in FORM_FIELDS})

    def _select(self) -> Any:
        return (select(t.forms, t.content_items.c.key.label("item_key"))
                .select_from(t.forms.outerjoin(t.content_items,
                                               t.content_items.c.id == t.forms.c.item_id)))

    def add(self, form: Form, at: float) -> Form:
        result = self.conn.execute(insert(t.forms).values(**self._values(form), created_at=at,
                                                          updated_at=at))
        key = result.inserted_primary_key
        assert key is not None
        return replace(form, id=int(key[0]))

    def save(self, form: Form, at: float) -> None:
        self.conn.execute(update(t.forms).where(t.forms.c.id == form.id)
                          .values(**self._values(form), updated_at=at))

    def get(self, key: str) -> Form | None:
        row = self.conn.execute(self._select().where(t.forms.c.key == key)).first()
        return self._form(row) if row else None

    def all(self) -> list[Form]:
        return [self._form(r) for r in self.conn.execute(self._select().order_by(t.forms.c.key))]


class SqlTrackRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, key: str, definition: dict[str, Any], at: float) -> None:
        c = t.nurture_tracks.c
        done = self.conn.execute(update(t.nurture_tracks).where(c.key == key).values(
            definition=definition, active=True, updated_at=at))
        if not done.rowcount:
            self.conn.execute(insert(t.nurture_tracks).values(
                key=key, definition=definition, active=True, created_at=at, updated_at=at))

    def get(self, key: str) -> dict[str, Any] | None:
        c = t.nurture_tracks.c
        value = self.conn.execute(select(c.definition).where(c.key == key,
                                                             c.active.is_(True))).scalar()
        return dict(value) if value else None

    def all_active(self) -> list[dict[str, Any]]:
        c = t.nurture_tracks.c
        return [dict(v) for v in self.conn.execute(
            select(c.definition).where(c.active.is_(True)).order_by(c.key)).scalars()]

    def deactivate(self, key: str, at: float) -> bool:
        c = t.nurture_tracks.c
        return bool(self.conn.execute(update(t.nurture_tracks).where(
            c.key == key, c.active.is_(True)).values(active=False, updated_at=at)).rowcount)


ENROLLMENT_FIELDS = ("contact_id", "track_key", "status", "step", "next_at", "entered_at",
                     "updated_at", "reason")
_en = t.enrollments.c
SAVE_ENROLLMENT = update(t.enrollments).where(_en.contact_id == bindparam("_contact_id"),
                                              _en.track_key == bindparam("_track_key"))


def _enrollment(row: Any) -> Enrollment:
    m = row._mapping
    return Enrollment(id=m["id"], **{f: m[f] for f in ENROLLMENT_FIELDS})


class SqlEnrollmentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def of_contact(self, contact_id: int) -> list[Enrollment]:
        c = t.enrollments.c
        return [_enrollment(r) for r in self.conn.execute(
            select(t.enrollments).where(c.contact_id == contact_id).order_by(c.id))]

    def add(self, enrollment: Enrollment) -> None:
        self.conn.execute(insert(t.enrollments).values(
            **{f: getattr(enrollment, f) for f in ENROLLMENT_FIELDS}))

    def save(self, enrollment: Enrollment) -> None:
        self.conn.execute(SAVE_ENROLLMENT, {
            **{f: getattr(enrollment, f) for f in ENROLLMENT_FIELDS},
            "_contact_id": enrollment.contact_id, "_track_key": enrollment.track_key})

    def due(self, now: float, limit: int) -> list[Enrollment]:
        c = t.enrollments.c
        return [_enrollment(r) for r in self.conn.execute(
            select(t.enrollments).where(c.status == "active", c.next_at <= now)
            .order_by(c.next_at, c.id).limit(limit))]

    def members(self, track_key: str, *, status: str | None, limit: int, offset: int
                ) -> list[Enrollment]:
        c = t.enrollments.c
        query = select(t.enrollments).where(c.track_key == track_key)
        if status:
            query = query.where(c.status == status)
        return [_enrollment(r) for r in self.conn.execute(
            query.order_by(c.entered_at.desc(), c.id).limit(limit).offset(offset))]

    def counts(self) -> dict[str, dict[str, int]]:
        c = t.enrollments.c
        out: dict[str, dict[str, int]] = {}
        for key, status, n in self.conn.execute(
                select(c.track_key, c.status, func.count()).group_by(c.track_key, c.status)):
            out.setdefault(key, {})[status] = int(n)
        return out

    @staticmethod
    def _fits(stages: Sequence[str], owned: bool) -> Any:
        c = t.contacts.c
        return and_(c.stage.in_(list(stages)),
                    c.owner_id.is_not(None) if owned else c.owner_id.is_(None),
                    c.email.is_not(None), c.mail_status.is_(None))

    def enroll_fitting(self, track_key: str, *, stages: Sequence[str], owned: bool,
                       at: float, changed_since: float | None = None) -> int:
        c, e = t.contacts.c, t.enrollments.c
        fits = self._fits(stages, owned)
        if changed_since is not None:
            fits = and_(fits, c.updated_at >= changed_since)
        resumed = self.conn.execute(update(t.enrollments).where(
            e.track_key == track_key, e.status == "left",
            exists(select(c.id).where(c.id == e.contact_id, fits)))
            .values(status="active", next_at=at, updated_at=at, reason=None)
            .returning(e.id)).all()
        columns = ["contact_id", "track_key", "status", "step", "next_at", "entered_at",
                   "updated_at"]
        rows = select(c.id, literal(track_key), literal("active"), literal(0), literal(at),
                      literal(at), literal(at))
        statement: Any
        if is_postgresql(self.conn):
            # Members already in the track are left out by the unique (contact, track) index:
            # PostgreSQL plans a NOT EXISTS anti-join as a nested loop over enrollments when
            # its statistics say the table is empty (the first sync), and so scans the rows
            # it has just inserted again for every contact.
            statement = pg_insert(t.enrollments).from_select(
                columns, rows.where(fits)).on_conflict_do_nothing(
                index_elements=["contact_id", "track_key"])
        else:
            mine = select(e.id).where(e.contact_id == c.id, e.track_key == track_key)
            statement = insert(t.enrollments).from_select(columns, rows.where(fits, ~exists(mine)))
        added = self.conn.execute(statement.returning(e.id)).all()
        return len(resumed) + len(added)

    def leave_unfitting(self, track_key: str, *, stages: Sequence[str], owned: bool,
                        at: float, reason: str, changed_since: float | None = None) -> int:
        c, e = t.contacts.c, t.enrollments.c
        fits = self._fits(stages, owned)
        if changed_since is None:
            gone = ~exists(select(c.id).where(c.id == e.contact_id, fits))
        else:  # only members whose contact changed can have stopped fitting
            gone = exists(select(c.id).where(c.id == e.contact_id,
                                             c.updated_at >= changed_since, ~fits))
        return len(self.conn.execute(update(t.enrollments).where(
            e.track_key == track_key, e.status == "active", gone)
            .values(status="left", next_at=None, updated_at=at, reason=reason)
            .returning(e.id)).all())

    def leave_tracks_except(self, keys: Sequence[str], *, at: float, reason: str) -> int:
        e = t.enrollments.c
        return int(self.conn.execute(update(t.enrollments).where(
            e.status == "active", e.track_key.not_in(list(keys)))
            .values(status="left", next_at=None, updated_at=at, reason=reason)).rowcount or 0)

    def reached_milestone(self, key: str, since: float, limit: int, *,
                          unanswered: tuple[str, str] | None = None) -> list[int]:
        m, mm = t.milestones.c, t.mail_messages.c
        query = select(m.contact_id).where(m.key == key, m.reached_at >= since)
        if unanswered is not None:  # (prefix, suffix) of the dedupe key of the answer
            prefix, suffix = unanswered
            answer = literal(prefix) + cast(m.contact_id, String) + literal(suffix)
            query = query.where(~exists(select(mm.id).where(mm.dedupe_key == answer)))
        return list(self.conn.execute(query.order_by(m.reached_at, m.contact_id)
                                      .limit(limit)).scalars())


MESSAGE_FIELDS = tuple(f for f in MailMessage.__dataclass_fields__ if f != "id")
_mm = t.mail_messages.c
ADD_MESSAGE = {  # by dialect: a message whose dedupe key is taken is not queued again
    "postgresql": pg_insert(t.mail_messages).on_conflict_do_nothing(
        index_elements=["dedupe_key"]).returning(_mm.id),
    "sqlite": sqlite_insert(t.mail_messages).on_conflict_do_nothing(
        index_elements=["dedupe_key"]).returning(_mm.id)}
SENT_ITEM_IDS = select(_mm.item_id).where(
    _mm.contact_id == bindparam("contact_id"), _mm.item_id.is_not(None),
    _mm.status.in_((QUEUED, CLAIMED, SENDING, SENT)))
CAPPED_SENT_AT = select(_mm.claimed_at).where(
    _mm.contact_id == bindparam("contact_id"),
    or_(_mm.status.in_((CLAIMED, SENDING, SENT)),  # and what may have gone out:
        and_(_mm.status == FAILED, _mm.reason == INTERRUPTED_WHILE_SENDING)),
    _mm.claimed_at >= bindparam("since"),
    _mm.category.in_(bindparam("categories", expanding=True)))
CLAIM = update(t.mail_messages).where(_mm.id == bindparam("_id"), _mm.status == QUEUED).values(
    status=CLAIMED, claimed_at=bindparam("_at"), message_id=bindparam("_header"),
    attempts=_mm.attempts + 1)
FINISH = update(t.mail_messages).where(_mm.id == bindparam("_id"))


def _message(row: Any) -> MailMessage:
    m = row._mapping
    return MailMessage(id=m["id"], **{f: m[f] for f in MESSAGE_FIELDS})


class SqlMailRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _insert_ignoring_duplicates(self) -> Any:
        if is_postgresql(self.conn):
            return pg_insert(t.mail_messages).on_conflict_do_nothing(
                index_elements=["dedupe_key"])
        return sqlite_insert(t.mail_messages).on_conflict_do_nothing(
            index_elements=["dedupe_key"])

    def add(self, message: MailMessage) -> int | None:
        result = self.conn.execute(ADD_MESSAGE[self.conn.dialect.name],
                                   {f: getattr(message, f) for f in MESSAGE_FIELDS})
        value = result.scalar()
        return int(value) if value is not None else None

    def get(self, message_id: int) -> MailMessage | None:
        row = self.conn.execute(select(t.mail_messages).where(
            t.mail_messages.c.id == message_id)).first()
        return _message(row) if row else None

    def due(self, now: float, limit: int) -> list[MailMessage]:
        c = t.mail_messages.c
        # In not_before order only: the partial index returns the first rows without a sort
        # (a newsletter queues hundreds of thousands at one time); priority is applied per
        # contact when claiming.
        return [_message(r) for r in self.conn.execute(
            select(t.mail_messages).where(c.status == QUEUED, c.not_before <= now)
            .order_by(c.not_before).limit(limit))]

    def due_for_contact(self, contact_id: int, now: float) -> list[MailMessage]:
        c = t.mail_messages.c
        return [_message(r) for r in self.conn.execute(
            select(t.mail_messages).where(c.contact_id == contact_id, c.status == QUEUED,
                                          c.not_before <= now)
            .order_by(c.priority.desc(), c.id))]

    def start_sending(self, message_ids: Sequence[int]) -> set[int]:
        c = t.mail_messages.c
        return set(self.conn.execute(update(t.mail_messages).where(
            c.id.in_(list(message_ids)), c.status == CLAIMED).values(status=SENDING)
            .returning(c.id)).scalars())

    def capped_sent_at(self, contact_id: int, since: float, categories: Sequence[str]
                       ) -> list[float]:
        return [float(v) for v in self.conn.execute(CAPPED_SENT_AT, {
            "contact_id": contact_id, "since": since, "categories": list(categories)}
        ).scalars()]

    def claim(self, message_id: int, *, at: float, message_id_header: str) -> bool:
        return bool(self.conn.execute(CLAIM, {"_id": message_id, "_at": at,
                                              "_header": message_id_header}).rowcount)

    def hold(self, message_id: int, until: float) -> None:
        c = t.mail_messages.c
        self.conn.execute(update(t.mail_messages).where(c.id == message_id, c.status == QUEUED)
                          .values(not_before=until, reason="held by the frequency cap"))

    def finish(self, message_id: int, *, status: str, at: float, reason: str | None = None,
               subject: str | None = None, only_from: str | None = None) -> bool:
        values: dict[str, Any] = {"status": status, "reason": reason, "_id": message_id}
        if status == SENT:
            values["sent_at"] = at
        if subject is not None:
            values["subject"] = subject
        if only_from is None:
            return bool(self.conn.execute(FINISH, values).rowcount)
        c = t.mail_messages.c
        values.pop("_id")
        return bool(self.conn.execute(update(t.mail_messages).where(
            c.id == message_id, c.status == only_from).values(**values)).rowcount)

    def retry(self, message_id: int, *, at: float, reason: str) -> None:
        c = t.mail_messages.c
        self.conn.execute(update(t.mail_messages).where(
            c.id == message_id, c.status.in_((CLAIMED, SENDING)))
            .values(status=QUEUED, not_before=at, claimed_at=None, message_id=None,
                    reason=reason))

    def stale(self, before: float, limit: int) -> list[tuple[int, str]]:
        c = t.mail_messages.c
        return [(int(r.id), str(r.status)) for r in self.conn.execute(
            select(c.id, c.status).where(c.status.in_((CLAIMED, SENDING)),
                                         c.claimed_at < before).order_by(c.id).limit(limit))]

    def of_contact(self, contact_id: int, limit: int) -> list[MailMessage]:
        c = t.mail_messages.c
        return [_message(r) for r in self.conn.execute(
            select(t.mail_messages).where(c.contact_id == contact_id)
            .order_by(c.created_at.desc(), c.id.desc()).limit(limit))]

    def sent_item_ids(self, contact_id: int) -> list[int]:
        return [int(v) for v in self.conn.execute(SENT_ITEM_IDS,
                                                  {"contact_id": contact_id}).scalars()]

    def mark_opened(self, message_id: int, at: float) -> bool:
        c = t.mail_messages.c
        return bool(self.conn.execute(update(t.mail_messages).where(
            c.id == message_id, c.opened_at.is_(None)).values(opened_at=at)).rowcount)

    def mark_clicked(self, message_id: int, at: float) -> bool:
        c = t.mail_messages.c
        done = self.conn.execute(update(t.mail_messages).where(
            c.id == message_id, c.clicked_at.is_(None)).values(clicked_at=at)).rowcount
        # A click proves an open, even when the pixel was blocked.
        self.conn.execute(update(t.mail_messages).where(
            c.id == message_id, c.opened_at.is_(None)).values(opened_at=at))
        return bool(done)

    def queue_newsletter(self, *, item_id: int, priority: int, at: float,
                         expires_at: float) -> int:
        """Queue an issue for every subscriber with an address, once each."""
        c = t.contacts.c
        subscribed = c.consent["newsletter"]["granted"].as_boolean().is_(True)
        key = literal(f"newsletter:{item_id}:") + cast(c.id, String)
        rows = select(
            c.id, literal("newsletter"), literal(priority), key, literal("newsletter"),
            literal(item_id), literal(QUEUED), literal(at), literal(expires_at), literal(at),
            literal(0)).where(subscribed, c.email.is_not(None), c.mail_status.is_(None))
        statement = self._insert_ignoring_duplicates().from_select(
            ["contact_id", "category", "priority", "dedupe_key", "template", "item_id",
             "status", "not_before", "expires_at", "created_at", "attempts"], rows)
        return len(self.conn.execute(statement.returning(t.mail_messages.c.id)).all())

    def counts(self, *, since: float) -> dict[str, dict[str, int]]:
        """Per category, how many messages created since ``since`` are in each status."""
        c = t.mail_messages.c
        out: dict[str, dict[str, int]] = {}
        for category, status, n in self.conn.execute(
                select(c.category, c.status, func.count()).where(c.created_at >= since)
                .group_by(c.category, c.status)):
            out.setdefault(category, {})[status] = int(n)
        return out

    def search(self, *, status: str | None, category: str | None, limit: int, offset: int
               ) -> list[MailMessage]:
        c = t.mail_messages.c
        query = select(t.mail_messages)
        if status:
            query = query.where(c.status == status)
        if category:
            query = query.where(c.category == category)
        return [_message(r) for r in self.conn.execute(
            query.order_by(c.id.desc()).limit(limit).offset(offset))]

    def message_ids(self, contact_id: int) -> list[str]:
        c = t.mail_messages.c
        return list(self.conn.execute(select(c.message_id).where(
            c.contact_id == contact_id, c.message_id.is_not(None))).scalars())

    def skip_queued(self, contact_id: int, *, at: float, reason: str,
                    categories: Sequence[str]) -> int:
        del at
        c = t.mail_messages.c
        return int(self.conn.execute(update(t.mail_messages).where(
            c.contact_id == contact_id, c.status == QUEUED, c.category.in_(list(categories)))
            .values(status=SKIPPED, reason=reason)).rowcount)

    def erase(self, contact_id: int) -> None:
        """Subjects can carry a name; queued email will never go."""
        c = t.mail_messages.c
        self.conn.execute(update(t.mail_messages).where(
            c.contact_id == contact_id, c.status == QUEUED).values(
            status=SKIPPED, reason="erased"))
        self.conn.execute(update(t.mail_messages).where(c.contact_id == contact_id).values(
            subject=None))

    def reassign(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.mail_messages).where(
            t.mail_messages.c.contact_id == from_id).values(contact_id=to_id))
        e = t.enrollments.c
        mine = select(e.track_key).where(e.contact_id == to_id).scalar_subquery()
        self.conn.execute(delete(t.enrollments).where(e.contact_id == from_id,
                                                      e.track_key.in_(mine)))
        self.conn.execute(update(t.enrollments).where(and_(e.contact_id == from_id))
                          .values(contact_id=to_id))
