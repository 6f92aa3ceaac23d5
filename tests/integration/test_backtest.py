"""Backtests over a history made by the real services (SQLite and PostgreSQL): the report
equals a brute-force computation that runs the engine once per threshold on the recorded
events; a candidate configuration changes the answer; reps may not run one; erased contacts and
newer cohorts stay out."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import pytest

from leadflow.adapters.config_file import default_config_text, parse_config_text
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.bootstrap import App
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Forbidden
from leadflow.domain.lifecycle import apply_event_in_order, evaluate
from leadflow.domain.ports import NullProgress
from leadflow.domain.stages import facts_for
from leadflow.domain.users import OPERATOR, Principal
from leadflow.services.backtest import BacktestReport, run_backtest
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import erase
from leadflow.services.opportunities import create_opportunity, win_opportunity
from tests.conftest import FakeClock, good_fit_contact
from tests.unit.test_backtest import with_thresholds

HOUR = 3600.0
DAY = 24 * HOUR
KINDS = [("page_view", {"url": "/blog"}), ("page_view", {"url": "/pricing"}),
         ("content_download", {}), ("content_download", {"premium": True}),
         ("form_submitted", {}), ("webinar_attended", {}), ("email_clicked", {}),
         ("demo_request", {"url": "/demo"})]


@dataclass
class Made:
    ids: list[int]
    bought: dict[int, float]
    created: dict[int, float]


def make_history(app: App, clock: FakeClock, *, seed: int = 5, people: int = 14) -> Made:
    """People with random behaviour over a few weeks; some buy (a deal won), one of them
    erased; about a third are misfits (no persona: never handed off)."""
    rng = random.Random(seed)
    made = Made([], {}, {})
    for i in range(people):
        if i % 3 == 2:
            c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
                email=f"p{i}@shop.example", seniority="junior", country="US"))
        else:
            c = good_fit_contact(app, f"p{i}@p{i}.example")
        assert c.id is not None
        made.ids.append(c.id)
        made.created[c.id] = clock.now()
        clock.advance(HOUR)
    for _ in range(people * 7):
        cid = rng.choice(made.ids)
        if cid in made.bought:
            continue
        kind, shape = rng.choice(KINDS)
        clock.advance(rng.uniform(0.1, 2.0) * DAY)
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
            type=kind, contact_id=cid, **shape))  # type: ignore[arg-type]
        if rng.random() < 0.08:
            deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=cid,
                                      name="Deal", amount=1000, currency="EUR")
            clock.advance(DAY)
            win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=deal.id)
            made.bought[cid] = clock.now()
    return made


def backtest(app: App, principal: Principal = OPERATOR, **args: object) -> BacktestReport:
    with app.engine.connect() as conn:
        return run_backtest(reads=SqlBacktestReads(conn), ctx=app.ctx, principal=principal,
                            progress=NullProgress(), **args)  # type: ignore[arg-type]


def brute_force(app: App, made: Made, config: LifecycleConfig, kind: str, threshold: float,
                ids: list[int]) -> tuple[int, int, int]:
    """(flagged, flagged customers, customers): the engine run on each contact's recorded
    events with the rule's threshold set, one threshold at a time."""
    tried = with_thresholds(config, mql=threshold, sql=threshold)
    handoff = tried.first_stage("handoff").enter_when
    assert handoff is not None
    flagged = converted = 0
    for cid in ids:
        with app.uow() as uow:
            contact = uow.contacts.get(cid)
            events = uow.events.history(cid)
        assert contact is not None
        c = replace(contact, signals={}, milestones={},
                    engagement=type(contact.engagement)(), recycled_at=None)
        bought = made.bought.get(cid)
        hit = False
        for ts, shape in events:
            if bought is not None and ts >= bought:
                break
            apply_event_in_order(c, ts=ts, shape=shape, config=tried)
            evaluate(c, tried, at=ts, now=ts)
            if (kind == "mql" and "mql" in c.milestones) or (
                    kind == "sql" and facts_for(c, tried, now=ts).holds(handoff)):
                hit = True
                break
        flagged += hit
        converted += hit and bought is not None
    return flagged, converted, sum(cid in made.bought for cid in ids)


def test_the_report_equals_the_engine_run_per_threshold(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    assert 2 <= len(made.bought) < len(made.ids)  # the seed makes buyers and others
    report = backtest(app, mql_thresholds=[5, 15, 25, 50], sql_thresholds=[20, 45, 90],
                      min_flagged=1)
    assert (report.contacts, report.customers) == (len(made.ids), len(made.bought))
    assert report.in_force
    mql, sql = report.sweeps
    assert [r.threshold for r in mql.results] == [5, 15, 25, 40, 50]  # 40: the current one
    assert [r.threshold for r in sql.results] == [20, 45, 60, 90]
    for s in (mql, sql):
        for r in s.results:
            assert (r.flagged, r.converted, s.customers) == brute_force(
                app, made, app.config, s.kind, r.threshold, made.ids), (s.kind, r.threshold)
            assert r.recall == (r.converted / s.customers)
        current = next(r for r in s.results if r.threshold == s.current)
        assert current.median_days_saved in (0.0, None)  # the configuration in force itself
    assert any(0 < r.flagged < len(made.ids) for r in mql.results)


def candidate_text() -> str:
    """The shipped configuration, where any page view is worth 20 points."""
    return default_config_text().replace(
        "      when: {type: page_view}\n      points: 1\n      cap: {points: 10, per: day}",
        "      when: {type: page_view}\n      points: 20")


def test_a_candidate_configuration(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    text = candidate_text()
    assert text != default_config_text()
    candidate = parse_config_text(text, source="candidate")
    assert candidate.digest != app.config.digest
    report = backtest(app, candidate=candidate, mql_thresholds=[15, 30], min_flagged=1)
    assert not report.in_force
    for r in report.sweeps[0].results:
        assert (r.flagged, r.converted, report.customers) == brute_force(
            app, made, candidate, "mql", r.threshold, made.ids)
    before = {r.threshold: r.flagged for r in backtest(
        app, mql_thresholds=[15, 30], min_flagged=1).sweeps[0].results}
    after = {r.threshold: r.flagged for r in report.sweeps[0].results}
    assert after[15] >= before[15]
    assert after != before
    # Compared with the configuration in force: flagged sooner, never later, at 40 too.
    at_40 = next(r for r in report.sweeps[0].results if r.threshold == 40)
    assert at_40.median_days_saved is None or at_40.median_days_saved >= 0


def test_who_is_replayed(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    erase(uow=app.uow(), ctx=app.ctx, contact_id=made.ids[0], reason="asked")
    assert backtest(app).contacts == len(made.ids) - 1
    cut = made.created[made.ids[5]]
    assert backtest(app, created_before=cut).contacts == 4  # 1 to 4: 0 is erased
    rep = Principal(name="rita", role="sales_rep", scope="write", user_id=7)
    with pytest.raises(Forbidden):
        backtest(app, rep)


def test_an_empty_install(app: App) -> None:
    report = backtest(app)
    assert (report.contacts, report.customers) == (0, 0)
    assert all(r.flagged == 0 and r.recall is None for s in report.sweeps for r in s.results)
    assert all(s.suggested is None for s in report.sweeps)
