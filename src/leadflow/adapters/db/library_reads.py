"""Queries behind the marketing pages (content library, nurture tracks, forms): how much each
item, track and form was used, a track's members and recent email.

Usage counts read events and sent email, which no index serves by item, track or form: each
count gets a time budget, and a count that would take longer is left out (None) rather than
holding the page up (a large install's library page would otherwise scan millions of events
at every view)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, case, func, select, text
from sqlalchemy.exc import DBAPIError

from leadflow.adapters.db import tables as t
from leadflow.domain.content import CONSUMING_EVENTS
from leadflow.domain.mail_policy import QUEUED, SENT

_ev, _sh, _mm = t.events.c, t.event_shapes.c, t.mail_messages.c
BUDGET_SECONDS = 1.0
QUERY_CANCELED = "57014"  # PostgreSQL: canceled by statement_timeout
MAIL_COUNTS = ("sent", "opened", "clicked", "queued")
T = TypeVar("T")


class OverBudget(Exception):
    """A count took longer than its budget and was abandoned."""


@contextmanager
def _budget(conn: Connection, seconds: float) -> Iterator[None]:
    """Statements run inside are cancelled after ``seconds`` (raising OverBudget)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"))
        try:
            yield
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != QUERY_CANCELED:
                raise
            conn.rollback()  # the transaction is aborted; the next statement starts another
            raise OverBudget from None
        conn.execute(text("SET LOCAL statement_timeout TO DEFAULT"))
        return
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        yield
        return
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    except DBAPIError as exc:
        if "interrupted" not in str(exc.orig):
            raise
        conn.rollback()
        raise OverBudget from None
    finally:
        raw.set_progress_handler(None, 0)


def _counted(conn: Connection, count: Callable[[], T], seconds: float) -> T | None:
    try:
        with _budget(conn, seconds):
            return count()
    except OverBudget:
        return None


def _mail_counts(conn: Connection, column: Any, values: Sequence[Any], seconds: float
                 ) -> dict[Any, dict[str, int]] | None:
    """Per value of ``column``: emails sent, opened, clicked and still queued (None: over
    budget)."""
    if not values:
        return {}

    def count() -> dict[Any, dict[str, int]]:
        rows = conn.execute(
            select(column,
                   func.sum(case((_mm.status == SENT, 1), else_=0)),
                   func.count(_mm.opened_at), func.count(_mm.clicked_at),
                   func.sum(case((_mm.status == QUEUED, 1), else_=0)))
            .where(column.in_(list(values))).group_by(column))
        return {key: dict(zip(MAIL_COUNTS, (int(n or 0) for n in numbers), strict=True))
                for key, *numbers in rows}
    return _counted(conn, count, seconds)


def item_usage(conn: Connection, *, items: Sequence[tuple[int, str]],
               seconds: float = BUDGET_SECONDS) -> dict[int, dict[str, int | None]]:
    """For each ``(item id, item path)``: how many contacts consumed it (viewed, downloaded or
    clicked its URL) and how many emails sent it, were opened, clicked, or wait in the queue.
    A count over its time budget is None."""
    out: dict[int, dict[str, int | None]] = {
        item_id: {"consumers": 0, **dict.fromkeys(MAIL_COUNTS, 0)} for item_id, _ in items}
    if not items:
        return out
    paths: dict[str, list[int]] = {}
    for item_id, path in items:
        paths.setdefault(path, []).append(item_id)
    # A tracked URL is the item's path, with or without a trailing '/'.
    urls = {**{p: p for p in paths}, **{p + "/": p for p in paths}}
    path_of = case(*((_sh.url == url, path) for url, path in sorted(urls.items())))
    seen = (select(path_of.label("path"), _ev.contact_id)
            .select_from(t.events.join(t.event_shapes, _sh.id == _ev.shape_id))
            .where(_sh.type.in_(CONSUMING_EVENTS), _sh.url.in_(sorted(urls))).subquery())
    consumers = _counted(conn, lambda: conn.execute(
        select(seen.c.path, func.count(func.distinct(seen.c.contact_id)))
        .group_by(seen.c.path)).all(), seconds)
    for item_id, _ in items:
        out[item_id]["consumers"] = None if consumers is None else 0
    for path, n in consumers or ():
        for item_id in paths.get(str(path), ()):
            out[item_id]["consumers"] = int(n)
    mail = _mail_counts(conn, _mm.item_id, [i for i, _ in items], seconds)
    for item_id, _ in items:
        if mail is None:
            out[item_id].update(dict.fromkeys(MAIL_COUNTS))
        else:
            out[item_id].update(mail.get(item_id, {}))
    return out


