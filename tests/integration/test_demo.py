"""The demo business: every stage, milestone and temperature populated; scores exact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.adapters.db.read_models import funnel
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.demo.install import install_demo
from leadflow.domain.backtest import replay, threshold_rules
from leadflow.domain.errors import Conflict
from leadflow.domain.ports import NullProgress
from leadflow.services.rescore import check_scores


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """As tests/conftest.py's, but rescoring the demo in chunks of 150 contacts rather than 7:
    still several chunks with uneven boundaries, without a thousand connections' worth of
    reads (chunks of 7 made the rescore of a 1,000-contact demo most of this file's time)."""
    return Settings(database_url=database_url, data_dir=tmp_path / "data",
                    rescore_chunk_contacts=150)


def _snapshot(app: App) -> dict[str, Any]:
    with app.engine.connect() as conn:
        data = funnel(conn, app.config)
        temperatures = dict(conn.execute(select(t.contacts.c.temperature, func.count())
                                         .group_by(t.contacts.c.temperature)).all())
        events = conn.execute(select(func.count()).select_from(t.events)).scalar()
    return {"funnel": data, "temperatures": temperatures, "events": events}


def test_demo_populates_every_stage_milestone_and_temperature(app: App) -> None:
    totals = install_demo(app, contacts=1000, seed=11, progress=NullProgress())
    assert totals["contacts"] == 1000
    snap = _snapshot(app)
    assert all(s["count"] > 0 for s in snap["funnel"]["stages"]), snap["funnel"]["stages"]
    assert all(m["count"] > 0 for m in snap["funnel"]["milestones"]), snap["funnel"]
    assert {"hot", "warm", "new", "cold"} <= set(snap["temperatures"]), snap["temperatures"]
    assert 10 * 1000 < snap["events"] < 35 * 1000
    report = check_scores(scoring=app.bulk_scoring(), progress=NullProgress())
    assert report.differing_contacts == 0, report.differences[:5]
    # Deals are won, lost (their contacts back to nurture, the reason recorded) and open.
    o, c = t.opportunities.c, t.contacts.c
    with app.engine.connect() as conn:
        deals = dict(conn.execute(select(o.status, func.count()).group_by(o.status)).all())
        lost = conn.execute(select(c.stage, o.lost_reason, c.recycled_at, o.closed_at)
                            .join(t.contacts, c.id == o.contact_id)
                            .where(o.status == "lost")).all()
    assert set(deals) == {"open", "won", "lost"}, deals
    assert all(stage == "lead" and why in app.config.sales.lost_reasons
               and recycled == closed for stage, why, recycled, closed in lost), lost[:3]


def test_demo_is_reproducible_and_refuses_to_overwrite(app: App) -> None:
    install_demo(app, contacts=300, seed=3, progress=NullProgress())
    first = _snapshot(app)
    with pytest.raises(Conflict):
        install_demo(app, contacts=300, seed=3, progress=NullProgress())
    install_demo(app, contacts=300, seed=3, progress=NullProgress(), replace=True)
    assert _snapshot(app) == first
    install_demo(app, contacts=300, seed=4, progress=NullProgress(), replace=True)
    assert _snapshot(app) != first


def test_demo_contacts_follow_the_stage_rules(app: App) -> None:
    """Each demo contact's events explain its stage: leads showed interest, prospects fit and
    showed intent, customers bought; competitors are disqualified."""
    install_demo(app, contacts=800, seed=5, progress=NullProgress())
    with app.engine.connect() as conn:
        rows = conn.execute(select(t.contacts.c.id, t.contacts.c.stage,
                                   t.contact_scores.c.signals, t.contacts.c.fit_grade,
                                   t.contacts.c.excluded_by, t.contacts.c.email)
                            .join(t.contact_scores,
                                  t.contact_scores.c.contact_id == t.contacts.c.id)).all()
    for cid, stage, signals, grade, excluded_by, email in rows:
        if stage in ("lead", "prospect", "opportunity", "customer"):
            assert "interest" in signals, cid
        if stage in ("prospect", "opportunity", "customer"):
            assert grade in ("A", "B"), cid
            assert email, cid
            assert "premium_content" in signals or "demo_request" in signals, cid
        if stage == "customer":
            assert "purchase" in signals, cid
        if excluded_by:
            assert stage == "disqualified", cid
        if stage == "closed":
            assert email is None, cid


def test_demo_milestones_are_dated_when_they_were_reached(app: App) -> None:
    """An engagement milestone is dated at the event that took the contact's engagement since
    its recycle to the threshold — as the engine, fed the events one by one, would have (the
    backtest's replay is that engine); none is dated after now."""
    install_demo(app, contacts=600, seed=9, progress=NullProgress())
    rules = threshold_rules(app.config)
    with app.engine.connect() as conn:
        recorded = dict(conn.execute(select(t.milestones.c.contact_id, t.milestones.c.reached_at)
                                     .where(t.milestones.c.key == "mql")).all())
        latest = conn.execute(select(func.max(t.milestones.c.reached_at))).scalar()
        histories = [h for found in SqlBacktestReads(conn).histories(
            won_stages=[], skip_stages=["closed"], created_before=None) for h in found]
    assert latest <= app.clock.now()
    assert len(recorded) > 50
    for h in histories:
        recycles = (h.contact.recycled_at,) if h.contact.recycled_at is not None else ()
        expected = replay(replace(h, recycles=recycles), app.config, rules).first_at("mql", 40)
        assert recorded.get(h.contact.id) == pytest.approx(expected), h.contact.id
