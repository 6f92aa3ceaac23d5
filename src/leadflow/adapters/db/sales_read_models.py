"""Queries behind the sales lists and the prospecting plan (no domain objects needed).

``SqlSalesReads`` wraps one connection, so that the several queries of one plan read one
database; the services see it through their read protocols (``OpportunityReads``,
``PlanReads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    func,
    or_,
    select,
)

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import WITH_SCORES, score_now
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.sales import CALL_NOT_REACHED

OPPORTUNITY_COLUMNS = ("id", "contact_id", "account_id", "owner_id", "name", "amount",
                       "currency", "expected_close", "deal_stage", "probability", "next_step",
                       "status", "lost_reason", "closed_at", "created_at", "updated_at",
                       "created_by")
ASSIGNED = "assigned"  # the audit action of a hand-off (services/handoff.py)


def list_opportunities(
    conn: Connection, *, visible_owners: tuple[int, ...] | None, status: str | None,
    deal_stage: str | None, owner_id: int | None, limit: int, offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of opportunities, newest first, and how many match.

    ``visible_owners`` None: every deal; else the deals owned by one of them or whose contact
    one of them owns (a rep keeps seeing the deals of their contacts). Each row carries the
    contact's email, name, stage and owner.
    """
    o = t.opportunities.c
    c = t.contacts.c
    where: list[ColumnElement[bool]] = []
    if visible_owners is not None:
        where.append(or_(o.owner_id.in_(visible_owners), c.owner_id.in_(visible_owners)))
    if status is not None:
        where.append(o.status == status)
    if deal_stage is not None:
        where.append(o.deal_stage == deal_stage)
    if owner_id is not None:
        where.append(o.owner_id == owner_id)
    joined = t.opportunities.join(t.contacts, c.id == o.contact_id)
    query = select(*(o[name] for name in OPPORTUNITY_COLUMNS), c.email.label("contact_email"),
                   c.first_name, c.last_name, c.stage.label("contact_stage"),
                   c.owner_id.label("contact_owner_id")).select_from(joined)
    count_q = select(func.count()).select_from(joined)
    if where:
        query, count_q = query.where(and_(*where)), count_q.where(and_(*where))
    rows = conn.execute(query.order_by(o.id.desc()).limit(limit).offset(offset)).all()
    total = int(conn.execute(count_q).scalar() or 0)
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["contact_name"] = " ".join(
            x for x in (d.pop("first_name"), d.pop("last_name")) if x) or None
        out.append(d)
    return out, total


def _max_rank_per_contact(config: LifecycleConfig) -> Any:
    """Per contact, the highest main-stage rank any of its stage changes entered: a contact
    has reached every main stage up to that rank (a jump passes the stages in between)."""
    sc = t.stage_changes.c
    rank_of = case({s.key: i for i, s in enumerate(config.main_stages)}, value=sc.to_stage,
                   else_=-1)
    return (select(sc.contact_id.label("contact_id"), func.max(rank_of).label("r"))
            .group_by(sc.contact_id).subquery("reach"))


def reach_counts(conn: Connection, config: LifecycleConfig) -> dict[int, int]:
    """How many contacts reached each main-stage rank as their highest: {rank: contacts}.

    One GROUP BY over the stage changes. Contacts that reached rank ``r`` or beyond are
    ``sum(n for rank, n in counts.items() if rank >= r)``.
    """
    reach = _max_rank_per_contact(config)
    rows = conn.execute(select(reach.c.r, func.count()).group_by(reach.c.r)).all()
    return {int(r): int(n) for r, n in rows}


def handoff_temperature_counts(conn: Connection, config: LifecycleConfig
                               ) -> dict[str, tuple[int, int]]:
    """{temperature at hand-off: (contacts handed off with it, those of them that reached the
    won role)}; one GROUP BY over the hand-off audit entries.

    The temperature is the one the ``assigned`` audit entry recorded. A contact handed off
    twice with the same temperature counts once in that group; handed off with two
    temperatures, it counts in both. Entries without a temperature (a lead a rep entered by
    hand, details erased at the person's request) count nowhere.
    """
    reach = _max_rank_per_contact(config)
    won_rank = config.rank(config.first_stage("won").key)
    a = t.audit.c
    temperature = a.details["temperature"].as_string()
    handed = (select(a.contact_id.label("contact_id"), temperature.label("temperature"))
              .where(a.action == ASSIGNED, temperature.is_not(None)).subquery("handed"))
    won = case((reach.c.r >= won_rank, handed.c.contact_id), else_=None)
    rows = conn.execute(
        select(handed.c.temperature, func.count(handed.c.contact_id.distinct()),
               func.count(won.distinct()))
        .select_from(handed.outerjoin(reach, reach.c.contact_id == handed.c.contact_id))
        .group_by(handed.c.temperature)).all()
    return {temp: (int(n), int(w)) for temp, n, w in rows}


