"""Attribution's reads (SQLite and PostgreSQL): the converting contacts — customers and
contacts with open or won deals — and their touches, set-based, three statements whatever
the number of contacts. The credit is shared out in ``domain.attribution`` (per converting
contact: a few in any base)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, union

from leadflow.adapters.db import tables as t
from leadflow.domain.attribution import Converting, Touch
from leadflow.domain.content import CONSUMING_EVENTS


class SqlAttributionReads:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def converting(self, *, won_stages: Sequence[str],
                   owners: tuple[int, ...] | None = None) -> list[Converting]:
        sc, o, c = t.stage_changes.c, t.opportunities.c, t.contacts.c
        e, s, ci = t.events.c, t.event_shapes.c, t.content_items.c
        owned = select(c.id).where(c.owner_id.in_(owners)) if owners is not None else None

        def mine(column: Any) -> list[Any]:
            return [column.in_(owned)] if owned is not None else []

        won_q = (select(sc.contact_id, func.min(sc.at))
                 .where(sc.to_stage.in_(list(won_stages)), *mine(sc.contact_id))
                 .group_by(sc.contact_id))
        deals_q = (select(o.contact_id, o.currency, func.sum(o.amount), func.min(o.created_at))
                   .where(o.status.in_(("open", "won")), *mine(o.contact_id))
                   .group_by(o.contact_id, o.currency))
        customer_at = {int(cid): float(at) for cid, at in self.conn.execute(won_q)}
        pipeline: dict[int, dict[str, float]] = {}
        pipeline_at: dict[int, float] = {}
        for cid, cur, amount, first in self.conn.execute(deals_q):
            pipeline.setdefault(int(cid), {})[str(cur)] = float(amount or 0)
            pipeline_at[int(cid)] = min(float(first), pipeline_at.get(int(cid), float(first)))
        if not customer_at and not pipeline:
            return []
        ids = union(select(won_q.subquery().c.contact_id),
                    select(deals_q.subquery().c.contact_id)).subquery("ids")
        consumed = (select(s.id.label("shape_id"), func.min(ci.key).label("item"))
                    .select_from(t.event_shapes.join(
                        t.content_items, or_(ci.path == s.url, ci.path + "/" == s.url)))
                    .where(s.type.in_(CONSUMING_EVENTS)).group_by(s.id).subquery("consumed"))
        touches_q = (select(e.contact_id, e.ts, e.id, s.utm_source, s.utm_campaign,
                            consumed.c.item)
                     .select_from(t.events.join(t.event_shapes, s.id == e.shape_id)
                                  .outerjoin(consumed, consumed.c.shape_id == e.shape_id))
                     .where(e.contact_id.in_(select(ids.c.contact_id)),
                            or_(s.utm_source.is_not(None), s.utm_campaign.is_not(None),
                                consumed.c.item.is_not(None))))
        touches: dict[int, list[Touch]] = {}
        for cid, ts, eid, source, campaign, item in self.conn.execute(touches_q):
            touches.setdefault(int(cid), []).append(Touch(
                ts=float(ts), seq=int(eid), source=source, campaign=campaign, content=item))
        own_q = select(c.id, c.source, c.created_at).where(
            and_(c.id.in_(select(ids.c.contact_id)), c.source.is_not(None)))
        for cid, source, created in self.conn.execute(own_q):
            mine_ = touches.setdefault(int(cid), [])
            if not any(x.source is not None for x in mine_):
                mine_.append(Touch(ts=float(created), seq=0, source=source))
        return [Converting(contact_id=cid, touches=tuple(touches.get(cid, ())),
                           customer_at=customer_at.get(cid), pipeline_at=pipeline_at.get(cid),
                           pipeline=pipeline.get(cid, {}))
                for cid in sorted(customer_at.keys() | pipeline.keys())]
