"""Sales work queues: a rep's queue (open tasks; owned prospects and opportunities by
temperature order, then score) and the managers' "falling through the cracks" list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, literal, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import score_now
from leadflow.domain.config import LifecycleConfig

OWNED_ROLES = ("handoff", "commit")


def _owned_stages(config: LifecycleConfig) -> list[str]:
    return [s.key for s in config.stages if s.role in OWNED_ROLES]


def _temperature_rank(config: LifecycleConfig) -> Any:
    order = config.temperature.queue_order
    return case({temp: i for i, temp in enumerate(order)}, value=t.contacts.c.temperature,
                else_=literal(len(order)))


def _name(first: str | None, last: str | None, email: str | None) -> str | None:
    return " ".join(x for x in (first, last) if x) or email


def rep_queue(conn: Connection, config: LifecycleConfig, *, owner_id: int, now: float,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """What a rep works on next: their open tasks by due time, and their prospects and
    opportunities by the configured temperature order (default hot first), then by score,
    each with its next open task."""
    c, s, tk = t.contacts.c, t.contact_scores.c, t.tasks.c
    h = config.engagement.half_life_seconds
    next_task = (select(tk.contact_id, func.min(tk.due_at).label("next_due"),
                        func.count().label("open_tasks"))
                 .where(tk.owner_id == owner_id, tk.done_at.is_(None))
                 .group_by(tk.contact_id).subquery())
    owned = and_(c.owner_id == owner_id, c.stage.in_(_owned_stages(config)))
    rows = conn.execute(
        select(c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature,
               c.fit_grade, s.engagement_score, s.engagement_t0, next_task.c.next_due,
               next_task.c.open_tasks)
        .select_from(t.contacts.join(t.contact_scores, s.contact_id == c.id)
                     .outerjoin(next_task, next_task.c.contact_id == c.id))
        .where(owned)
        .order_by(_temperature_rank(config), s.engagement_rank.desc(), c.id)
        .limit(limit).offset(offset)).all()
    total = int(conn.execute(select(func.count()).select_from(t.contacts).where(owned))
                .scalar_one())
    prospects = [{
        "id": r.id, "name": _name(r.first_name, r.last_name, r.email), "email": r.email,
        "stage": r.stage, "temperature": r.temperature, "grade": r.fit_grade,
        "engagement": round(score_now(r.engagement_score, r.engagement_t0, now, h), 2),
        "next_task_due_at": r.next_due, "open_tasks": int(r.open_tasks or 0),
        "overdue": r.next_due is not None and r.next_due < now,
    } for r in rows]
    task_rows = conn.execute(
        select(tk.id, tk.contact_id, tk.kind, tk.title, tk.due_at, c.temperature, c.stage)
        .select_from(t.tasks.join(t.contacts, c.id == tk.contact_id))
        .where(tk.owner_id == owner_id, tk.done_at.is_(None))
        .order_by(tk.due_at, tk.id).limit(limit)).all()
    tasks = [{"id": r.id, "contact_id": r.contact_id, "kind": r.kind, "title": r.title,
              "due_at": r.due_at, "overdue": r.due_at < now, "stage": r.stage,
              "temperature": r.temperature} for r in task_rows]
    return {"tasks": tasks, "prospects": prospects, "total": total, "limit": limit,
            "offset": offset}


def falling_through_cracks(conn: Connection, config: LifecycleConfig, *,
                           owners: tuple[int, ...] | None, limit: int = 100) -> dict[str, Any]:
    """Owned prospects and opportunities with no open task, and prospects nobody owns
    (only when every owner is visible: ``owners`` None)."""
    c, tk = t.contacts.c, t.tasks.c
    stages = _owned_stages(config)
    no_task = ~exists().where(tk.contact_id == c.id, tk.done_at.is_(None))
    where = [c.owner_id.is_not(None), c.stage.in_(stages), no_task]
    if owners is not None:
        where.append(c.owner_id.in_(owners))
    cols = (c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature, c.owner_id,
            c.stage_entered_at)
    orphans = conn.execute(select(*cols).where(*where).order_by(c.stage_entered_at, c.id)
                           .limit(limit)).all()
    unassigned = [] if owners is not None else conn.execute(
        select(*cols).where(c.owner_id.is_(None), c.stage.in_(stages))
        .order_by(c.stage_entered_at, c.id).limit(limit)).all()

    def show(r: Any) -> dict[str, Any]:
        return {"id": r.id, "name": _name(r.first_name, r.last_name, r.email), "stage": r.stage,
                "temperature": r.temperature, "owner_id": r.owner_id,
                "stage_entered_at": r.stage_entered_at}
    return {"without_open_task": [show(r) for r in orphans],
            "unassigned": [show(r) for r in unassigned]}