def _pool_query(config: LifecycleConfig, *, visible_owners: tuple[int, ...] | None,
                roles: Sequence[str], limit: int | None) -> Select[Any]:
    c = t.contacts.c
    s = t.contact_scores.c
    stages = [st.key for role in roles for st in config.stages_with_role(role)]
    query = (select(c.id, c.email, c.phone, c.first_name, c.last_name, c.stage, c.temperature,
                    c.account_id, c.owner_id, c.consent, s.engagement_score, s.engagement_t0)
             .select_from(WITH_SCORES).where(c.stage.in_(stages))
             .order_by(s.engagement_rank.desc(), c.id))
    if visible_owners is not None:
        query = query.where(c.owner_id.in_(visible_owners))
    if limit is not None:
        query = query.limit(limit)
    return query


def _allowed(consent: dict[str, Any] | None, channel: str) -> bool:
    record = (consent or {}).get(channel)
    return not isinstance(record, dict) or record.get("granted") is not False


def plan_pool(conn: Connection, config: LifecycleConfig, *,
              visible_owners: tuple[int, ...] | None, roles: Sequence[str], now: float,
              limit: int | None) -> list[dict[str, Any]]:
    """The contacts a plan draws from: those in stages of ``roles`` whose owner is visible
    (``visible_owners`` None: every contact, owned or not; otherwise only contacts owned by
    one of them, so nobody's leads are left to admins and marketers), highest engagement now
    first, at most ``limit``.

    Each row: id, name, stage, temperature, account_id, owner_id, engagement (score now),
    has_email, has_phone, email_allowed and phone_allowed (consent recorded per channel as
    ``{"granted": bool, ...}``; no record means allowed), reached_by (channels the contact
    answered on: an inbound email → "email", a call whose outcome reached them → "phone")
    and open_deals (its open opportunities: id, amount, currency, probability).
    """
    h = config.engagement.half_life_seconds
    pool = _pool_query(config, visible_owners=visible_owners, roles=roles, limit=limit)
    rows = conn.execute(pool).all()
    ids = pool.with_only_columns(t.contacts.c.id).subquery("pool")
    act = t.activities.c
    answered = or_(and_(act.kind == "email", act.direction == "inbound"),
                   and_(act.kind == "call", or_(act.outcome.is_(None),
                                                act.outcome.not_in(CALL_NOT_REACHED))))
    channels: dict[int, set[str]] = {}
    for contact_id, kind in conn.execute(
            select(act.contact_id, act.kind).where(act.contact_id.in_(select(ids.c.id)),
                                                   answered).distinct()):
        channels.setdefault(int(contact_id), set()).add("email" if kind == "email" else "phone")
    o = t.opportunities.c
    deals: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(select(o.contact_id, o.id, o.amount, o.currency, o.probability)
                          .where(o.contact_id.in_(select(ids.c.id)), o.status == "open")
                          .order_by(o.contact_id, o.id)):
        deals.setdefault(int(r.contact_id), []).append(
            {"id": r.id, "amount": r.amount, "currency": r.currency,
             "probability": r.probability})
    out = []
    for r in rows:
        m = r._mapping
        out.append({
            "id": m["id"],
            "name": " ".join(x for x in (m["first_name"], m["last_name"]) if x)
            or m["email"] or f"contact {m['id']}",
            "stage": m["stage"], "temperature": m["temperature"],
            "account_id": m["account_id"], "owner_id": m["owner_id"],
            "engagement": score_now(m["engagement_score"], m["engagement_t0"], now, h),
            "has_email": bool(m["email"]), "has_phone": bool(m["phone"]),
            "email_allowed": _allowed(m["consent"], "email"),
            "phone_allowed": _allowed(m["consent"], "phone"),
            "reached_by": tuple(sorted(channels.get(m["id"], ()))),
            "open_deals": deals.get(m["id"], []),
        })
    return out


class SqlSalesReads:
    """The sales read models on one connection (``OpportunityReads`` and ``PlanReads``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def list_opportunities(
        self, *, visible_owners: tuple[int, ...] | None, status: str | None,
        deal_stage: str | None, owner_id: int | None, limit: int, offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return list_opportunities(self.conn, visible_owners=visible_owners, status=status,
                                  deal_stage=deal_stage, owner_id=owner_id, limit=limit,
                                  offset=offset)

    def reach_counts(self, config: LifecycleConfig) -> dict[int, int]:
        return reach_counts(self.conn, config)

    def handoff_temperature_counts(self, config: LifecycleConfig
                                   ) -> dict[str, tuple[int, int]]:
        return handoff_temperature_counts(self.conn, config)

    def plan_pool(self, config: LifecycleConfig, *, visible_owners: tuple[int, ...] | None,
                  roles: Sequence[str], now: float, limit: int | None) -> list[dict[str, Any]]:
        return plan_pool(self.conn, config, visible_owners=visible_owners, roles=roles,
                         now=now, limit=limit)
