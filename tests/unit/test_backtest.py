"""Backtests: the one-pass sweep equals the engine run once per threshold, and the arithmetic
of precision, recall, days saved and the suggestion."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.adapters.config_file import load_config
from leadflow.domain.backtest import (
    Crossings,
    History,
    Rule,
    Tally,
    ThresholdResult,
    baseline_rules,
    default_thresholds,
    parse_thresholds,
    replay,
    suggest,
    sweep,
    threshold_rules,
    try_threshold,
    with_baseline,
)
from leadflow.domain.config import Condition, EngagementConfig, LifecycleConfig
from leadflow.domain.errors import InvalidInput
from leadflow.domain.fit import score_fit
from leadflow.domain.lifecycle import apply_event_in_order, evaluate, recycle_now
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact
from tests.conftest import T0

CFG = load_config(None)
DAY = 86400.0
SOFTWARE = Account(id=1, name="Acme", industry="software", employees=300, country="FR")
SHOP = Account(id=2, name="Corner shop", industry="retail", employees=4, country="FR")

# Events without a deal or a purchase (those move a contact past the hand-off stage).
SHAPES = [EventShape(type="page_view", url="/blog"), EventShape(type="page_view", url="/pricing"),
          EventShape(type="page_view", url="/careers"),
          EventShape(type="content_download", premium=False),
          EventShape(type="content_download", premium=True),
          EventShape(type="form_submitted"), EventShape(type="webinar_attended"),
          EventShape(type="email_opened"), EventShape(type="email_clicked"),
          EventShape(type="demo_request"), EventShape(type="product_used")]


def with_thresholds(config: LifecycleConfig, *, mql: float, sql: float) -> LifecycleConfig:
    """``config`` with every engagement test of the MQL milestone set to ``mql`` and of the
    hand-off stage's rule to ``sql``."""
    def at(cond: Condition, number: float) -> Condition:
        if cond.op == "engagement_at_least":
            return replace(cond, number=number)
        return replace(cond, children=tuple(at(c, number) for c in cond.children))
    milestones = tuple(replace(m, when=at(m.when, mql)) if m.key == "mql" and m.when else m
                       for m in config.milestones)
    stages = tuple(replace(s, enter_when=at(s.enter_when, sql))
                   if s.role == "handoff" and s.enter_when else s for s in config.stages)
    return replace(config, milestones=milestones, stages=stages)


def person(account: Account = SOFTWARE, *, email: str | None = "ann@example.com",
           recycled_at: float | None = None) -> Contact:
    c = Contact(id=1, stage="suspect", email=email, seniority="director", country="FR",
                account_id=account.id, stage_entered_at=T0 - 400 * DAY,
                recycled_at=recycled_at)
    c.fit = score_fit(c, account, CFG.fit)
    return c


def engine_times(contact: Contact, events: list[tuple[float, EventShape]],
                 converted_at: float | None, config: LifecycleConfig
                 ) -> tuple[float | None, float | None]:
    """When the engine itself, fed the events one by one, sets the MQL milestone and moves the
    contact to the hand-off stage (or beyond), before ``converted_at``."""
    c = replace(contact, signals={}, milestones={}, recycled_at=None)
    mql = sql = None
    handoff = config.rank(config.first_stage("handoff").key)
    for ts, shape in events:
        if converted_at is not None and ts >= converted_at:
            break
        if contact.recycled_at is not None and c.recycled_at is None and ts > contact.recycled_at:
            recycle_now(c, config, now=contact.recycled_at)
        apply_event_in_order(c, ts=ts, shape=shape, config=config)
        evaluate(c, config, at=ts, now=ts)
        if mql is None and "mql" in c.milestones:
            mql = ts
        if sql is None and config.rank(c.stage) >= handoff:
            sql = ts
    return mql, sql


events_strategy = st.lists(
    st.tuples(st.floats(min_value=0, max_value=20 * DAY), st.sampled_from(range(len(SHAPES)))),
    min_size=0, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=events_strategy, mql=st.sampled_from([5.0, 12.0, 20.0, 40.0, 55.0, 90.0]),
       sql=st.sampled_from([10.0, 30.0, 60.0, 200.0]),
       bought_after=st.one_of(st.none(), st.integers(min_value=0, max_value=25)),
       account=st.sampled_from([SOFTWARE, SHOP]), with_email=st.booleans(),
       recycle_after=st.one_of(st.none(), st.integers(min_value=0, max_value=25)))
