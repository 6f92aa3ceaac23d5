"""Funnel analytics in the database, set-based (SQLite and PostgreSQL): one statement per
figure, whatever the number of contacts. What each figure means is in domain/analytics.py.

Every statement starts from the *base*: one row per (contact, group) for the contacts the
caller sees — a contact is in several groups only in the content-maturity breakdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    case,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from leadflow.adapters.db import tables as t
from leadflow.domain.analytics import (
    MONDAY_EPOCH,
    SKIPS_NOTHING,
    WEEK,
    FunnelGroup,
    FunnelShape,
    SlaRow,
    StageTime,
    week_label,
)
from leadflow.domain.content import CONSUMING_EVENTS
from leadflow.domain.errors import InvalidInput

ALL = "all"
CONSUMED = "consumed"


def _owned(owners: tuple[int, ...] | None) -> Any:
    """The ids of the contacts these owners own (None: no restriction)."""
    return select(t.contacts.c.id).where(t.contacts.c.owner_id.in_(owners)) \
        if owners is not None else None


def _item_shapes() -> Any:
    """Event shapes that consume a content item, with the item's id and maturity."""
    s, ci = t.event_shapes.c, t.content_items.c
    return (select(s.id.label("shape_id"), ci.id.label("item_id"), ci.maturity)
            .select_from(t.event_shapes.join(
                t.content_items, or_(ci.path == s.url, ci.path + "/" == s.url)))
            .where(s.type.in_(CONSUMING_EVENTS))).subquery("item_shapes")


def _consumed(owners: tuple[int, ...] | None, item_id: int | None) -> Any:
    """Distinct (contact_id, maturity) consumed; for one item, the contacts that consumed
    it."""
    e = t.events.c
    shapes = _item_shapes()
    if item_id is not None:
        query = (select(e.contact_id).select_from(
            t.events.join(shapes, shapes.c.shape_id == e.shape_id))
            .where(shapes.c.item_id == item_id))
    else:
        query = select(e.contact_id, shapes.c.maturity).select_from(
            t.events.join(shapes, shapes.c.shape_id == e.shape_id))
    owned = _owned(owners)
    if owned is not None:
        query = query.where(e.contact_id.in_(owned))
    return query.distinct().subquery("consumed")


def _first_campaign(owners: tuple[int, ...] | None) -> Any:
    """Each contact's first campaign touch: the utm_campaign of its first event carrying
    one (by time, then event id)."""
    e, s = t.events.c, t.event_shapes.c
    touches = (select(e.contact_id, s.utm_campaign.label("campaign"),
                      func.row_number().over(partition_by=e.contact_id,
                                             order_by=(e.ts, e.id)).label("n"))
               .select_from(t.events.join(t.event_shapes, s.id == e.shape_id))
               .where(s.utm_campaign.is_not(None)))
    owned = _owned(owners)
    if owned is not None:
        touches = touches.where(e.contact_id.in_(owned))
    sub = touches.subquery("touches")
    return select(sub.c.contact_id, sub.c.campaign).where(sub.c.n == 1).subquery("first_touch")


