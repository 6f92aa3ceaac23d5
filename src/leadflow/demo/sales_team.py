"""The demo's people and sales work: an admin, a marketer, two teams of reps with territories
and weights, owners for every prospect, opportunity and customer (by the same assignment rules
as the product), their follow-up tasks (some overdue), and deals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, func, insert, select, update

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_scoring import sync_queue_ranks
from leadflow.bootstrap import App
from leadflow.domain.assignment import Assignment, Rep, choose_owner
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.sales import FOLLOW_UP
from leadflow.domain.sales_config import DealStage
from leadflow.domain.users import User
from leadflow.services.users import create_user

DEMO_PASSWORD = "leadflow-demo"  # printed by `make run`; demo installs only
PEOPLE: tuple[dict[str, Any], ...] = (
    {"email": "admin@leadflow.demo", "name": "Ada Admin", "role": "admin"},
    {"email": "marketing@leadflow.demo", "name": "Marc Marketer", "role": "marketer"},
    {"email": "north.manager@leadflow.demo", "name": "Nora North", "role": "sales_manager",
     "team": "north", "weight": 0.25},
    {"email": "south.manager@leadflow.demo", "name": "Sam South", "role": "sales_manager",
     "team": "south", "weight": 0.25},
    {"email": "fanny@leadflow.demo", "name": "Fanny Martin", "role": "sales_rep",
     "team": "south", "territories": ["FR", "BE", "CH"], "weight": 2.0},
    {"email": "lucas@leadflow.demo", "name": "Lucas Bernard", "role": "sales_rep",
     "team": "south", "territories": ["FR", "ES", "IT"]},
    {"email": "greta@leadflow.demo", "name": "Greta Vogel", "role": "sales_rep",
     "team": "north", "territories": ["DE", "NL", "CH"]},
    {"email": "oliver@leadflow.demo", "name": "Oliver Smith", "role": "sales_rep",
     "team": "north", "territories": ["GB", "NL"]},
    {"email": "maya@leadflow.demo", "name": "Maya Johnson", "role": "sales_rep",
     "team": "north", "territories": ["US", "CA"], "weight": 1.5},
    {"email": "ravi@leadflow.demo", "name": "Ravi Kumar", "role": "sales_rep",
     "team": "north"},
)
OWNED_ROLES = ("handoff", "commit", "won")
BATCH = 5_000


def _rows(engine: Engine, stages: list[str]) -> list[Any]:
    c, a = t.contacts.c, t.accounts.c
    with engine.connect() as conn:
        return list(conn.execute(
            select(c.id, c.stage, c.country, c.region, c.temperature, c.stage_entered_at,
                   c.first_name, c.last_name, c.email, c.account_id, a.country.label("acc"))
            .select_from(t.contacts.outerjoin(t.accounts, a.id == c.account_id))
            .where(c.stage.in_(stages)).order_by(c.stage_entered_at, c.id)).all())


def _name(row: Any) -> str:
    return " ".join(x for x in (row.first_name, row.last_name) if x) or row.email


def _lost_rows(engine: Engine, *, stages_of: LifecycleConfig) -> list[Any]:
    """Contacts sent back from the commit stage (a lost deal), with when they entered it
    (``opened_at``), when they left it (``lost_at``) and why."""
    c, a, sc = t.contacts.c, t.accounts.c, t.stage_changes.c
    commit = stages_of.first_stage("commit").key
    opened = (select(sc.contact_id, func.min(sc.at).label("opened_at"))
              .where(sc.to_stage == commit).group_by(sc.contact_id).subquery("opened"))
    with engine.connect() as conn:
        return list(conn.execute(
            select(c.id, c.country, c.region, c.first_name, c.last_name, c.email, c.account_id,
                   a.country.label("acc"), sc.at.label("lost_at"), sc.reason,
                   opened.c.opened_at)
            .select_from(t.stage_changes.join(t.contacts, c.id == sc.contact_id)
                         .join(opened, opened.c.contact_id == sc.contact_id)
                         .outerjoin(t.accounts, a.id == c.account_id))
            .where(sc.from_stage == commit, sc.kind == "backward")
            .order_by(sc.at, c.id)).all())


def install_sales_team(app: App, *, seed: int) -> dict[str, int]:
    """Add the demo's users, then owners, tasks and deals for the sales stages."""
    cfg = app.config
    now = app.clock.now()
    rng = np.random.default_rng(seed + 1)
    users: list[User] = []
    for person in PEOPLE:
        with app.reader() as uow:
            found = uow.users.get_by_email(person["email"])
        users.append(found or create_user(uow=app.uow(), ctx=app.ctx, password=DEMO_PASSWORD,
                                          **person))
    sales = [u for u in users if u.role in ("sales_rep", "sales_manager")]
    reps = [Rep(id=u.id, weight=u.weight, territories=u.territories, name=u.name)
            for u in sales]
    stages = {s.key: s.role for s in cfg.stages if s.role in OWNED_ROLES}
    rows = _rows(app.engine, list(stages))
    counts = {r.id: 0 for r in reps}
    owners: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    deals: list[dict[str, Any]] = []
    deal_stages = cfg.sales.deal_stages
    cal = cfg.sales.calendar
    def owner_of(row: Any) -> Assignment:
        """A rep for the contact, by territory and weight, as the hand-off assigns them."""
        pool = [replace(r, assigned=counts[r.id]) for r in reps]
        choice = choose_owner(pool, country=row.country or row.acc, region=row.region,
                              account_owner_id=None)
        assert choice is not None
        counts[choice.rep_id] += 1
        owners.append({"cid": row.id, "owner": choice.rep_id})
        return choice

    def deal(row: Any, owner: int, stage: DealStage, **outcome: Any) -> dict[str, Any]:
        """A deal of the contact's, amount drawn, with its ``outcome`` (status, dates…)."""
        return {"contact_id": row.id, "account_id": row.account_id, "owner_id": owner,
                "name": f"{_name(row)}: {int(rng.integers(5, 200))} seats"[:300],
                "amount": float(round(rng.lognormal(9.2, 0.6), -2)), "currency": "EUR",
                "deal_stage": stage.key, "next_step": None, "created_by": "demo", **outcome}

    for row in rows:
        choice = owner_of(row)
        audits.append({"contact_id": row.id, "at": row.stage_entered_at,
                       "actor": "rule:handoff", "action": "assigned",
                       "details": {"owner_id": choice.rep_id, "rule": choice.rule,
                                   "reason": choice.reason, "temperature": row.temperature}})
        role = stages[row.stage]
        if role in ("handoff", "commit"):
            # Most are followed up in time; a few slipped (overdue), as in real life.
            lag = rng.uniform(0, 2 * 3600) if rng.random() < 0.85 else rng.uniform(1, 6) * 86400
            start = max(row.stage_entered_at, now - lag)
            due = cal.add(start, cfg.sales.sla_seconds(row.temperature))
            tasks.append({"contact_id": row.id, "owner_id": choice.rep_id, "kind": FOLLOW_UP,
                          "title": f"Follow up {_name(row)}"[:300], "due_at": due,
                          "created_at": start, "created_by": "rule:handoff"})
        if role in ("commit", "won"):
            stage = deal_stages[int(rng.integers(len(deal_stages)))]
            won = role == "won"
            close = date.fromtimestamp(now + float(rng.uniform(7, 90)) * 86400).isoformat()
            deals.append(deal(
                row, choice.rep_id, stage, expected_close=None if won else close,
                probability=1.0 if won else stage.probability,
                status="won" if won else "open", lost_reason=None,
                closed_at=row.stage_entered_at if won else None,
                created_at=row.stage_entered_at, updated_at=row.stage_entered_at))
    # Deals lost (their contacts went back to nurture, keeping their owner): the deal opened
    # when the contact became an opportunity and closed lost when it was sent back.
    for row in _lost_rows(app.engine, stages_of=cfg):
        choice = owner_of(row)
        why = str(row.reason).removeprefix("lost deal: ")
        stage = deal_stages[int(rng.integers(len(deal_stages)))]
        deals.append(deal(row, choice.rep_id, stage, expected_close=None,
                          probability=stage.probability, status="lost", lost_reason=why,
                          closed_at=row.lost_at, created_at=row.opened_at,
                          updated_at=row.lost_at))
        audits.append({"contact_id": row.id, "at": row.lost_at, "actor": "user:demo-rep",
                        "action": "opportunity_lost",
                        "details": {"lost_reason": why, "then": "nurture"}})
    with app.engine.begin() as conn:
        set_owner = update(t.contacts).where(t.contacts.c.id == bindparam("cid")).values(
            owner_id=bindparam("owner"))
        for i in range(0, len(owners), BATCH):
            conn.execute(set_owner, owners[i:i + BATCH])
        for table, values in ((t.tasks, tasks), (t.audit, audits), (t.opportunities, deals)):
            for i in range(0, len(values), BATCH):
                conn.execute(insert(table), values[i:i + BATCH])
        for rep_id, n in counts.items():
            conn.execute(update(t.users).where(t.users.c.id == rep_id).values(assigned=n))
        sync_queue_ranks(conn)
    return {"users": len(users), "owned": len(owners), "tasks": len(tasks),
            "opportunities": len(deals)}
