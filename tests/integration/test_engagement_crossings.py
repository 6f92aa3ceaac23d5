"""When each contact's engagement first reached a milestone's threshold, computed set-based
(what a bulk load dates its milestones with) — equal to the engine's replay, also for a
contact whose events span more half-lives than a running sum can hold in one piece."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.adapters.db.bulk_scoring import LONG, PolarsBulkScoring
from leadflow.bootstrap import App
from leadflow.domain.backtest import replay, threshold_rules
from leadflow.domain.config import EngagementConfig, LifecycleConfig
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import move_stage
from tests.conftest import FakeClock, good_fit_contact

DAY = 86400.0


def _crossings(app: App, config: LifecycleConfig) -> dict[int, float]:
    url = app.settings.resolved_database_url
    scoring = PolarsBulkScoring(app.engine, url, config)
    low, high = scoring.id_range()
    events, recycled = scoring.range_inputs(low, high + 1, scoring.watermark())
    shape_rules = scoring.shape_rules()
    found = scoring.engagement_crossings(events, recycled, shape_rules)
    # as a worker process computes them (it has no engine of its own to read with)
    in_worker = PolarsBulkScoring(None, url, config).engagement_crossings(
        events, recycled, shape_rules)
    assert in_worker.sort("contact_id", "key").equals(found.sort("contact_id", "key"))
    return {cid: at for cid, key, at in found.iter_rows() if key == "mql"}


def _replayed(app: App, config: LifecycleConfig) -> dict[int, float]:
    rules = threshold_rules(config)
    out = {}
    with app.engine.connect() as conn:
        for found in SqlBacktestReads(conn).histories(won_stages=[], skip_stages=[],
                                                      created_before=None):
            for h in found:
                at = replay(replace(h, converted_at=None), config, rules).first_at("mql", 40)
                if at is not None:
                    out[h.contact.id or 0] = at
    return out


@pytest.mark.parametrize("half_life_days", [30.0, 0.05])
def test_first_crossings_equal_the_engines(app: App, clock: FakeClock,
                                           half_life_days: float) -> None:
    """With a half-life of 30 days every contact is summed in one piece; with 0.05 days the
    contacts whose events span weeks pass LONG half-lives and are summed event by event."""
    config = replace(app.config, engagement=EngagementConfig(
        half_life_days, app.config.engagement.rules))
    kinds = [("page_view", "/pricing"), ("content_download", "/guide"),
             ("webinar_attended", "/w"), ("page_view", "/careers"), ("demo_request", "/demo")]
    for i in range(8):
        c = good_fit_contact(app, f"c{i}@c{i}.example")
        assert c.id is not None
        for k in range(16):
            clock.advance((0.2 + (i * 7 + k * 3) % 5) * DAY)
            for burst in range(3):  # three events ten minutes apart, then a gap of days
                kind, url = kinds[(i + k + burst) % len(kinds)]
                clock.advance(600)
                record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
                    type=kind, contact_id=c.id, url=url))
            if k == 6 and i % 3 == 0:
                move_stage(uow=app.uow(), ctx=app.ctx, contact_id=c.id, to_stage="suspect",
                           reason="start over")
    with app.engine.connect() as conn:
        span = conn.execute(select(func.max(t.events.c.ts) - func.min(t.events.c.ts))
                            .group_by(t.events.c.contact_id)).scalars().all()
    long_runs = sum(s / (half_life_days * DAY) > LONG for s in span)
    assert long_runs == (0 if half_life_days > 1 else len(span))
    found = _crossings(app, config)
    expected = _replayed(app, config)
    assert found.keys() == expected.keys()
    assert len(found) >= 3
    for cid, at in expected.items():
        assert found[cid] == pytest.approx(at), cid
