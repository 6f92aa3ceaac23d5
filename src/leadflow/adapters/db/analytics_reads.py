"""Funnel analytics in the database, set-based (SQLite and PostgreSQL): one statement per
figure, whatever the number of contacts. What each figure means is in domain/analytics.py.

Every statement starts from the *base*: one row per (contact, group) for the contacts the
caller sees — a contact is in several groups only in the content-maturity breakdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
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


def _within(column: Any, owners: tuple[int, ...] | None) -> list[Any]:
    """A condition keeping a contact id column to the owners' contacts, if any."""
    owned = _owned(owners)
    return [column.in_(owned)] if owned is not None else []


def _item_shapes(item_id: int | None) -> Any:
    """Event shapes that consume a content item (one item: that item), with the item's
    maturity: a few rows, worked out first (OFFSET 0), so that the events are read once
    and looked up in them, never the other way round."""
    s, ci = t.event_shapes.c, t.content_items.c
    query = (select(s.id.label("shape_id"), ci.maturity)
             .select_from(t.event_shapes.join(
                 t.content_items, or_(ci.path == s.url, ci.path + "/" == s.url)))
             .where(s.type.in_(CONSUMING_EVENTS)))
    if item_id is not None:
        query = query.where(ci.id == item_id)
    return query.offset(0)


def _consumed(owners: tuple[int, ...] | None, item_id: int | None) -> Any:
    """Distinct (contact_id, maturity) consumed; for one item, the contacts that consumed
    it."""
    e = t.events.c
    shapes = _item_shapes(item_id).subquery("item_shapes")
    wanted = [e.shape_id.in_(select(_item_shapes(item_id).subquery().c.shape_id)),
              *_within(e.contact_id, owners)]
    if item_id is not None:
        query = select(e.contact_id).where(*wanted)
    else:
        query = (select(e.contact_id, shapes.c.maturity)
                 .select_from(t.events.join(shapes, shapes.c.shape_id == e.shape_id))
                 .where(*wanted))
    return query.distinct().subquery("consumed")


def _first_campaign(owners: tuple[int, ...] | None) -> Any:
    """Each contact's first campaign touch: the utm_campaign of its first event carrying
    one (by time, then event id)."""
    e, s = t.events.c, t.event_shapes.c
    touches = (select(e.contact_id, s.utm_campaign.label("campaign"),
                      func.row_number().over(partition_by=e.contact_id,
                                             order_by=(e.ts, e.id)).label("n"))
               .select_from(t.events.join(t.event_shapes, s.id == e.shape_id))
               .where(s.utm_campaign.is_not(None), *_within(e.contact_id, owners)))
    sub = touches.subquery("touches")
    return select(sub.c.contact_id, sub.c.campaign).where(sub.c.n == 1).subquery("first_touch")


def _floor(conn: Connection, value: Any) -> Any:
    """floor() without SQLite's optional math functions."""
    if conn.dialect.name == "postgresql":
        return func.floor(value)
    whole = cast(value, Integer)  # toward zero
    return whole - case((value < whole, 1), else_=0)


