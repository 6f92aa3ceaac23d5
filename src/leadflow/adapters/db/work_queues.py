"""Sales work queues: a rep's queue (open tasks; owned prospects and opportunities by
temperature order, then score) and the managers' "falling through the cracks" list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, exists, func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import score_now
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.sales import SALES_STAGE_ROLES


def _owned_stages(config: LifecycleConfig) -> list[str]:
    return [s.key for s in config.stages if s.role in SALES_STAGE_ROLES]


def _name(first: str | None, last: str | None, email: str | None) -> str | None:
    return " ".join(x for x in (first, last) if x) or email


def _page_ids(conn: Connection, config: LifecycleConfig, owned: Any, *, limit: int,
              offset: int) -> list[int]:
    """The ids of one page, temperature group by temperature group in queue order, each
    group by score: each step reads the rep's group in order from the (owner, temperature,
    queue rank) index and stops at the page's end."""
    c = t.contacts.c
    groups: list[str | None] = [*config.temperature.queue_order, None]
    sizes: dict[str | None, int] | None = None
    if offset:  # skip whole groups by their size
        sizes = {temp: int(n) for temp, n in conn.execute(
            select(c.temperature, func.count()).where(owned).group_by(c.temperature))}
    ids: list[int] = []
    skip = offset
    for temp in groups:
        if len(ids) >= limit:
            break
        if sizes is not None:
            size = sizes.get(temp, 0)
            if skip >= size:
                skip -= size
                continue
        same = c.temperature.is_(None) if temp is None else c.temperature == temp
        found = conn.execute(
            select(c.id).where(owned, same).order_by(c.queue_rank.desc(), c.id.desc())
            .limit(limit - len(ids)).offset(skip)).scalars().all()
        ids.extend(found)
        skip = 0
    return ids


def rep_queue(conn: Connection, config: LifecycleConfig, *, owner_id: int, now: float,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """What a rep works on next: their open tasks by due time, and their prospects and
    opportunities by the configured temperature order (default hot first), then by score,
    each with its next open task."""
    c, s, tk = t.contacts.c, t.contact_scores.c, t.tasks.c
    h = config.engagement.half_life_seconds
    owned = and_(c.owner_id == owner_id, c.stage.in_(_owned_stages(config)))
    ids = _page_ids(conn, config, owned, limit=limit, offset=offset)
    rows = {r.id: r for r in conn.execute(
        select(c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature,
               c.fit_grade, s.engagement_score, s.engagement_t0)
        .select_from(t.contacts.join(t.contact_scores, s.contact_id == c.id))
        .where(c.id.in_(ids)))} if ids else {}
    next_tasks = {r.contact_id: r for r in conn.execute(
        select(tk.contact_id, func.min(tk.due_at).label("next_due"),
               func.count().label("open_tasks"))
        .where(tk.contact_id.in_(ids), tk.done_at.is_(None)).group_by(tk.contact_id))
    } if ids else {}
    total = int(conn.execute(select(func.count()).select_from(t.contacts).where(owned))
                .scalar_one())
    prospects = []
    for cid in ids:
        r, nt = rows[cid], next_tasks.get(cid)
        due = nt.next_due if nt is not None else None
        prospects.append({
            "id": r.id, "name": _name(r.first_name, r.last_name, r.email), "email": r.email,
            "stage": r.stage, "temperature": r.temperature, "grade": r.fit_grade,
            "engagement": round(score_now(r.engagement_score, r.engagement_t0, now, h), 2),
            "next_task_due_at": due, "open_tasks": int(nt.open_tasks) if nt else 0,
            "overdue": due is not None and due < now})
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
    """Owned prospects and opportunities with no open task, those whose owner was
    deactivated (nobody works them any more), and prospects nobody owns (only when every
    owner is visible: ``owners`` None)."""
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
    gone = select(t.users.c.id).where(t.users.c.active.is_(False))
    inactive_where = [c.owner_id.in_(gone), c.stage.in_(stages)]
    if owners is not None:
        inactive_where.append(c.owner_id.in_(owners))
    inactive = conn.execute(select(*cols).where(*inactive_where)
                            .order_by(c.stage_entered_at, c.id).limit(limit)).all()
    unassigned = [] if owners is not None else conn.execute(
        select(*cols).where(c.owner_id.is_(None), c.stage.in_(stages))
        .order_by(c.stage_entered_at, c.id).limit(limit)).all()

    def show(r: Any) -> dict[str, Any]:
        return {"id": r.id, "name": _name(r.first_name, r.last_name, r.email), "stage": r.stage,
                "temperature": r.temperature, "owner_id": r.owner_id,
                "stage_entered_at": r.stage_entered_at}
    return {"without_open_task": [show(r) for r in orphans],
            "owner_inactive": [show(r) for r in inactive],
            "unassigned": [show(r) for r in unassigned]}