def track_mail(conn: Connection, *, track_keys: Sequence[str],
               seconds: float = BUDGET_SECONDS) -> dict[str, dict[str, int | None]]:
    """Per track: emails sent, opened, clicked, and still queued (None: over budget)."""
    found = _mail_counts(conn, _mm.track_key, track_keys, seconds)
    return {key: dict.fromkeys(MAIL_COUNTS) if found is None
            else {**dict.fromkeys(MAIL_COUNTS, 0), **found.get(key, {})} for key in track_keys}


def track_members(conn: Connection, *, track_key: str, status: str | None, limit: int,
                  offset: int) -> tuple[list[dict[str, Any]], int]:
    """A track's members, newest first, with who they are, and how many there are (the
    enrollments index serves both)."""
    e, c = t.enrollments.c, t.contacts.c
    where = [e.track_key == track_key]
    if status:
        where.append(e.status == status)
    total = int(conn.execute(select(func.count()).select_from(t.enrollments)
                             .where(*where)).scalar_one())
    rows = conn.execute(
        select(e.contact_id, e.status, e.step, e.next_at, e.entered_at, e.updated_at,
               e.reason, c.first_name, c.last_name, c.email, c.stage)
        .select_from(t.enrollments.join(t.contacts, c.id == e.contact_id))
        .where(*where).order_by(e.entered_at.desc(), e.id).limit(limit).offset(offset))
    return [_with_name(dict(r._mapping)) for r in rows], total


def _with_name(row: dict[str, Any]) -> dict[str, Any]:
    row["name"] = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or None
    return row


def track_emails(conn: Connection, *, track_key: str, limit: int,
                 seconds: float = BUDGET_SECONDS) -> list[dict[str, Any]] | None:
    """A track's latest emails, newest first, with their contact and item (None: over
    budget, as for a track that sent little among much other email)."""
    c, ci = t.contacts.c, t.content_items.c

    def latest() -> list[dict[str, Any]]:
        rows = conn.execute(
            select(_mm.id, _mm.contact_id, _mm.status, _mm.step, _mm.created_at, _mm.sent_at,
                   _mm.opened_at, _mm.clicked_at, _mm.reason, c.first_name, c.last_name,
                   c.email, ci.key.label("item_key"), ci.title.label("item_title"))
            .select_from(t.mail_messages.join(t.contacts, c.id == _mm.contact_id)
                         .outerjoin(t.content_items, ci.id == _mm.item_id))
            .where(_mm.track_key == track_key).order_by(_mm.id.desc()).limit(limit))
        return [_with_name(dict(r._mapping)) for r in rows]
    return _counted(conn, latest, seconds)


def form_submissions(conn: Connection, *, form_keys: Sequence[str],
                     seconds: float = BUDGET_SECONDS) -> dict[str, int | None]:
    """Per form: how many submissions it took (its ``form_submitted`` events; a replayed
    submission is recorded once). None: over budget."""
    out: dict[str, int | None] = dict.fromkeys(form_keys, 0)
    if not form_keys:
        return out
    urls = {f"/p/{key}": key for key in form_keys}
    shapes = {int(sid): str(url) for sid, url in conn.execute(
        select(_sh.id, _sh.url).where(_sh.type == "form_submitted",
                                      _sh.url.in_(sorted(urls))))}
    if not shapes:
        return out
    found = _counted(conn, lambda: conn.execute(
        select(_ev.shape_id, func.count()).where(_ev.shape_id.in_(sorted(shapes)))
        .group_by(_ev.shape_id)).all(), seconds)
    if found is None:
        return dict.fromkeys(form_keys)
    for shape_id, n in found:
        key = urls[shapes[int(shape_id)]]
        out[key] = (out[key] or 0) + int(n)
    return out