def test_one_replay_answers_every_threshold_as_the_engine_does(
        steps: list[tuple[float, int]], mql: float, sql: float, bought_after: int | None,
        account: Account, with_email: bool, recycle_after: int | None) -> None:
    ts = T0
    events = []
    for gap, shape in steps:
        ts += gap
        events.append((ts, SHAPES[shape]))
    converted_at = None if bought_after is None else T0 + bought_after * DAY
    recycled_at = None if recycle_after is None else T0 + recycle_after * DAY + 0.5
    contact = person(account, email="ann@example.com" if with_email else None,
                     recycled_at=recycled_at)
    rules = threshold_rules(CFG)
    crossings = replay(History(contact, events, converted_at), CFG, rules)
    expected = engine_times(contact, events, converted_at,
                            with_thresholds(CFG, mql=mql, sql=sql))
    assert (crossings.first_at("mql", mql), crossings.first_at("sql", sql)) == expected


def crossing(levels: list[tuple[float, float]], converted_at: float | None = None,
             baseline: float | None = None, kind: str = "mql") -> Crossings:
    return Crossings(converted_at, {kind: tuple(lv for lv, _ in levels)},
                     {kind: tuple(t for _, t in levels)}, {kind: baseline})


def test_precision_recall_and_days() -> None:
    history = Tally([
        # a buyer flagged at 10 points on day 1 and 50 on day 6, bought on day 11; the
        # configuration in force flagged them on day 4
        crossing([(10, 1 * DAY), (50, 6 * DAY)], converted_at=11 * DAY, baseline=4 * DAY),
        # a buyer never flagged by the configuration in force, reaching 30 on day 2
        crossing([(30, 2 * DAY)], converted_at=12 * DAY),
        # a buyer with no engagement before buying
        crossing([], converted_at=3 * DAY),
        # two who never bought
        crossing([(20, 1 * DAY), (60, 2 * DAY)]),
        crossing([(5, 1 * DAY)]),
    ])
    at_10 = try_threshold(history, "mql", 10)
    assert (at_10.flagged, at_10.converted) == (3, 2)
    assert at_10.precision == pytest.approx(2 / 3)
    assert at_10.recall == pytest.approx(2 / 3)
    assert at_10.scores["f1"] == pytest.approx(2 / 3)
    # sooner than the baseline: 4 - 1 = 3 days; than the purchase (no baseline): 12 - 2 = 10
    assert at_10.median_days_saved == pytest.approx(6.5)
    assert at_10.median_days_ahead == pytest.approx((10 + 10) / 2)
    at_40 = try_threshold(history, "mql", 40)
    assert (at_40.flagged, at_40.converted) == (2, 1)
    assert at_40.median_days_saved == pytest.approx(-2)  # day 6, two days after day 4
    assert at_40.scores["f2"] == pytest.approx(5 * 0.5 * (1 / 3) / (4 * 0.5 + 1 / 3))
    at_100 = try_threshold(history, "mql", 100)
    assert (at_100.flagged, at_100.precision, at_100.recall) == (0, None, 0.0)
    assert at_100.scores["f1"] is None


def result(threshold: float, flagged: int, f1: float, ahead: float | None = 1.0
           ) -> ThresholdResult:
    return ThresholdResult(threshold, flagged, 0, 0.5, 0.5, {"f1": f1}, None, ahead)


def test_the_suggestion() -> None:
    rows = [result(10, 500, 0.30), result(20, 300, 0.42), result(30, 5, 0.50),
            result(40, 300, 0.42, ahead=3.0), result(50, 300, 0.42, ahead=3.0)]
    # 30 is best but flags too few; of the equals, the one that flags sooner, then the lower
    assert suggest(rows, metric="f1", min_flagged=10) == rows[3]
    assert suggest(rows, metric="f1", min_flagged=5) == rows[2]
    assert suggest(rows, metric="f1", min_flagged=1000) is None


