"""Queries behind lists, the funnel and the contact page (no domain objects needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select, union_all

from leadflow.adapters.db import tables as t
from leadflow.domain.config import GRADES, LifecycleConfig
from leadflow.domain.engagement import ZERO_RANK, EngagementState, rank_threshold
from leadflow.domain.errors import InvalidInput

# Every contact has one contact_scores row (its engagement), joined where a list needs it.
WITH_SCORES = t.contacts.join(t.contact_scores, t.contact_scores.c.contact_id == t.contacts.c.id)

SORTS = {
    "score": (t.contact_scores.c.engagement_rank.desc(), t.contacts.c.id),
    "-score": (t.contact_scores.c.engagement_rank.asc(), t.contacts.c.id),
    "fit": (t.contacts.c.fit_score.desc(), t.contacts.c.id.desc()),
    "created": (t.contacts.c.created_at.desc(), t.contacts.c.id.desc()),
    "last_activity": (t.contacts.c.last_event_at.desc().nulls_last(), t.contacts.c.id.desc()),
    "name": (t.contacts.c.last_name.nulls_last(), t.contacts.c.first_name.nulls_last(),
             t.contacts.c.id),
    "id": (t.contacts.c.id,),
}


# A filtered page is looked for first among the first contacts in the sort's order, in
# windows of these sizes, each tried when it holds this many contacts per row up to the
# page's end.
WINDOWS = (3_000, 15_000)
WINDOW_PER_ROW = 10
FEW = 2_000  # fewer contacts kept than this: they are read and sorted (no window)


@dataclass
class ContactFilters:
    stage: list[str] | None = None
    temperature: list[str] | None = None
    grade: list[str] | None = None
    min_score: float | None = None  # engagement now, at least (> 0; the web list allows 0)
    max_score: float | None = None  # engagement now, at most (>= 0)
    milestone: str | None = None
    source: str | None = None
    owner_id: int | None = None
    search: str | None = None  # text anywhere in the email or name (reads every contact)
    starts_with: str | None = None  # words each starting the email, first or last name
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


def _rank_conditions(config: LifecycleConfig, filters: ContactFilters, *, now: float
                     ) -> list[ColumnElement[bool]]:
    """The engagement range, on contact_scores alone."""
    s = t.contact_scores.c
    h = config.engagement.half_life_seconds
    where: list[ColumnElement[bool]] = []
    if filters.min_score is not None:
        if filters.min_score > 0:
            where.append(s.engagement_rank >= rank_threshold(filters.min_score, now, h))
        elif filters.min_score == 0:  # no negative score
            where.append(s.engagement_rank >= ZERO_RANK)
        else:
            raise InvalidInput("min score must be greater than 0", field="min_score")
    if filters.max_score is not None:
        if filters.max_score > 0:
            where.append(s.engagement_rank <= rank_threshold(filters.max_score, now, h))
        elif filters.max_score == 0:
            where.append(s.engagement_rank <= ZERO_RANK)
        else:
            raise InvalidInput("max score must be 0 or more", field="max_score")
    return where


def _conditions(config: LifecycleConfig, filters: ContactFilters, *, now: float,
                with_milestone: bool = True) -> list[ColumnElement[bool]]:
    """Every filter's condition (the engagement range's included; the milestone's unless
    ``with_milestone`` is false: the caller joins the milestones)."""
    c = t.contacts.c
    where = _rank_conditions(config, filters, now=now)
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
    if filters.milestone:
        if filters.milestone not in config.milestone_keys():
            raise InvalidInput(f"unknown milestone {filters.milestone!r}", field="milestone")
        if with_milestone:
            where.append(select(t.milestones.c.contact_id).where(
                t.milestones.c.contact_id == c.id,
                t.milestones.c.key == filters.milestone).exists())
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
    if filters.starts_with and filters.starts_with.split():
        where.extend(_starting(filters.starts_with))
    return where


def _after(prefix: str) -> str:
    """The first string after every string that starts with ``prefix`` (binary order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _starting(text: str) -> list[ColumnElement[bool]]:
    """Every word starts the email, the first name or the last name (in any letter case).
    The first word is looked up in the indexes of those columns: emails are kept in lower
    case; names as typed, so their lower-case, capitalised and upper-case forms are ranges
    of the name indexes (a name like "McKay" is found from "mck" only by its other words)."""
    c = t.contacts.c
    words = text.lower().split()
    first = words[0]
    ranges = [and_(c.email >= first, c.email < _after(first))]
    for form in dict.fromkeys((first, first.capitalize(), first.upper())):
        ranges += [and_(column >= form, column < _after(form))
                   for column in (c.first_name, c.last_name)]
    where: list[ColumnElement[bool]] = [or_(*ranges)]
    for word in words[1:]:
        pattern = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(*(func.lower(column).like(pattern, escape="\\")
                           for column in (c.email, c.first_name, c.last_name))))
    return where