def _month(conn: Connection, ts: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", func.to_timestamp(ts)), "YYYY-MM")
    return func.strftime("%Y-%m", ts, "unixepoch")


def base(conn: Connection, *, by: str | None, item_id: int | None = None,
         owners: tuple[int, ...] | None = None, cte: bool = False) -> Any:
    """(contact_id, grp, stage) of every contact the owners filter keeps, in its group(s)
    (as a CTE, ``cte``: what a statement reads several times)."""
    c = t.contacts.c
    mine = [c.owner_id.in_(owners)] if owners is not None else []
    query: Select[Any]
    if by is None:
        query = select(c.id.label("contact_id"), literal_column(f"'{ALL}'").label("grp"),
                       c.stage)
    elif by == "cohort-week":
        start = _floor(conn, (c.created_at - MONDAY_EPOCH) / WEEK) * WEEK + MONDAY_EPOCH
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
    elif by == "content":
        # A contact with k maturities consumed is in k groups; one with none in None.
        consumed = _consumed(owners, item_id)
        grp = consumed.c.maturity if item_id is None else case(
            (consumed.c.contact_id.is_not(None), literal_column(f"'{CONSUMED}'")),
            else_=null())
        query = (select(c.id.label("contact_id"), grp.label("grp"), c.stage)
                 .select_from(t.contacts.outerjoin(consumed, consumed.c.contact_id == c.id)))
    else:
        raise InvalidInput(f"unknown breakdown {by!r}", field="by")
    kept = query.where(*mine)
    return kept.cte("base") if cte else kept.subquery("base")


def _total(expr: Any) -> Any:
    return func.coalesce(func.sum(expr), 0)


def _count_if(cond: Any) -> Any:
    return _total(case((cond, 1), else_=0))


BITS = 15  # per pair of stages in a contact's coverage code (up to 32767 passes each)


def _per_contact(shape: FunnelShape, owners: tuple[int, ...] | None) -> Any:
    """(contact_id, reach, cov): the highest main rank each contact reached, and how many of
    its stage changes passed from main stage i to i + 1 — in bits [15 i, 15 i + 15) of
    ``cov``, the sum over its changes of Σ 2^(15 i) for from_rank <= i < to_rank, which is
    (2^(15 to) - 2^(15 from)) / (2^15 - 1). Two aggregates over the changes instead of one per
    pair: a million contacts' changes cost a third of the time. With more main stages than
    that holds, bit i of ``cov`` says whether some change passed from i to i + 1."""
    sc = t.stage_changes.c
    ranks = {k: i for i, k in enumerate(shape.main)}
    to_rank = case(ranks, value=sc.to_stage, else_=-1)
    from_rank = case((sc.from_stage.is_(None), 0),
                     else_=case(ranks, value=sc.from_stage, else_=SKIPS_NOTHING))
    ranked_q = select(sc.contact_id, to_rank.label("t"), from_rank.label("f"))
    owned = _owned(owners)
    if owned is not None:
        ranked_q = ranked_q.where(sc.contact_id.in_(owned))
    # OFFSET 0 keeps the subquery whole: each rank is computed once per change, not once
    # per use (SQLite and PostgreSQL would otherwise copy the CASE into every use).
    ranked = ranked_q.offset(0).subquery("ranked")
    r = ranked.c
    pairs = max(0, len(shape.main) - 1)
    if _coded(pairs):
        one = cast(literal(1), BigInteger)
        bits = literal_column(str(BITS), Integer)
        code = case((r.f < r.t, (one.op("<<")(bits * r.t) - one.op("<<")(bits * r.f))
                     // literal_column(str((1 << BITS) - 1), BigInteger)), else_=0)
        cov = cast(func.sum(code), BigInteger)
    else:
        flags = [func.max(case((and_(r.f <= i, r.t >= i + 1), 1 << i), else_=0))
                 for i in range(pairs)]
        cov = cast(sum(flags[1:], flags[0]), BigInteger) if flags else \
            cast(literal(0), BigInteger)
    return (select(r.contact_id, func.max(r.t).label("reach"), cov.label("cov"))
            .group_by(r.contact_id).cte("per"))


def _moves(shape: FunnelShape, owners: tuple[int, ...] | None) -> Any:
    """(contact_id, rc, dq, bk): the recycles, disqualifications and other moves back of each
    contact that made any (read from those few changes only)."""
    sc = t.stage_changes.c
    excluded = sc.to_stage.in_(shape.excluded)
    backward = and_(sc.kind == "backward", ~excluded)
    return (select(sc.contact_id,
                   _total(case((and_(backward, sc.to_stage.in_(shape.interest)), 1),
                               else_=0)).label("rc"),
                   _total(case((excluded, 1), else_=0)).label("dq"),
                   _total(case((and_(backward, sc.to_stage.not_in(shape.interest)), 1),
                               else_=0)).label("bk"))
            .where(or_(sc.kind == "backward", excluded), *_within(sc.contact_id, owners))
            .group_by(sc.contact_id).subquery("moves"))


def _coded(pairs: int) -> bool:
    return pairs * BITS <= 62


def _passed(cov: Any, i: int, pairs: int) -> bool:
    """Whether a contact's ``cov`` counts a pass from main stage i to i + 1."""
    if _coded(pairs):
        return bool((int(cov or 0) >> (BITS * i)) & ((1 << BITS) - 1))
    return bool((int(cov or 0) >> i) & 1)


def _label(by: str | None, value: Any) -> str | None:
    if value is None:
        return None
    if by == "cohort-week":
        return week_label(float(value))
    return str(value)


def _order(by: str | None, groups: dict[Any, dict[str, Any]]) -> list[Any]:
    """Cohorts in time order; other groups largest first; None last."""
    if by in ("cohort-week", "cohort-month"):
        return sorted(groups, key=lambda g: (g is None, g or 0))
    return sorted(groups, key=lambda g: (-groups[g]["contacts"], g is None, str(g)))

class SqlAnalyticsReads:
    """The analytics read models on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _tune(self) -> None:
        """On PostgreSQL, for this transaction: no JIT (compiling these few big statements
        took seconds of each on the 1M demo) and room to aggregate a million contacts in
        memory instead of spilling to disk."""
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql("SET LOCAL jit = off")
            self.conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")

    def item_id(self, *, key: str) -> int | None:
        return self.conn.execute(select(t.content_items.c.id).where(
            t.content_items.c.key == key)).scalar()

    def funnel_groups(self, *, shape: FunnelShape, stages: Sequence[str], by: str | None,
                      item_id: int | None = None, owners: tuple[int, ...] | None = None
                      ) -> list[FunnelGroup]:
        """Counts per group: contacts, per stage now, reached and strict per main stage,
        backward moves, deals won/lost/open.

        One statement, so that the contacts' groups (which may read every event: campaign,
        content) are worked out once: three counts of combinations, a few thousand rows in
        all, folded here — the contacts by (group, stage now, reach, passes), the deals by
        (group, status), the contacts that moved back by (group, their recycles,
        disqualifications and other moves back)."""
        self._tune()
        pairs = max(0, len(shape.main) - 1)
        per = _per_contact(shape, owners)
        b = base(self.conn, by=by, item_id=item_id, owners=owners, cte=True)
        moves = _moves(shape, owners)
        o = t.opportunities.c
        big = BigInteger

        def no(kind: Any = big) -> Any:
            return cast(null(), kind)

        contacts_q = (select(literal_column("'c'").label("part"), b.c.grp,
                             b.c.stage.label("k"), cast(per.c.reach, big).label("x"),
                             per.c.cov.label("y"), no().label("z"), func.count().label("n"))
                      .select_from(b.outerjoin(per, per.c.contact_id == b.c.contact_id))
                      .group_by(b.c.grp, b.c.stage, per.c.reach, per.c.cov))
        deals_q = (select(literal_column("'d'"), b.c.grp, o.status, no(), no(), no(),
                          func.count())
                   .select_from(t.opportunities.join(b, b.c.contact_id == o.contact_id))
                   .group_by(b.c.grp, o.status))
        m = moves.c
        moves_q = (select(literal_column("'m'"), b.c.grp, no(String), cast(m.rc, big),
                          cast(m.dq, big), cast(m.bk, big), func.count())
                   .select_from(moves.join(b, b.c.contact_id == m.contact_id))
                   .group_by(b.c.grp, m.rc, m.dq, m.bk))
        folded: dict[Any, dict[str, Any]] = {}

        def group(grp: Any) -> dict[str, Any]:
            return folded.setdefault(grp, {
                "contacts": 0, "current": dict.fromkeys(stages, 0),
                "reached": [0] * len(shape.main), "strict": [0] * pairs, "deals": {},
                "moves": [0, 0, 0, 0, 0]})

        for part, grp, k, x, y, z, n in self.conn.execute(
                union_all(contacts_q, deals_q, moves_q)):
            f, n = group(grp), int(n)
            if part == "c":
                f["contacts"] += n
                if k in f["current"]:
                    f["current"][k] += n
                for i in range(int(x) + 1 if x is not None else 0):
                    f["reached"][i] += n
                for i in range(pairs):
                    if _passed(y, i, pairs):
                        f["strict"][i] += n
            elif part == "d":
                f["deals"][k] = f["deals"].get(k, 0) + n
            else:
                rc, dq, bk = int(x), int(y), int(z)
                f["moves"] = [a + d for a, d in zip(f["moves"], (
                    rc * n, dq * n, bk * n, n if rc else 0, n if dq else 0), strict=True)]
        out = []
        for grp in _order(by, {g: f for g, f in folded.items() if f["contacts"]}):
            f = folded[grp]
            recycles, disq, back, recycled, disqualified = f["moves"]
            out.append(FunnelGroup(
                group=_label(by, grp), contacts=f["contacts"], current=f["current"],
                reached=tuple(f["reached"]), strict=tuple(f["strict"]), recycles=recycles,
                disqualifications=disq, other_backward=back, recycled_contacts=recycled,
                disqualified_contacts=disqualified, deals_won=f["deals"].get("won", 0),
                deals_lost=f["deals"].get("lost", 0), deals_open=f["deals"].get("open", 0)))
        return out

    def stage_times(self, *, by: str | None, item_id: int | None = None,
                    owners: tuple[int, ...] | None = None) -> list[StageTime]:
        """Per group and stage: stays ended, still in, nearest-rank median and p90 (s)."""
        self._tune()
        sc = t.stage_changes.c
        dur = func.lead(sc.at).over(partition_by=sc.contact_id,
                                    order_by=(sc.at, sc.id)) - sc.at
        stays_q = select(sc.contact_id, sc.to_stage.label("stage"), dur.label("dur"))
        owned = _owned(owners)
        if owned is not None:
            stays_q = stays_q.where(sc.contact_id.in_(owned))
        st = stays_q.subquery("stays")
        if by is None:  # one group: no need to look the contacts up
            d = select(literal_column(f"'{ALL}'").label("grp"), st.c.stage,
                       st.c.dur).subquery("d")
        else:
            b = base(self.conn, by=by, item_id=item_id, owners=owners)
            d = (select(b.c.grp, st.c.stage, st.c.dur)
                 .select_from(st.join(b, b.c.contact_id == st.c.contact_id))).subquery("d")
        if self.conn.dialect.name == "postgresql":
            query = self._percentiles_pg(d)
        else:
            query = self._percentiles_ranked(d)
        found: dict[tuple[Any, str], list[Any]] = {}
        for g, stage, n, still, med, p90 in self.conn.execute(query):
            row = found.setdefault((g, stage), [int(n or 0), int(still or 0), None, None])
            row[2] = med if med is not None else row[2]
            row[3] = p90 if p90 is not None else row[3]
        return [StageTime(group=_label(by, g), stage=str(stage), left=n, still_in=still,
                          median=float(med) if med is not None else None,
                          p90=float(p90) if p90 is not None else None)
                for (g, stage), (n, still, med, p90) in found.items()]

    @staticmethod
    def _percentiles_ranked(d: Any) -> Any:
        """The ⌈n/2⌉-th and ⌈9n/10⌉-th durations by their rank: one sort, and only the
        rows at those ranks (and each group's first) come out."""
        part = (d.c.grp, d.c.stage)
        order = d.c.dur.asc().nulls_last()
        whole = (None, None)  # the same window, whole partition: no second sort
        ranked = select(
            d.c.grp, d.c.stage, d.c.dur,
            func.row_number().over(partition_by=part, order_by=order).label("rn"),
            func.count(d.c.dur).over(partition_by=part, order_by=order,
                                     rows=whole).label("n"),
            func.count().over(partition_by=part, order_by=order, rows=whole).label("m"),
        ).subquery("ranked")
        r = ranked.c
        median, p90 = (r.n + 1) // 2, (9 * r.n + 9) // 10
        return select(
            r.grp, r.stage, r.n, r.m - r.n,
            case((and_(r.dur.is_not(None), r.rn == median), r.dur)),
            case((and_(r.dur.is_not(None), r.rn == p90), r.dur)),
        ).where(or_(r.rn == 1, r.rn == median, r.rn == p90))

    @staticmethod
    def _percentiles_pg(d: Any) -> Any:
        """PostgreSQL's ordered-set aggregate, three times faster than ranking there: the
        ⌈p·n⌉-th value (p·n in floating point, which is exact for 0.5 and 0.9: 0.9 is stored
        a hair above, and the product rounds back to the integer when there is one)."""
        def nth(share: float) -> Any:
            return func.percentile_disc(literal_column(repr(share))).within_group(d.c.dur)
        return select(d.c.grp, d.c.stage, func.count(d.c.dur),
                      func.count() - func.count(d.c.dur), nth(0.5), nth(0.9)
                      ).group_by(d.c.grp, d.c.stage)

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
