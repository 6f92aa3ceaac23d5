"""The rescore's reads of a range of events: PostgreSQL's packed form (a row of arrays per
block of contacts) gives exactly the rows a plain SELECT gives, in (contact, time) order."""

from __future__ import annotations

import struct

import numpy as np
import polars as pl
import psycopg
import pytest
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_scoring import (
    PolarsBulkScoring,
    connectorx_uri,
    read_events_packed,
    unpack_array,
)
from leadflow.bootstrap import App
from leadflow.services.events import EventIn, record_event
from tests.conftest import FakeClock, good_fit_contact

KINDS = [("page_view", "/pricing"), ("content_download", "/guide"), ("demo_request", "/demo")]


def _plain(app: App, low: int, high: int, watermark: int) -> pl.DataFrame:
    e = t.events.c
    with app.engine.connect() as conn:
        rows = conn.execute(select(e.contact_id, e.ts, e.shape_id).where(
            e.contact_id >= low, e.contact_id < high, e.id <= watermark)).all()
    return pl.DataFrame([tuple(r) for r in rows], orient="row", schema={
        "contact_id": pl.Int64, "ts": pl.Float64, "shape_id": pl.Int64})


def _in_order(frame: pl.DataFrame) -> bool:
    return frame.select("contact_id", "ts").equals(frame.select("contact_id", "ts").sort(
        "contact_id", "ts"))


def test_range_events_equal_a_plain_select(app: App, clock: FakeClock) -> None:
    ids = []
    for i in range(7):
        c = good_fit_contact(app, f"r{i}@r{i}.example")
        assert c.id is not None
        ids.append(c.id)
        for k in range(0 if i == 3 else 2 + i):  # contact 3 has no events
            kind, url = KINDS[(i + k) % len(KINDS)]
            # out of time order on purpose: a late event is stored after later ones
            record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
                type=kind, contact_id=c.id, url=url, ts=clock.now() - (k % 3) * 3600.0))
            clock.advance(600)
    url = app.settings.resolved_database_url
    scoring = PolarsBulkScoring(app.engine, url, app.config)
    watermark = scoring.watermark()
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(  # after the watermark: left out
        type="page_view", contact_id=ids[0], url="/late"))
    low, high = min(ids), max(ids) + 1
    expected = _plain(app, low, high, watermark).sort("contact_id", "ts", "shape_id")
    assert expected.height == sum(2 + i for i in range(7) if i != 3)
    scorers = [scoring]
    if app.engine.dialect.name == "postgresql":  # as a worker process reads (no engine)
        scorers.append(PolarsBulkScoring(None, url, app.config))
    for scorer in scorers:
        events, _ = scorer.range_inputs(low, high, watermark)
        assert _in_order(events)
        assert events.sort("contact_id", "ts", "shape_id").equals(expected)
    if app.engine.dialect.name == "postgresql":
        with psycopg.connect(connectorx_uri(url)) as raw:
            for block in (1, 2, 3, 100):  # blocks of contacts, some of them without events
                events = read_events_packed(raw, low, high, watermark, block=block)
                assert _in_order(events)
                assert events.sort("contact_id", "ts", "shape_id").equals(expected)
            assert read_events_packed(raw, high + 10, high + 20, watermark).height == 0


def _array(oid: int, code: str, values: list[float], nulls: bool = False) -> bytes:
    size = struct.calcsize(">" + code)
    head = struct.pack(">iiIii", 1, int(nulls), oid, len(values), 1)
    return head + b"".join(struct.pack(">i" + code, size, v) for v in values)


def test_unpack_array_reads_the_binary_form() -> None:
    assert unpack_array(_array(23, "i", [3, -1, 7])).tolist() == [3, -1, 7]
    assert unpack_array(_array(20, "q", [2**40, 5])).tolist() == [2**40, 5]
    floats = unpack_array(_array(701, "d", [1.5, -2.25]))
    assert floats.dtype == np.float64
    assert floats.tolist() == [1.5, -2.25]
    assert unpack_array(None).size == 0
    assert unpack_array(struct.pack(">iiI", 0, 0, 701)).size == 0  # an empty array
    with pytest.raises(ValueError, match="NULL"):
        unpack_array(_array(23, "i", [1], nulls=True))