def _month(conn: Connection, ts: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", func.to_timestamp(ts)), "YYYY-MM")
    return func.strftime("%Y-%m", ts, "unixepoch")


def base(conn: Connection, *, by: str | None, item_id: int | None = None,
         owners: tuple[int, ...] | None = None) -> Any:
    """(contact_id, grp, stage) of every contact the owners filter keeps, in its group(s)."""
    c = t.contacts.c
    mine = [c.owner_id.in_(owners)] if owners is not None else []
    query: Select[Any]
    if by is None:
        query = select(c.id.label("contact_id"), literal_column(f"'{ALL}'").label("grp"),
                       c.stage)
    elif by == "cohort-week":
        start = func.floor((c.created_at - MONDAY_EPOCH) / WEEK) * WEEK + MONDAY_EPOCH
        query = select(c.id.label("contact_id"), start.label("grp"), c.stage)
    elif by == "cohort-month":
        query = select(c.id.label("contact_id"), _month(conn, c.created_at).label("grp"),
                       c.stage)
    elif by in ("source", "persona"):
        query = select(c.id.label("contact_id"), c[by].label("grp"), c.stage)
    elif by == "campaign":
        first = _first_campaign(owners)
        query = (select(c.id.label("contact_id"), first.c.campaign.label("grp"), c.stage)
                 .select_from(t.contacts.outerjoin(first, first.c.contact_id == c.id)))
    elif by == "content" and item_id is not None:
        consumed = _consumed(owners, item_id)
        query = select(c.id.label("contact_id"),
                       case((c.id.in_(select(consumed.c.contact_id)),
                             literal_column(f"'{CONSUMED}'")), else_=null()).label("grp"),
                       c.stage)
    elif by == "content":
        consumed = _consumed(owners, None)
        some = (select(c.id.label("contact_id"), consumed.c.maturity.label("grp"), c.stage)
                .select_from(t.contacts.join(consumed, consumed.c.contact_id == c.id))
                .where(*mine))
        none = (select(c.id.label("contact_id"), null().label("grp"), c.stage)
                .where(~exists().where(consumed.c.contact_id == c.id), *mine))
        return union_all(some, none).subquery("base")
    else:
        raise InvalidInput(f"unknown breakdown {by!r}", field="by")
    return query.where(*mine).subquery("base")


def _label(by: str | None, value: Any) -> str | None:
    if value is None:
        return None
    if by == "cohort-week":
        return week_label(float(value))
    return str(value)


def _sort(by: str | None, rows: list[Any]) -> list[Any]:
    """Cohorts in time order; other groups largest first; None last."""
    if by in ("cohort-week", "cohort-month"):
        return sorted(rows, key=lambda r: (r[0] is None, r[0] or 0))
    return sorted(rows, key=lambda r: (-int(r[1]), r[0] is None, str(r[0])))


class SqlAnalyticsReads:
    """The analytics read models on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def item_id(self, *, key: str) -> int | None:
        return self.conn.execute(select(t.content_items.c.id).where(
            t.content_items.c.key == key)).scalar()

    def funnel_groups(self, *, shape: FunnelShape, stages: Sequence[str], by: str | None,
                      item_id: int | None = None, owners: tuple[int, ...] | None = None
                      ) -> list[FunnelGroup]:
        """Counts per group: contacts, per stage now, reached and strict per main stage,
        backward moves, deals won/lost/open."""
        sc = t.stage_changes.c
        ranks = {k: i for i, k in enumerate(shape.main)}
        to_rank = case(ranks, value=sc.to_stage, else_=-1)
        from_rank = case((sc.from_stage.is_(None), 0),
                         else_=case(ranks, value=sc.from_stage, else_=SKIPS_NOTHING))
        excluded = sc.to_stage.in_(shape.excluded)
        backward = and_(sc.kind == "backward", ~excluded)
        per_cols: list[Any] = [sc.contact_id, func.max(to_rank).label("reach")]
        pairs = max(0, len(shape.main) - 1)
        for i in range(pairs):
            per_cols.append(func.max(case((and_(from_rank <= i, to_rank >= i + 1), 1),
                                          else_=0)).label(f"s{i}"))
        per_cols += [
            func.sum(case((and_(backward, sc.to_stage.in_(shape.interest)), 1), else_=0))
            .label("recycles"),
            func.sum(case((excluded, 1), else_=0)).label("disq"),
            func.sum(case((and_(backward, sc.to_stage.not_in(shape.interest)), 1), else_=0))
            .label("back"),
        ]
        per_q = select(*per_cols).group_by(sc.contact_id)
        owned = _owned(owners)
        if owned is not None:
            per_q = per_q.where(sc.contact_id.in_(owned))
        per = per_q.subquery("per")
        o = t.opportunities.c
        deals_q = select(o.contact_id,
                         func.sum(case((o.status == "won", 1), else_=0)).label("won"),
                         func.sum(case((o.status == "lost", 1), else_=0)).label("lost"),
                         func.sum(case((o.status == "open", 1), else_=0)).label("open")
                         ).group_by(o.contact_id)
        if owned is not None:
            deals_q = deals_q.where(o.contact_id.in_(owned))
        deals = deals_q.subquery("deals")
        b = base(self.conn, by=by, item_id=item_id, owners=owners)

        def total(expr: Any) -> Any:
            return func.coalesce(func.sum(expr), 0)

        def count_if(cond: Any) -> Any:
            return total(case((cond, 1), else_=0))

        cols: list[Any] = [b.c.grp, func.count()]
        cols += [count_if(b.c.stage == key) for key in stages]
        cols += [count_if(per.c.reach >= i) for i in range(len(shape.main))]
        cols += [total(per.c[f"s{i}"]) for i in range(pairs)]
        cols += [total(per.c.recycles), total(per.c.disq), total(per.c.back),
                 count_if(per.c.recycles > 0), count_if(per.c.disq > 0),
                 total(deals.c.won), total(deals.c.lost), total(deals.c.open)]
        query = (select(*cols)
                 .select_from(b.outerjoin(per, per.c.contact_id == b.c.contact_id)
                              .outerjoin(deals, deals.c.contact_id == b.c.contact_id))
                 .group_by(b.c.grp))
        out = []
        n_st, n_main = len(stages), len(shape.main)
        for row in _sort(by, [tuple(r) for r in self.conn.execute(query)]):
            values = [int(v) for v in row[1:]]
            at = 1
            current = dict(zip(stages, values[at:at + n_st], strict=True))
            at += n_st
            reached = tuple(values[at:at + n_main])
            at += n_main
            strict = tuple(values[at:at + pairs])
            at += pairs
            (recycles, disq, back, recycled, disqualified, won, lost,
             open_) = values[at:at + 8]
            out.append(FunnelGroup(
                group=_label(by, row[0]), contacts=values[0], current=current,
                reached=reached, strict=strict, recycles=recycles, disqualifications=disq,
                other_backward=back, recycled_contacts=recycled,
                disqualified_contacts=disqualified, deals_won=won, deals_lost=lost,
                deals_open=open_))
        return out

    def stage_times(self, *, by: str | None, item_id: int | None = None,
                    owners: tuple[int, ...] | None = None) -> list[StageTime]:
        """Per group and stage: stays ended, still in, nearest-rank median and p90 (s)."""
        sc = t.stage_changes.c
        stays_q = select(sc.contact_id, sc.to_stage.label("stage"), sc.at,
                         func.lead(sc.at).over(partition_by=sc.contact_id,
                                               order_by=(sc.at, sc.id)).label("next_at"))
        owned = _owned(owners)
        if owned is not None:
            stays_q = stays_q.where(sc.contact_id.in_(owned))
        st = stays_q.subquery("stays")
        b = base(self.conn, by=by, item_id=item_id, owners=owners)
        d = (select(b.c.grp, st.c.stage, (st.c.next_at - st.c.at).label("dur"))
             .select_from(st.join(b, b.c.contact_id == st.c.contact_id))).subquery("d")
        part = (d.c.grp, d.c.stage)
        ranked = select(
            d.c.grp, d.c.stage, d.c.dur,
            func.row_number().over(partition_by=part,
                                   order_by=d.c.dur.asc().nulls_last()).label("rn"),
            func.count(d.c.dur).over(partition_by=part).label("n")).subquery("ranked")
        r = ranked.c
        query = select(
            r.grp, r.stage, func.max(r.n),
            func.sum(case((r.dur.is_(None), 1), else_=0)),
            func.min(case((and_(r.dur.is_not(None), r.rn == (r.n + 1) // 2), r.dur))),
            func.min(case((and_(r.dur.is_not(None), r.rn == (9 * r.n + 9) // 10), r.dur))),
        ).group_by(r.grp, r.stage)
        rows = [tuple(x) for x in self.conn.execute(query)]
        return [StageTime(group=_label(by, g), stage=str(stage), left=int(n or 0),
                          still_in=int(still or 0),
                          median=float(med) if med is not None else None,
                          p90=float(p90) if p90 is not None else None)
                for g, stage, n, still, med, p90 in rows]

    def sla(self, *, now: float, owners: tuple[int, ...] | None = None) -> list[SlaRow]:
        """Per task owner: done on time, done late, open and overdue, open not due yet."""
        k, u = t.tasks.c, t.users.c

        def count_if(cond: Any) -> Any:
            return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

        query = (select(k.owner_id, u.name, u.email,
                        count_if(and_(k.done_at.is_not(None), k.done_at <= k.due_at)),
                        count_if(k.done_at > k.due_at),
                        count_if(and_(k.done_at.is_(None), k.due_at < now)),
                        count_if(and_(k.done_at.is_(None), k.due_at >= now)))
                 .select_from(t.tasks.outerjoin(t.users, u.id == k.owner_id))
                 .group_by(k.owner_id, u.name, u.email).order_by(k.owner_id))
        if owners is not None:
            query = query.where(k.owner_id.in_(owners))
        return [SlaRow(owner_id=int(oid), name=name, email=email, on_time=int(a),
                       late=int(b), overdue=int(c), pending=int(d))
                for oid, name, email, a, b, c, d in self.conn.execute(query)]
