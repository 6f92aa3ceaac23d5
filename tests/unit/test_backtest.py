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
from leadflow.domain.engagement import EngagementState
from leadflow.domain.errors import InvalidInput
from leadflow.domain.fit import score_fit
from leadflow.domain.lifecycle import apply_event_in_order, evaluate, recycle_now
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact, Qualification
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
           config: LifecycleConfig = CFG) -> Contact:
    c = Contact(id=1, stage="suspect", email=email, seniority="director", country="FR",
                account_id=account.id, stage_entered_at=T0 - 400 * DAY)
    c.fit = score_fit(c, account, config.fit)
    return c


def with_handoff(config: LifecycleConfig, rule: Condition) -> LifecycleConfig:
    return replace(config, stages=tuple(replace(s, enter_when=rule) if s.role == "handoff"
                                        else s for s in config.stages))


EVIDENCE = Condition("any", children=(
    Condition("signal", name="premium_content"), Condition("signal", name="demo_request"),
    Condition("engagement_at_least", number=60)))
# Candidates: the hand-off rule without the persona test (competitors would pass it, were
# they not excluded), and one that asks for qualification too.
NO_FIT = with_handoff(CFG, Condition("all", children=(
    Condition("contact_details"), EVIDENCE)))
QUALIFIED = with_handoff(CFG, Condition("all", children=(
    Condition("contact_details"), Condition("qualification"), EVIDENCE)))


def engine_times(history: History, config: LifecycleConfig
                 ) -> tuple[float | None, float | None]:
    """When the engine itself — events fed one by one, each move back recycling the contact as
    services/moves.py does, qualification evaluated when it is passed — sets the MQL milestone
    and moves the contact to the hand-off stage or beyond, before it converted."""
    c = replace(history.contact, signals={}, milestones={}, recycled_at=None,
                recycle_baseline=0.0, engagement=EngagementState(), last_event_at=None,
                qualification=Qualification(), stage="suspect")
    mql = sql = None
    handoff = config.rank(config.first_stage("handoff").key)
    marks = sorted([(t, "recycle") for t in history.recycles]
                   + ([(history.qualified_at, "qualify")] if history.qualified_at else []))
    # A move made at the same instant as an event came after it (the event was recorded
    # first), as the engine counts evidence at the recycle's time as before it.
    moments = sorted([(ts, 0, shape) for ts, shape in history.events]
                     + [(t, 1, what) for t, what in marks], key=lambda m: (m[0], m[1]))
    for ts, order, what in moments:
        if history.converted_at is not None and ts >= history.converted_at:
            break
        if order == 1 and what == "recycle":
            recycle_now(c, config, now=ts)
            if config.rank(c.stage) > 1:
                c.stage = "lead"
            continue
        if order == 1:
            c.qualification = Qualification(passed=True)
        else:
            assert isinstance(what, EventShape)
            apply_event_in_order(c, ts=ts, shape=what, config=config)
        evaluate(c, config, at=ts, now=ts)
        if mql is None and "mql" in c.milestones:
            mql = ts
        if sql is None and config.rank(c.stage) >= handoff:
            sql = ts
    return mql, sql


events_strategy = st.lists(
    st.tuples(st.floats(min_value=0, max_value=20 * DAY), st.sampled_from(range(len(SHAPES)))),
    min_size=0, max_size=25)
day_or_none = st.one_of(st.none(), st.integers(min_value=0, max_value=25))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=events_strategy, mql=st.sampled_from([5.0, 12.0, 20.0, 40.0, 55.0, 90.0]),
       sql=st.sampled_from([10.0, 30.0, 60.0, 200.0]), bought_after=day_or_none,
       account=st.sampled_from([SOFTWARE, SHOP]),
       email=st.sampled_from(["ann@example.com", None, "spy@hubspot.com"]),
       recycles=st.lists(st.integers(min_value=0, max_value=25), max_size=3, unique=True),
       qualified_after=day_or_none, config=st.sampled_from([CFG, NO_FIT, QUALIFIED]))
