"""Queries behind the web app's sales pages: the task list, what a queue row needs beside
``work_queues.rep_queue`` (each contact's next open task, whether sales accepted it, names),
and the opportunity board (per deal stage: counts, sums by currency, a column of cards).

Visibility follows services/access.py: a task is visible when its owner is; a deal when its
owner or its contact's owner is (``None``: everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from leadflow.adapters.db import tables as t

TASK_STATUSES = ("open", "done")


def _name(first: str | None, last: str | None, email: str | None, cid: int) -> str:
    return " ".join(x for x in (first, last) if x) or email or f"#{cid}"


def task_page(conn: Connection, *, owners: tuple[int, ...] | None, owner_id: int | None,
              status: str, now: float, limit: int, offset: int
              ) -> tuple[list[dict[str, Any]], int]:
    """A page of tasks and how many match: open ones by due time (the most overdue first),
    or done ones, the latest done first. ``owners`` is what the viewer may see (None: all);
    ``owner_id`` narrows to one owner. Each row has its contact's name, stage and
    temperature, its owner's name and ``overdue``."""
    if status not in TASK_STATUSES:
        raise ValueError(f"status is one of {TASK_STATUSES}")
    tk, c, u = t.tasks.c, t.contacts.c, t.users.c
    where: list[ColumnElement[bool]] = [
        tk.done_at.is_(None) if status == "open" else tk.done_at.is_not(None)]
    if owners is not None:
        where.append(tk.owner_id.in_(owners))
    if owner_id is not None:
        where.append(tk.owner_id == owner_id)
    order = (tk.due_at, tk.id) if status == "open" else (tk.done_at.desc(), tk.id.desc())
    rows = conn.execute(
        select(tk.id, tk.contact_id, tk.owner_id, tk.kind, tk.title, tk.due_at, tk.done_at,
               tk.done_by, tk.outcome, c.email, c.first_name, c.last_name, c.stage,
               c.temperature, u.name.label("owner"))
        .select_from(t.tasks.join(t.contacts, c.id == tk.contact_id)
                     .join(t.users, u.id == tk.owner_id))
        .where(*where).order_by(*order).limit(limit).offset(offset)).all()
    total = int(conn.execute(select(func.count()).select_from(t.tasks).where(*where))
                .scalar() or 0)
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["name"] = _name(d.pop("first_name"), d.pop("last_name"), d["email"], r.contact_id)
        d["overdue"] = r.done_at is None and r.due_at < now
        out.append(d)
    return out, total


def queue_details(conn: Connection, *, contact_ids: Sequence[int], milestone: str
                  ) -> dict[int, dict[str, Any]]:
    """Per contact: its next open task (id, title, kind, due_at, owner_id; whoever owns it)
    or None, and whether it reached ``milestone`` (sales accepted it)."""
    ids = list(dict.fromkeys(contact_ids))
    out: dict[int, dict[str, Any]] = {cid: {"next_task": None, "accepted": False}
                                      for cid in ids}
    if not ids:
        return out
    tk, ms = t.tasks.c, t.milestones.c
    for r in conn.execute(
            select(tk.id, tk.contact_id, tk.title, tk.kind, tk.due_at, tk.owner_id)
            .where(tk.contact_id.in_(ids), tk.done_at.is_(None))
            .order_by(tk.contact_id, tk.due_at, tk.id)):
        if out[r.contact_id]["next_task"] is None:
            out[r.contact_id]["next_task"] = {"id": r.id, "title": r.title, "kind": r.kind,
                                              "due_at": r.due_at, "owner_id": r.owner_id}
    for cid in conn.execute(select(ms.contact_id).where(ms.contact_id.in_(ids),
                                                        ms.key == milestone)).scalars():
        out[cid]["accepted"] = True
    return out


def contact_labels(conn: Connection, *, ids: Sequence[int]) -> dict[int, str]:
    """{contact id: its name, else its email, else #id}."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    c = t.contacts.c
    return {r.id: _name(r.first_name, r.last_name, r.email, r.id) for r in conn.execute(
        select(c.id, c.first_name, c.last_name, c.email).where(c.id.in_(wanted)))}


def account_names(conn: Connection, *, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = [i for i in dict.fromkeys(ids) if i is not None]
    if not wanted:
        return {}
    a = t.accounts.c
    return {r.id: r.name for r in conn.execute(select(a.id, a.name).where(a.id.in_(wanted)))}


def _deal_filters(*, visible_owners: tuple[int, ...] | None, owner_id: int | None,
                  status: str | None) -> list[ColumnElement[bool]]:
    o, c = t.opportunities.c, t.contacts.c
    where: list[ColumnElement[bool]] = []
    if visible_owners is not None:
        where.append(or_(o.owner_id.in_(visible_owners), c.owner_id.in_(visible_owners)))
    if owner_id is not None:
        where.append(o.owner_id == owner_id)
    if status is not None:
        where.append(o.status == status)
    return where


def opportunity_board(conn: Connection, *, visible_owners: tuple[int, ...] | None,
                      owner_id: int | None, status: str | None, stages: Sequence[str],
                      per_column: int) -> dict[str, dict[str, Any]]:
    """Per deal stage (those of ``stages`` first, in that order, then any other stage a deal
    is in): ``count``, ``sums`` ({currency: [amount, amount × probability]}) and ``cards``,
    at most ``per_column`` deals by expected close (undated last), each with its contact's
    and account's names."""
    o, c, a = t.opportunities.c, t.contacts.c, t.accounts.c
    where = _deal_filters(visible_owners=visible_owners, owner_id=owner_id, status=status)
    joined = t.opportunities.join(t.contacts, c.id == o.contact_id)
    board: dict[str, dict[str, Any]] = {
        key: {"count": 0, "sums": {}, "cards": []} for key in stages}
    for r in conn.execute(
            select(o.deal_stage, o.currency, func.count(), func.sum(o.amount),
                   func.sum(o.amount * o.probability))
            .select_from(joined).where(*where).group_by(o.deal_stage, o.currency)
            .order_by(o.deal_stage, o.currency)):
        column = board.setdefault(r[0], {"count": 0, "sums": {}, "cards": []})
        column["count"] += int(r[2])
        column["sums"][r[1]] = [float(r[3] or 0), float(r[4] or 0)]
    for key, column in board.items():
        if not column["count"]:
            continue
        rows = conn.execute(
            select(o.id, o.contact_id, o.account_id, o.owner_id, o.name, o.amount,
                   o.currency, o.expected_close, o.deal_stage, o.probability, o.next_step,
                   o.status, o.lost_reason, o.closed_at, c.email, c.first_name, c.last_name,
                   a.name.label("account"))
            .select_from(joined.outerjoin(t.accounts, a.id == o.account_id))
            .where(and_(*where, o.deal_stage == key))
            .order_by(o.expected_close.is_(None), o.expected_close, o.id)
            .limit(per_column)).all()
        for r in rows:
            d = dict(r._mapping)
            d["contact"] = _name(d.pop("first_name"), d.pop("last_name"), d.pop("email"),
                                 r.contact_id)
            column["cards"].append(d)
    return board