def _scored(row: Any, now: float, h: float) -> dict[str, Any]:
    d = dict(row._mapping)
    d["engagement"] = round(score_now(d.pop("engagement_score"), d.pop("engagement_t0"),
                                      now, h), 2)
    d["name"] = " ".join(x for x in (d.pop("first_name"), d.pop("last_name")) if x) or None
    return d


def _listed(query: Any) -> Any:
    c = t.contacts.c
    s = t.contact_scores.c
    return query.add_columns(
        c.id, c.email, c.first_name, c.last_name, c.stage, c.temperature, c.fit_grade,
        c.fit_score, c.persona, c.source, s.engagement_score, s.engagement_t0,
        c.last_event_at, c.owner_id, c.created_at)


def _sorted_apart(sort: str, query: Any, limit: int, offset: int) -> Any:
    """``query`` (of contact ids) cut to a page in the sort's order, the rows it keeps found
    first and sorted after: fenced off (OFFSET 0), the database cannot walk the sort's index
    hoping for the filters to keep its first contacts (which reads on and on when they keep
    few of them)."""
    c = t.contacts.c
    s = t.contact_scores.c
    keys = {"score": [s.engagement_rank], "-score": [s.engagement_rank],
            "fit": [c.fit_score], "created": [c.created_at], "last_activity": [c.last_event_at],
            "name": [c.last_name, c.first_name], "id": []}[sort]
    kept = query.add_columns(*(k.label(f"k{i}") for i, k in enumerate(keys))).offset(0) \
        .subquery("kept")
    k = [kept.c[f"k{i}"] for i in range(len(keys))]
    order = {"score": (k[0].desc() if k else None, kept.c.id),
             "-score": (k[0].asc() if k else None, kept.c.id),
             "fit": (k[0].desc() if k else None, kept.c.id.desc()),
             "created": (k[0].desc() if k else None, kept.c.id.desc()),
             "last_activity": (k[0].desc().nulls_last() if k else None, kept.c.id.desc()),
             "name": (*(x.nulls_last() for x in k), kept.c.id),
             "id": (kept.c.id,)}[sort]
    return select(kept.c.id).order_by(*(o for o in order if o is not None)) \
        .limit(limit).offset(offset)


def _in_order(sort: str, query: Any, limit: int, offset: int, *, by_index: bool = True
              ) -> Any:
    """``query`` (of contact ids) sorted and cut to a page. Last activity comes in two
    parts, the active then the never active, so that PostgreSQL reads each from the index
    (its index puts NULLs first when read backwards; the sort wants them last)."""
    if not by_index:
        return _sorted_apart(sort, query, limit, offset)
    if sort != "last_activity":
        return query.order_by(*SORTS[sort]).limit(limit).offset(offset)
    c = t.contacts.c
    active = (query.where(c.last_event_at.is_not(None)).add_columns(c.last_event_at)
              .order_by(c.last_event_at.desc(), c.id.desc()).limit(limit + offset)
              .subquery("active"))
    never = (query.where(c.last_event_at.is_(None)).add_columns(c.last_event_at)
             .order_by(c.id.desc()).limit(limit + offset).subquery("never"))
    both = union_all(select(active.c.id, active.c.last_event_at),
                     select(never.c.id, never.c.last_event_at)).subquery("both")
    return (select(both.c.id)
            .order_by(both.c.last_event_at.desc().nulls_last(), both.c.id.desc())
            .limit(limit).offset(offset))


def _window(sort: str, on_rank: list[ColumnElement[bool]], size: int) -> Any:
    """The first ``size`` contact ids in the sort's order, read from its index alone (and,
    for the engagement sorts, within the score range the filters ask for)."""
    c = t.contacts.c
    s = t.contact_scores.c
    if sort in ("score", "-score"):
        rank = s.engagement_rank.desc() if sort == "score" else s.engagement_rank.asc()
        return (select(s.contact_id.label("id")).where(*on_rank)
                .order_by(rank, s.contact_id).limit(size).subquery("window"))
    return _in_order(sort, select(c.id), size, 0).subquery("window")


