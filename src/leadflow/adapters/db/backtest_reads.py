"""A backtest's reads (SQLite and PostgreSQL): every contact's recorded history — identity,
account, events in time order, when it became a customer, its moves back, when it passed
qualification — streamed a slice of contacts at a time, five statements a slice."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, or_, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.engine import make_engine
from leadflow.adapters.db.mapping import CONTACT_SCALARS, account_from_row, shape_from_row
from leadflow.domain.backtest import History
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Contact, FitResult

R = TypeVar("R")
SLICE = 2000
# From this many contacts a backtest replays in two worker processes, a range of ids each time.
PARALLEL_FROM = 50_000
RANGE = 20_000
_engines: dict[str, Engine] = {}  # per worker process, by URL
IMPORTED = "import:"  # the actor of the stage changes an import makes (import:<mapping>)
# What a replay reads of a contact: who it is (for fit under a candidate's personas), its
# stored fit, whether it passed qualification and its latest recycle. Not its scores or
# signals: the replay rebuilds them from the events.
_c = t.contacts.c
CONTACT_COLUMNS = select(_c.id, *(_c[name] for name in CONTACT_SCALARS), _c.fit_score,
                         _c.fit_grade, _c.persona, _c.excluded_by, _c.qualification_passed,
                         _c.qualification)


def _replay_range(url: str, low: int, high: int, scope: dict[str, Any],
                  work: Callable[[list[History]], R]) -> list[tuple[int, R]]:
    """In a worker process: ``work`` on the slices of contacts ``low`` to ``high``."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    with engine.connect() as conn:
        return [(len(histories), work(histories)) for histories in SqlBacktestReads(
            conn).histories(**scope, first=low, last=high)]


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
    def __init__(self, conn: Connection, *, parallel_from: int = PARALLEL_FROM) -> None:
        self.conn = conn
        self.parallel_from = parallel_from
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

    def replayed(self, work: Callable[[list[History]], R], *, won_stages: Sequence[str],
                 skip_stages: Sequence[str], created_before: float | None
                 ) -> Iterator[tuple[int, R]]:
        """``work`` on each slice of histories, with the number of contacts in it: in this
        process, or, from ``parallel_from`` contacts on, in two worker processes that each
        read and replay ranges of ids (``work`` must pickle)."""
        if self.count(skip_stages=skip_stages, created_before=created_before) \
                < self.parallel_from:
            for histories in self.histories(won_stages=won_stages, skip_stages=skip_stages,
                                            created_before=created_before):
                yield len(histories), work(histories)
            return
        scope = {"won_stages": won_stages, "skip_stages": skip_stages,
                 "created_before": created_before}
        ids = self._ids(skip_stages=skip_stages, created_before=created_before)
        url = self.conn.engine.url.render_as_string(hide_password=False)
        bounds = [(ids[i], ids[min(i + RANGE, len(ids)) - 1])
                  for i in range(0, len(ids), RANGE)]
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_replay_range, url, low, high, scope, work)
                       for low, high in bounds]
            for future in futures:
                yield from future.result()

    def _ids(self, *, skip_stages: Sequence[str], created_before: float | None) -> list[int]:
        c = t.contacts.c
        return [int(i) for i in self.conn.execute(self._scope(
            select(c.id), skip_stages=skip_stages, created_before=created_before
        ).order_by(c.id)).scalars()]

    def histories(self, *, won_stages: Sequence[str], skip_stages: Sequence[str],
                  created_before: float | None, slice_size: int = SLICE,
                  first: int = 1, last: int | None = None) -> Iterator[list[History]]:
        """Slices of contacts (by id, from ``first`` to ``last``) with their recorded
        histories."""
        c, sc, e = t.contacts.c, t.stage_changes.c, t.events.c
        after = first - 1
        while True:
            query = select(c.id).where(c.id > after)
            if last is not None:
                query = query.where(c.id <= last)
            ids = [int(i) for i in self.conn.execute(self._scope(
                query, skip_stages=skip_stages,
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