def test_a_sweep_always_tries_the_current_threshold() -> None:
    rule = Rule("mql", "mql", Condition("engagement_at_least", number=40), 40)
    history = Tally([crossing([(45, DAY)], converted_at=2 * DAY), crossing([(35, DAY)])])
    s = sweep(history, rule, [30, 50], metric="f1", min_flagged=1)
    assert [r.threshold for r in s.results] == [30, 40, 50]
    assert (s.contacts, s.customers, s.base_rate) == (2, 1, 0.5)
    assert s.suggested is not None
    assert s.suggested.threshold == 40
    with pytest.raises(InvalidInput) as bad:
        sweep(history, rule, [30], metric="auc")
    assert bad.value.field == "metric"


def test_the_rules_of_a_configuration() -> None:
    mql, sql = threshold_rules(CFG)
    assert (mql.kind, mql.key, mql.current) == ("mql", "mql", 40)
    assert (sql.kind, sql.key, sql.current) == ("sql", "prospect", 60)
    with pytest.raises(InvalidInput) as bad:
        threshold_rules(CFG, milestone="pql")  # a signal rule: no threshold to vary
    assert bad.value.field == "milestone"
    with pytest.raises(InvalidInput):
        threshold_rules(CFG, milestone="nope")
    # the baseline takes rules without engagement tests too: they hold at any threshold
    no_test = replace(CFG, milestones=tuple(
        replace(m, when=Condition("signal", name="demo_request")) if m.key == "mql" else m
        for m in CFG.milestones))
    (base_mql, _) = baseline_rules(no_test)
    assert base_mql.current == 0.0
    demo = [(T0, SHAPES[9])]
    tried = replay(History(person(), demo, None), CFG, threshold_rules(CFG))
    in_force = replay(History(person(), demo, None), no_test, baseline_rules(no_test))
    assert with_baseline(tried, in_force, baseline_rules(no_test)).baseline["mql"] == T0


def test_events_after_the_purchase_do_not_count() -> None:
    demo = [(T0, SHAPES[0]), (T0 + DAY, SHAPES[9]), (T0 + 2 * DAY, SHAPES[9])]
    bought = replay(History(person(), demo, T0 + DAY), CFG, threshold_rules(CFG))
    assert bought.levels["mql"] == (1.0,)  # the page view only: the demo came with the sale
    assert bought.first_at("mql", 2) is None


def test_a_signal_that_scores_nothing_still_counts() -> None:
    """A candidate that gives a demo request no points: the request alone still hands off."""
    unscored = replace(CFG, engagement=EngagementConfig(
        CFG.engagement.half_life_days,
        tuple(r for r in CFG.engagement.rules if r.key != "demo_request")))
    demo = [(T0, SHAPES[9])]
    tried = replay(History(person(), demo, None), unscored, threshold_rules(unscored))
    assert tried.first_at("sql", 1000) == T0
    assert tried.first_at("mql", 1) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("40", [40.0]), ("20, 10,20", [10.0, 20.0]), ("10:30:10", [10.0, 20.0, 30.0]),
    ("0.5:1.5:0.5,7", [0.5, 1.0, 1.5, 7.0]), ("5:5:1", [5.0])])
def test_thresholds_as_written(text: str, expected: list[float]) -> None:
    assert parse_thresholds(text, field_name="mql") == expected


@pytest.mark.parametrize(("text", "says"), [
    ("", "at least one"), ("ten", "'ten' is not a threshold"), ("10:5:1", "not a threshold"),
    ("1:2:0", "not a threshold"), ("-5", "positive"), ("nan", "positive"),
    ("1:1000:1", "at most 200"), ("10:20", "not a threshold")])
def test_bad_thresholds_are_named(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_thresholds(text, field_name="sql")
    assert bad.value.field == "sql"
    assert says in bad.value.message


def test_default_thresholds() -> None:
    assert default_thresholds(40) == [10.0 * k for k in range(1, 13)]
    assert all(math.isfinite(t) and t > 0 for t in default_thresholds(0))
