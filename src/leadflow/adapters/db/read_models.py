"""Queries behind lists, the funnel and the contact page (no domain objects needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from leadflow.adapters.db import tables as t
from leadflow.domain.config import GRADES, LifecycleConfig
from leadflow.domain.engagement import EngagementState, rank_threshold
from leadflow.domain.errors import InvalidInput

# Every contact has one contact_scores row (its engagement), joined where a list needs it.
WITH_SCORES = t.contacts.join(t.contact_scores, t.contact_scores.c.contact_id == t.contacts.c.id)

SORTS = {
    "score": (t.contact_scores.c.engagement_rank.desc(), t.contacts.c.id),
    "-score": (t.contact_scores.c.engagement_rank.asc(), t.contacts.c.id),
    "fit": (t.contacts.c.fit_score.desc(), t.contacts.c.id),
    "created": (t.contacts.c.created_at.desc(), t.contacts.c.id.desc()),
    "last_activity": (t.contacts.c.last_event_at.desc().nulls_last(), t.contacts.c.id),
    "name": (t.contacts.c.last_name.nulls_last(), t.contacts.c.first_name.nulls_last(),
             t.contacts.c.id),
    "id": (t.contacts.c.id,),
}


@dataclass
class ContactFilters:
    stage: list[str] | None = None
    temperature: list[str] | None = None
    grade: list[str] | None = None
    min_score: float | None = None
    milestone: str | None = None
    source: str | None = None
    owner_id: int | None = None
    search: str | None = None
    visible_owners: tuple[int, ...] | None = None  # what the caller may see; None: everyone


def parse_grades(value: str) -> list[str]:
    """'A,B' → [A, B]; 'B+' → A and B."""
    value = value.strip().upper()
    if value.endswith("+") and value[:-1] in GRADES:
        return list(GRADES[: GRADES.index(value[:-1]) + 1])
    grades = [g.strip() for g in value.split(",") if g.strip()]
    bad = [g for g in grades if g not in GRADES]
    if bad or not grades:
        raise InvalidInput(f"grades are A, B, C, D (or 'B+'), got {value!r}", field="grade")
    return grades


def score_now(score: float, t0: float | None, now: float, h: float) -> float:
    return EngagementState(score=score, t0=t0).at(now, h)


def list_contacts(
    conn: Connection, config: LifecycleConfig, filters: ContactFilters, *, now: float,
    sort: str = "score", limit: int = 50, offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    c = t.contacts.c
    s = t.contact_scores.c
    h = config.engagement.half_life_seconds
    where: list[ColumnElement[bool]] = []
    if filters.stage:
        unknown = [s for s in filters.stage if not config.has_stage(s)]
        if unknown:
            raise InvalidInput(f"unknown stage {unknown[0]!r} (stages: "
                               f"{', '.join(s.key for s in config.stages)})", field="stage")
        where.append(c.stage.in_(filters.stage))
    if filters.temperature:
        bad = [x for x in filters.temperature if x not in ("hot", "warm", "new", "cold")]
        if bad:
            raise InvalidInput(f"temperatures are hot, warm, new, cold; got {bad[0]!r}",
                               field="temperature")
        where.append(c.temperature.in_(filters.temperature))
    if filters.grade:
        where.append(c.fit_grade.in_(filters.grade))
    if filters.min_score is not None:
        if filters.min_score > 0:
            where.append(s.engagement_rank >= rank_threshold(filters.min_score, now, h))
        else:
            raise InvalidInput("min score must be greater than 0", field="min_score")
    if filters.milestone:
        if filters.milestone not in config.milestone_keys():
            raise InvalidInput(f"unknown milestone {filters.milestone!r}", field="milestone")
        where.append(select(t.milestones.c.contact_id).where(
            t.milestones.c.contact_id == c.id, t.milestones.c.key == filters.milestone).exists())
    if filters.source:
        where.append(c.source == filters.source.lower())
    if filters.owner_id is not None:
        where.append(c.owner_id == filters.owner_id)
    if filters.visible_owners is not None:
        where.append(c.owner_id.in_(filters.visible_owners))
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        where.append(func.lower(func.coalesce(c.email, "") + " " + func.coalesce(c.first_name, "")
                                + " " + func.coalesce(c.last_name, "")).like(pattern))
    if sort not in SORTS:
        raise InvalidInput(f"sort by one of {', '.join(SORTS)}", field="sort")
    cond = and_(*where) if where else None
    query = select(c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature,
                   c.fit_grade, c.fit_score, c.persona, c.source, s.engagement_score,
                   s.engagement_t0, c.last_event_at, c.owner_id).select_from(WITH_SCORES)
    count_q = select(func.count()).select_from(
        WITH_SCORES if filters.min_score is not None else t.contacts)
    if cond is not None:
        query, count_q = query.where(cond), count_q.where(cond)
    rows = conn.execute(query.order_by(*SORTS[sort]).limit(limit).offset(offset)).all()
    total = int(conn.execute(count_q).scalar() or 0)
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["engagement"] = round(score_now(d.pop("engagement_score"), d.pop("engagement_t0"),
                                          now, h), 2)
        d["name"] = " ".join(x for x in (d.pop("first_name"), d.pop("last_name")) if x) or None
        out.append(d)
    return out, total


def funnel(conn: Connection, config: LifecycleConfig, *,
           owners: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Counts per stage now; how many ever reached each main stage (jumps count as passing
    every stage in between); cumulative conversion between consecutive main stages.
    ``owners``: only the contacts these users own (what a rep or manager sees)."""
    main = config.main_stages
    rank_of = case({s.key: i for i, s in enumerate(main)}, value=t.stage_changes.c.to_stage,
                   else_=-1)
    reach = select(t.stage_changes.c.contact_id, func.max(rank_of).label("r"))
    mine = t.contacts.c.owner_id.in_(owners) if owners is not None else None
    if mine is not None:
        reach = reach.where(t.stage_changes.c.contact_id.in_(
            select(t.contacts.c.id).where(mine)))
    per_contact = reach.group_by(t.stage_changes.c.contact_id).subquery()
    reached_rows = conn.execute(select(per_contact.c.r, func.count())
                                .group_by(per_contact.c.r)).all()
    at_rank = {int(r): int(n) for r, n in reached_rows}
    reached = []
    for i in range(len(main)):
        reached.append(sum(n for r, n in at_rank.items() if r >= i))
    by_stage = select(t.contacts.c.stage, func.count()).group_by(t.contacts.c.stage)
    current: dict[str, int] = dict(conn.execute(
        by_stage if mine is None else by_stage.where(mine)).all())
    stages = [{"stage": s.key, "name": s.name, "role": s.role,
               "count": int(current.get(s.key, 0))} for s in config.stages]
    steps = []
    for i in range(len(main) - 1):
        a, b = reached[i], reached[i + 1]
        steps.append({"from": main[i].key, "to": main[i + 1].key, "reached_from": a,
                      "reached_to": b, "conversion": (b / a) if a else None})
    per_key = select(t.milestones.c.key, func.count()).group_by(t.milestones.c.key)
    if mine is not None:
        per_key = per_key.where(t.milestones.c.contact_id.in_(
            select(t.contacts.c.id).where(mine)))
    ms: dict[str, int] = dict(conn.execute(per_key).all())
    return {
        "stages": stages,
        "reached": [{"stage": s.key, "count": reached[i]} for i, s in enumerate(main)],
        "conversion": steps,
        "milestones": [{"milestone": m.key, "count": int(ms.get(m.key, 0))}
                       for m in config.milestones],
    }


