"""Queries behind the dashboard: entries over time and overdue follow-ups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, cast, func, select

from leadflow.adapters.db import tables as t
from leadflow.domain.config import LifecycleConfig

WEEK = 7 * 86400


def _bucket(conn: Connection, at: Any, since: float) -> Any:
    offset = (at - since) / WEEK
    # Both truncate toward zero: offsets are never negative here, so this is the floor.
    return func.floor(offset) if conn.dialect.name == "postgresql" else cast(offset, Integer)


def weekly_entries(conn: Connection, config: LifecycleConfig, *, now: float, weeks: int,
                   owners: tuple[int, ...] | None = None, milestone: str | None = None
                   ) -> list[dict[str, Any]]:
    """Per week (the last ``weeks``, oldest first): contacts that first became a lead (entered
    an interest stage) and contacts that reached ``milestone`` (an MQL, by default)."""
    since = now - weeks * WEEK
    lead_stages = [s.key for s in config.stages_with_role("interest")]
    changes = t.stage_changes.c
    first_entry = (select(changes.contact_id, func.min(changes.at).label("at"))
                   .where(changes.to_stage.in_(lead_stages)).group_by(changes.contact_id))
    if owners is not None:
        first_entry = first_entry.where(changes.contact_id.in_(
            select(t.contacts.c.id).where(t.contacts.c.owner_id.in_(owners))))
    entries = first_entry.subquery()
    week = _bucket(conn, entries.c.at, since)
    leads: dict[Any, Any] = dict(conn.execute(
        select(week, func.count()).where(entries.c.at >= since).group_by(week)).all())
    reached: dict[Any, Any] = {}
    if milestone is not None:
        ms = t.milestones.c
        week_ms = _bucket(conn, ms.reached_at, since)
        query = (select(week_ms, func.count())
                 .where(ms.key == milestone, ms.reached_at >= since).group_by(week_ms))
        if owners is not None:
            query = query.where(ms.contact_id.in_(
                select(t.contacts.c.id).where(t.contacts.c.owner_id.in_(owners))))
        reached = dict(conn.execute(query).all())
    return [{"week_start": since + i * WEEK, "leads": int(leads.get(i, 0)),
             "milestone": int(reached.get(i, 0))} for i in range(weeks)]


def overdue_tasks(conn: Connection, *, now: float, owners: tuple[int, ...] | None,
                  limit: int = 10) -> tuple[list[dict[str, Any]], int]:
    """Open follow-ups past due, the most overdue first, and how many there are."""
    task = t.tasks.c
    c = t.contacts.c
    where = [task.done_at.is_(None), task.due_at < now]
    if owners is not None:
        where.append(task.owner_id.in_(owners))
    rows = conn.execute(
        select(task.id, task.title, task.kind, task.due_at, task.contact_id,
               c.email, c.first_name, c.last_name, t.users.c.name.label("owner"))
        .select_from(t.tasks.join(t.contacts, c.id == task.contact_id)
                     .join(t.users, t.users.c.id == task.owner_id))
        .where(*where).order_by(task.due_at, task.id).limit(limit)).all()
    total = int(conn.execute(select(func.count()).select_from(t.tasks).where(*where))
                .scalar() or 0)
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["name"] = " ".join(x for x in (d.pop("first_name"), d.pop("last_name")) if x) \
            or d["email"] or f"#{d['contact_id']}"
        out.append(d)
    return out, total