def test_one_replay_answers_every_threshold_as_the_engine_does(
        steps: list[tuple[float, int]], mql: float, sql: float, bought_after: int | None,
        account: Account, email: str | None, recycles: list[int],
        qualified_after: int | None, config: LifecycleConfig) -> None:
    ts = T0
    events = []
    for gap, shape in steps:
        ts += gap
        events.append((ts, SHAPES[shape]))
    history = History(
        person(account, email=email, config=config), events,
        None if bought_after is None else T0 + bought_after * DAY,
        recycles=tuple(sorted(T0 + d * DAY + 0.5 for d in recycles)),
        qualified_at=None if qualified_after is None else T0 + qualified_after * DAY + 0.25)
    crossings = replay(history, config, threshold_rules(config))
    expected = engine_times(history, with_thresholds(config, mql=mql, sql=sql))
    assert (crossings.first_at("mql", mql), crossings.first_at("sql", sql)) == expected


def test_every_move_back_counts() -> None:
    """Recycled twice: evidence before the first recycle must not count between the two."""
    webinars = [(T0 + d * DAY, EventShape(type="webinar_attended")) for d in range(12)]
    history = History(person(), webinars, None, recycles=(T0 + 3.5 * DAY, T0 + 8.5 * DAY))
    crossings = replay(history, CFG, threshold_rules(CFG))
    at = crossings.first_at("sql", 60)
    assert at is not None
    assert at > T0 + 3.5 * DAY + 4 * DAY  # four webinars since the first recycle, at least
    assert (crossings.first_at("mql", 40), at) == engine_times(
        history, with_thresholds(CFG, mql=40, sql=60))


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


def result(threshold: float, flagged: int, f1: float, ahead: float | None = 1.0,
           converted: int = 0) -> ThresholdResult:
    return ThresholdResult(threshold, flagged, converted, 0.5, 0.5,
                           {"f1": f1, "precision": f1}, None, ahead)


def test_the_suggestion() -> None:
    rows = [result(10, 500, 0.30), result(20, 300, 0.42), result(30, 5, 0.50),
            result(40, 300, 0.42, ahead=3.0), result(50, 300, 0.42, ahead=3.0),
            result(60, 250, 0.42, ahead=0.5)]
    # 30 is best but flags too few; of the equals, fewer flagged, then sooner, then the lower
    assert suggest(rows, metric="f1", min_flagged=10) == rows[5]
    assert suggest(rows[:5], metric="f1", min_flagged=10) == rows[3]
    assert suggest(rows, metric="f1", min_flagged=5) == rows[2]
    assert suggest(rows, metric="f1", min_flagged=1000) is None
    # All else equal, the current threshold: nothing to change for nothing gained
    same = [result(t, 300, 0.42, ahead=3.0) for t in (30, 40, 50)]
    assert suggest(same, metric="f1", min_flagged=1) == same[0]
    assert suggest(same, metric="f1", min_flagged=1, current=40) == same[1]
    # Equal precision: the one that catches more buyers, even if it flags more
    few, many = result(70, 10, 1.0, converted=10), result(80, 40, 1.0, converted=40)
    assert suggest([few, many], metric="precision", min_flagged=1) == many


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


def test_a_rule_with_several_numbers_is_refused() -> None:
    """One threshold varies: a rule that tests engagement against 20 and 80 has no single one
    to call current."""
    two = replace(CFG, milestones=tuple(replace(m, when=Condition("any", children=(
        Condition("all", children=(Condition("engagement_at_least", number=20),
                                   Condition("signal", name="pricing"))),
        Condition("engagement_at_least", number=80)))) if m.key == "mql" else m
        for m in CFG.milestones))
    with pytest.raises(InvalidInput) as bad:
        threshold_rules(two)
    assert "several numbers (20, 80)" in bad.value.message


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
    ("", "at least one"), ("ten", "'ten' is not a threshold"),
    ("10:5:1", "lower number to the higher"),
    ("1:2:0", "not a threshold"), ("-5", "positive"), ("nan", "positive"),
    ("80:20:10", "from the lower number to the higher"),
    ("1:1000:1", "at most 200"), ("10:20", "not a threshold"),
    ("1:inf:1", "not a threshold"), ("0:1e308:1e-308", "not a threshold"),
    ("1e-320:1:1e-320", "not a threshold"), ("1:200:1,201:300:1", "at most 200"),
    ("1," * 1500, "too long")])
def test_bad_thresholds_are_named(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_thresholds(text, field_name="sql")
    assert bad.value.field == "sql"
    assert says in bad.value.message


def test_default_thresholds() -> None:
    assert default_thresholds(40) == [10.0 * k for k in range(1, 13)]
    assert all(math.isfinite(t) and t > 0 for t in default_thresholds(0))