def hottest_prospects(conn: Connection, config: LifecycleConfig, *, now: float,
                      limit: int = 10, owners: tuple[int, ...] | None = None
                      ) -> list[dict[str, Any]]:
    """Prospects in work-queue order: configured temperature order, then score now."""
    keys = [s.key for s in config.stages_with_role("handoff")]
    order = {temp: i for i, temp in enumerate(config.temperature.queue_order)}
    c = t.contacts.c
    s = t.contact_scores.c
    temp_rank = case(order, value=c.temperature, else_=len(order))
    query = (select(c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature,
                    c.fit_grade, c.persona, c.owner_id, s.engagement_score, s.engagement_t0)
             .select_from(WITH_SCORES).where(c.stage.in_(keys)))
    if owners is not None:
        query = query.where(c.owner_id.in_(owners))
    rows = conn.execute(query.order_by(temp_rank, s.engagement_rank.desc(), c.id)
                        .limit(limit)).all()
    h = config.engagement.half_life_seconds
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["engagement"] = round(score_now(d.pop("engagement_score"), d.pop("engagement_t0"),
                                          now, h), 2)
        d["name"] = " ".join(x for x in (d.pop("first_name"), d.pop("last_name")) if x) or None
        out.append(d)
    return out


def contact_id_for(conn: Connection, ref: str) -> int | None:
    ref = ref.strip()
    if ref.isdigit():
        return int(ref) if 0 < int(ref) < 2**31 else None
    return conn.execute(select(t.contacts.c.id)
                        .where(t.contacts.c.email == ref.lower())).scalar()


def late_contacts(conn: Connection, watermark: int) -> list[int]:
    rows = conn.execute(select(t.events.c.contact_id).where(t.events.c.id > watermark)
                        .distinct())
    return [r[0] for r in rows]