def _page(sort: str, where: list[ColumnElement[bool]], limit: int, offset: int,
          window: Any = None, *, owned: bool = False, by_index: bool = True) -> Any:
    """The ids of one page (narrow: the sort's index can give them without the rows), as a
    subquery; from ``window`` only, when given. ``owned``: the filters keep owned contacts
    only. ``by_index=False``: see ``_sorted_apart``."""
    c = t.contacts.c
    s = t.contact_scores.c
    if owned and window is None and sort in ("score", "-score"):
        # Every contact listed has an owner: its rank's copy orders it by the owner's index.
        rank = c.queue_rank.desc() if sort == "score" else c.queue_rank.asc()
        source: Any = t.contacts
        if any(_on_scores(w) for w in where):
            source = source.join(t.contact_scores, s.contact_id == c.id)
        return (select(c.id).select_from(source).where(*where).order_by(rank, c.id)
                .limit(limit).offset(offset).subquery("page"))
    if window is None and sort in ("score", "-score") and all(_on_scores(w) for w in where):
        rank = s.engagement_rank.desc() if sort == "score" else s.engagement_rank.asc()
        return (select(s.contact_id.label("id")).where(*where).order_by(rank, s.contact_id)
                .limit(limit).offset(offset).subquery("page"))
    source = t.contacts if window is None else window.join(t.contacts, c.id == window.c.id)
    if sort in ("score", "-score") or any(_on_scores(w) for w in where):
        source = source.join(t.contact_scores, s.contact_id == c.id)
    query = select(c.id).select_from(source).where(*where)
    return _in_order(sort, query, limit, offset, by_index=by_index).subquery("page")


def _on_scores(condition: ColumnElement[bool]) -> bool:
    return any(getattr(x, "table", None) is t.contact_scores
               for x in condition.get_children())


def _rows_of(conn: Connection, page: Any, sort: str) -> Sequence[Any]:
    query = _listed(select().select_from(
        page.join(t.contacts, t.contacts.c.id == page.c.id)
        .join(t.contact_scores, t.contact_scores.c.contact_id == page.c.id)))
    return conn.execute(query.order_by(*SORTS[sort])).all()


def list_contacts(
    conn: Connection, config: LifecycleConfig, filters: ContactFilters, *, now: float,
    sort: str = "score", limit: int = 50, offset: int = 0, count_limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the contacts the filters keep, and how many they keep. ``count_limit``:
    count no further than this (a total of ``count_limit + 1`` then means "more").

    The count comes first. The page's ids are found next, then only their rows are read.
    When the filters keep many contacts, the page is first looked for among the first
    contacts in the sort's order (read from the sort's index): when the filters keep enough
    of them, no other contact is read. Else the filters choose the rows (by their indexes)."""
    h = config.engagement.half_life_seconds
    where = _conditions(config, filters, now=now)
    if sort not in SORTS:
        raise InvalidInput(f"sort by one of {', '.join(SORTS)}", field="sort")
    for name, value in (("limit", limit), ("offset", offset)):
        if not 0 <= value < 2**63:
            raise InvalidInput(f"{name} out of range", field=name)
    # The count joins the milestone asked for: its index finds them (a condition on each
    # contact would read every contact until enough had it).
    scored = filters.min_score is not None or filters.max_score is not None
    counted: Any = WITH_SCORES if scored else t.contacts
    if filters.milestone:
        m = t.milestones.c
        counted = counted.join(t.milestones, and_(m.contact_id == t.contacts.c.id,
                                                  m.key == filters.milestone))
    kept = select(t.contacts.c.id).select_from(counted).where(
        *_conditions(config, filters, now=now, with_milestone=False))
    if count_limit is not None:
        kept = kept.limit(count_limit + 1)
    total = int(conn.execute(select(func.count()).select_from(kept.subquery())).scalar() or 0)
    exact = count_limit is None or total <= count_limit
    if exact and offset >= total:
        return [], total
    owned = filters.visible_owners is not None or filters.owner_id is not None
    rows: Sequence[Any] | None = None
    by_index = total > FEW
    if where and total > FEW and not (owned and sort in ("score", "-score")):
        on_rank = _rank_conditions(config, filters, now=now)
        wanted = min(limit, total - offset) if exact else limit
        for size in WINDOWS:
            if size < (offset + limit) * WINDOW_PER_ROW:
                continue
            found = _rows_of(conn, _page(sort, where, limit, offset,
                                         _window(sort, on_rank, size)), sort)
            if len(found) == wanted:
                rows = found
                break
            by_index = False  # the filters keep few of the sort's first contacts
            if (offset + len(found)) * WINDOWS[-1] < (offset + wanted) * size:
                break  # as few in the largest window: not worth reading it
    if rows is None:
        rows = _rows_of(conn, _page(sort, where, limit, offset, owned=owned,
                                    by_index=by_index or not where), sort)
    return [_scored(r, now, h) for r in rows], total


def iter_contacts(
    conn: Connection, config: LifecycleConfig, filters: ContactFilters, *, now: float,
    sort: str = "score", batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every contact the filters keep, in the list's order, read in batches as they go
    (for exports: the caller keeps ``conn`` open while it iterates)."""
    h = config.engagement.half_life_seconds
    where = _conditions(config, filters, now=now)
    if sort not in SORTS:
        raise InvalidInput(f"sort by one of {', '.join(SORTS)}", field="sort")
    query = _listed(select().select_from(WITH_SCORES))
    if where:
        query = query.where(and_(*where))
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        query.order_by(*SORTS[sort]))
    for row in result:
        yield _scored(row, now, h)


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
