"""A backtest's reads (SQLite and PostgreSQL): every contact's recorded history — identity,
account, events in time order, when it became a customer, its moves back, when it passed
qualification — streamed a slice of contacts at a time, five statements a slice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, func, or_, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.mapping import CONTACT_SCALARS, account_from_row, shape_from_row
from leadflow.domain.backtest import History
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Contact, FitResult

SLICE = 2000
IMPORTED = "import:"  # the actor of the stage changes an import makes (import:<mapping>)
# What a replay reads of a contact: who it is (for fit under a candidate's personas), its
# stored fit, whether it passed qualification and its latest recycle. Not its scores or
# signals: the replay rebuilds them from the events.
_c = t.contacts.c
CONTACT_COLUMNS = select(_c.id, *(_c[name] for name in CONTACT_SCALARS), _c.fit_score,
                         _c.fit_grade, _c.persona, _c.excluded_by, _c.qualification_passed,
                         _c.qualification)


def _qualified_at(row: Any) -> float | None:
    """When the contact passed qualification (its creation, if that time was not kept)."""
    if not row.qualification_passed:
        return None
    at = (row.qualification or {}).get("at")
    return float(at) if at is not None else float(row.created_at)


def _contact(row: Any) -> Contact:
    m = row._mapping
    return Contact(id=m["id"], **{c: m[c] for c in CONTACT_SCALARS},
                   fit=FitResult(score=m["fit_score"], grade=m["fit_grade"],
                                 persona=m["persona"], excluded_by=m["excluded_by"]))


class SqlBacktestReads:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._shapes: dict[int, EventShape] | None = None

    def _scope(self, query: Any, *, skip_stages: Sequence[str], created_before: float | None
               ) -> Any:
        c = t.contacts.c
        if skip_stages:
            query = query.where(c.stage.not_in(list(skip_stages)))
        if created_before is not None:
            query = query.where(c.created_at < created_before)
        return query

    def count(self, *, skip_stages: Sequence[str], created_before: float | None) -> int:
        query = self._scope(select(func.count()).select_from(t.contacts),
                            skip_stages=skip_stages, created_before=created_before)
        return int(self.conn.execute(query).scalar() or 0)

    def shapes(self) -> dict[int, EventShape]:
        if self._shapes is None:
            self._shapes = {r.id: shape_from_row(r)
                            for r in self.conn.execute(select(t.event_shapes))}
        return self._shapes

    def histories(self, *, won_stages: Sequence[str], skip_stages: Sequence[str],
                  created_before: float | None, slice_size: int = SLICE
                  ) -> Iterator[list[History]]:
        """Slices of contacts (by id) with their recorded histories."""
        c, sc, e = t.contacts.c, t.stage_changes.c, t.events.c
        after = 0
        while True:
            ids = [int(i) for i in self.conn.execute(self._scope(
                select(c.id).where(c.id > after), skip_stages=skip_stages,
                created_before=created_before).order_by(c.id).limit(slice_size)).scalars()]
            if not ids:
                return
            after = ids[-1]
            rows = {r.id: r for r in self.conn.execute(CONTACT_COLUMNS.where(c.id.in_(ids)))}
            account_ids = {r.account_id for r in rows.values() if r.account_id is not None}
            accounts = {r.id: account_from_row(r) for r in self.conn.execute(
                select(t.accounts).where(t.accounts.c.id.in_(account_ids)))
            } if account_ids else {}
            converted: dict[int, float] = {}
            recycles: dict[int, list[float]] = {}
            born_customers: set[int] = set()
            for cid, to_stage, actor, kind, at in self.conn.execute(
                    select(sc.contact_id, sc.to_stage, sc.actor, sc.kind, sc.at)
                    .where(sc.contact_id.in_(ids),
                           or_(sc.to_stage.in_(list(won_stages)), sc.kind == "backward"))
                    .order_by(sc.contact_id, sc.at, sc.id)):
                if kind == "backward":
                    recycles.setdefault(cid, []).append(float(at))
                elif to_stage in won_stages and cid not in converted:
                    converted[cid] = float(at)
                    if actor.startswith(IMPORTED):
                        born_customers.add(cid)
            events: dict[int, list[tuple[float, EventShape]]] = {i: [] for i in ids}
            shapes = self.shapes()
            for cid, ts, shape_id in self.conn.execute(
                    select(e.contact_id, e.ts, e.shape_id).where(e.contact_id.in_(ids))
                    .order_by(e.contact_id, e.ts, e.id)).all():
                shape = shapes.get(shape_id)
                if shape is None:  # recorded since the shapes were read
                    self._shapes = None
                    shapes = self.shapes()
                    shape = shapes[shape_id]
                events[cid].append((float(ts), shape))
            yield [History(contact=_contact(rows[cid]), events=events[cid],
                           converted_at=converted.get(cid),
                           account=accounts.get(rows[cid].account_id),
                           recycles=tuple(recycles.get(cid, ())),
                           qualified_at=_qualified_at(rows[cid]),
                           created_as_customer=cid in born_customers)
                   for cid in ids if cid in rows]
