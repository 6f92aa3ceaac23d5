"""Engagement is reproducible: the incremental score equals a replay from scratch and the
set-based (Polars) rescore, for any events in any arrival order, within 1e-9.

The pure properties feed events to the domain the way ``services.events.record_in`` does (in
order: apply; late: rebuild from the history). The database variant records them through the
real services on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import count, pairwise
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from leadflow.adapters.config_file import default_config_text, load_config
from leadflow.adapters.db.bulk_scoring import PolarsBulkScoring
from leadflow.bootstrap import App
from leadflow.domain.config import LifecycleConfig, parse_config
from leadflow.domain.engagement import (
    WINDOW_ORIGIN,
    EngagementState,
    rank_key,
    rank_threshold,
    replay,
)
from leadflow.domain.lifecycle import apply_event_in_order, rebuild_from_history, recycle_now
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Contact, SignalSeen
from leadflow.domain.ports import NullProgress
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event, record_events
from tests.conftest import T0, FakeClock

CFG = load_config(None)
H = CFG.engagement.half_life_seconds
DAY = 86400.0
TOL = 1e-9
START = T0 - 20 * DAY

# Types weighted towards the capped rules so that caps fill up; "visit" matches no rule.
TYPES = (
    ["page_view"] * 8 + ["product_used"] * 4 + ["email_opened"] * 4 + ["email_clicked"] * 2
    + ["content_download", "content_view", "form_submitted", "newsletter_signup",
       "webinar_registered", "webinar_attended", "demo_request", "trial_started",
       "product_signup", "email_replied", "call_answered", "unsubscribed", "email_bounced",
       "deal_created", "purchase", "deal_won", "visit"]
)
URLS = [None, "/", "/pricing", "/pricing/enterprise", "/careers", "/jobs/42", "/blog/crm"]

shapes = st.builds(
    EventShape,
    type=st.sampled_from(TYPES),
    url=st.sampled_from(URLS),
    premium=st.sampled_from([None, True, False]),
    content_stage=st.sampled_from([None, "discovery", "evaluation", "decision"]),
)

# Midnights (day windows) and Monday midnights (week windows) inside the test period.
BOUNDARIES = [WINDOW_ORIGIN + DAY * k for k in range(int((START - WINDOW_ORIGIN) // DAY),
                                                       int((T0 - WINDOW_ORIGIN) // DAY) + 1)]
BOUNDARIES = [b for b in BOUNDARIES if START <= b <= T0]

times = st.one_of(
    # a coarse grid: many ties, several events per day window
    st.integers(0, 20 * 8).map(lambda k: START + k * 3 * 3600.0),
    # just before or at a window boundary
    st.tuples(st.sampled_from(BOUNDARIES), st.sampled_from([-1.0, -0.001, 0.0, 0.5])).map(
        lambda bo: min(T0, bo[0] + bo[1])),
    st.floats(START, T0, allow_nan=False),
)


@dataclass(frozen=True)
class Ev:
    contact: int
    ts: float
    shape: EventShape
    id: int  # the arrival position: what the database would give as the event id


def arrivals(max_contacts: int = 3, max_size: int = 40) -> st.SearchStrategy[list[Ev]]:
    """Events of a few contacts, in a random arrival order (ids follow arrival)."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Ev]:
        raw = draw(st.lists(st.tuples(st.integers(1, max_contacts), times, shapes),
                            max_size=max_size))
        order = draw(st.permutations(range(len(raw))))
        return [Ev(raw[i][0], raw[i][1], raw[i][2], pos) for pos, i in enumerate(order)]

    return build()


def history(events: Iterable[Ev], contact: int) -> list[tuple[float, EventShape]]:
    """A contact's events the way the repository returns them: sorted by (time, id)."""
    mine = sorted((e for e in events if e.contact == contact), key=lambda e: (e.ts, e.id))
    return [(e.ts, e.shape) for e in mine]


def incremental(events: Sequence[Ev], contact_id: int, config: LifecycleConfig) -> Contact:
    """What record_in does, event by event as they arrive: in order apply, late rebuild."""
    contact = Contact(id=contact_id, stage="suspect")
    seen: list[Ev] = []
    for e in events:
        if e.contact != contact_id:
            continue
        seen.append(e)
        if contact.last_event_at is None or e.ts >= contact.last_event_at:
            apply_event_in_order(contact, ts=e.ts, shape=e.shape, config=config)
        else:
            rebuild_from_history(contact, history(seen, contact_id), config)
    return contact


class InMemoryShapes(PolarsBulkScoring):
    """The production set-based scoring, fed shapes from memory instead of the table."""

    def __init__(self, shapes: dict[EventShape, int], config: LifecycleConfig) -> None:
        super().__init__(create_engine("sqlite:///:memory:"), "sqlite:///:memory:", config)
        self._shapes = shapes

    def shapes(self) -> list[tuple[int, Any]]:
        return [(i, s) for s, i in self._shapes.items()]


@dataclass
class Bulk:
    score: float
    t0: float | None
    rank: float
    breakdown: dict[str, float]
    caps: dict[str, list[float]]
    baseline: float


def bulk_scores(events: Sequence[Ev], config: LifecycleConfig,
                recycled: dict[int, float] | None = None
                ) -> tuple[dict[int, Bulk], dict[int, dict[str, Any]]]:
    """Score every contact with PolarsBulkScoring.score_frame, and list its signals with
    signals_frame: the set-based pass, on frames built here instead of read from a database."""
    shape_ids: dict[EventShape, int] = {}
    for e in events:
        shape_ids.setdefault(e.shape, len(shape_ids) + 1)
    scoring = InMemoryShapes(shape_ids, config)
    frame = pl.DataFrame(
        {"contact_id": [e.contact for e in events], "ts": [e.ts for e in events],
         "id": [e.id for e in events], "shape_id": [shape_ids[e.shape] for e in events]},
        schema={"contact_id": pl.Int64, "ts": pl.Float64, "id": pl.Int64, "shape_id": pl.Int64})
    rec = recycled or {}
    recycled_frame = pl.DataFrame({"contact_id": list(rec), "recycled_at": list(rec.values())},
                                  schema={"contact_id": pl.Int64, "recycled_at": pl.Float64})
    scores = scoring.score_frame(frame, scoring.shape_rules(), recycled_frame)
    signals = scoring.signals_frame(frame, scoring.shape_signals())
    return (
        {r["contact_id"]: Bulk(r["score"], r["t0"], r["rank"], json.loads(r["breakdown"]),
                               json.loads(r["caps"]), r["baseline"])
         for r in scores.iter_rows(named=True)},
        {r["contact_id"]: json.loads(r["signals"]) for r in signals.iter_rows(named=True)},
    )


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def assert_same_state(got: EngagementState, want: EngagementState) -> None:
    assert close(got.score, want.score), (got.score, want.score)
    assert close(got.t0, want.t0), (got.t0, want.t0)
    assert set(got.breakdown) == set(want.breakdown)
    for k, v in want.breakdown.items():
        assert close(got.breakdown[k], v), (k, got.breakdown[k], v)
    assert set(got.caps) == set(want.caps)
    for k, (w, used) in want.caps.items():
        assert got.caps[k][0] == w, k
        assert close(got.caps[k][1], used), (k, got.caps[k], used)


def assert_matches_bulk(state: EngagementState, bulk: Bulk | None, h: float) -> None:
    if state.t0 is None:  # no event matched a rule: the set-based pass has no score row
        assert bulk is None or bulk.t0 is None
        return
    assert bulk is not None
    assert close(bulk.score, state.score), (bulk.score, state.score)
    assert close(bulk.t0, state.t0)
    assert close(bulk.rank, rank_key(state.score, state.t0, h)), (bulk.rank, state)
    assert set(bulk.breakdown) == set(state.breakdown)
    for k, v in state.breakdown.items():
        assert close(bulk.breakdown[k], v), (k, bulk.breakdown[k], v)
    assert set(bulk.caps) == set(state.caps)
    for k, (w, used) in state.caps.items():
        assert int(bulk.caps[k][0]) == w, k
        assert close(bulk.caps[k][1], used), (k, bulk.caps[k], used)


def assert_same_signals(got: dict[str, SignalSeen], bulk: dict[str, Any] | None) -> None:
    assert {k: (v.count, v.last) for k, v in got.items()} == {
        k: (v["n"], v["last"]) for k, v in (bulk or {}).items()}


# ------------------------------------------------------------------ pure properties


@settings(max_examples=200, deadline=None)
@given(events=arrivals())
def test_incremental_equals_replay_and_bulk_in_any_arrival_order(events: list[Ev]) -> None:
    bulk, signals = bulk_scores(events, CFG)
    for cid in {e.contact for e in events}:
        contact = incremental(events, cid, CFG)
        scratch = replay(history(events, cid), CFG.engagement)
        assert_same_state(contact.engagement, scratch)
        assert_matches_bulk(contact.engagement, bulk.get(cid), H)
        assert_same_signals(contact.signals, signals.get(cid))
        breakdown_total = sum(contact.engagement.breakdown.values())
        assert math.isclose(breakdown_total, contact.engagement.score, rel_tol=TOL, abs_tol=TOL)


@settings(max_examples=100, deadline=None)
@given(events=arrivals(max_contacts=2), data=st.data())
def test_recycle_baseline_matches_bulk(events: list[Ev], data: st.DataObject) -> None:
    assume(events)
    recycled_at = {cid: data.draw(times, label=f"recycled_at[{cid}]")
                   for cid in {e.contact for e in events}}
    bulk, _ = bulk_scores(events, CFG, recycled_at)
    for cid, at in recycled_at.items():
        contact = incremental(events, cid, CFG)
        contact.recycled_at = at
        rebuild_from_history(contact, history(events, cid), CFG)
        want = replay(history(events, cid), CFG.engagement, until=at).at(at, H)
        assert close(contact.recycle_baseline, want)
        if cid in bulk:
            assert close(bulk[cid].baseline, want), (bulk[cid].baseline, want)
        if all(e.ts <= at for e in events if e.contact == cid):
            # recycled now, after every event: the stamp takes the score as it stands
            fresh = incremental(events, cid, CFG)
            recycle_now(fresh, CFG, now=at)
            assert close(fresh.recycle_baseline, want)


def edited_config(draw: st.DrawFn) -> LifecycleConfig:
    raw: dict[str, Any] = yaml.safe_load(default_config_text())
    rules = raw["engagement"]["rules"]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(rules) - 1))
        rule = rules[i]
        rule["points"] = draw(st.sampled_from([-15, -3, -0.5, 0.25, 1, 2, 7, 30]))
        cap = draw(st.sampled_from([None, "keep", {"points": 3, "per": "day"},
                                    {"points": 4.5, "per": "12h"},
                                    {"points": 20, "per": "week"}, {"points": 1, "per": "hour"}]))
        if cap is None:
            rule.pop("cap", None)
        elif cap != "keep":
            rule["cap"] = cap
    if draw(st.booleans()):
        raw["engagement"]["half_life_days"] = draw(st.sampled_from([1, 7, 14.5, 90]))
    if draw(st.booleans()):
        rules.append({"key": "blog", "when": {"type": "page_view", "url": "/blog*"},
                      "points": draw(st.sampled_from([-2, 3])),
                      "cap": {"points": 5, "per": "day"}})
    return parse_config(raw)


@settings(max_examples=80, deadline=None)
@given(events=arrivals(max_contacts=2), data=st.data())
def test_editing_a_rule_then_rescoring_equals_replaying_under_the_new_rule(
        events: list[Ev], data: st.DataObject) -> None:
    new = data.draw(st.composite(lambda draw: edited_config(draw))(), label="config")
    h = new.engagement.half_life_seconds
    bulk, _ = bulk_scores(events, new)
    for cid in {e.contact for e in events}:
        scratch = replay(history(events, cid), new.engagement)
        assert_matches_bulk(scratch, bulk.get(cid), h)
        assert_same_state(incremental(events, cid, new).engagement, scratch)


# ------------------------------------------------------------------ decay and rank


@settings(max_examples=200, deadline=None)
@given(events=arrivals(max_contacts=1), later=st.lists(st.floats(0, 400 * DAY), min_size=2,
                                                       max_size=6))
def test_decay_is_monotonic(events: list[Ev], later: list[float]) -> None:
    state = replay(history(events, 1), CFG.engagement)
    assume(state.t0 is not None and state.score > 0)
    assert state.t0 is not None
    values = [state.at(state.t0 + dt, H) for dt in sorted(later)]
    assert all(b <= a for a, b in pairwise(values))
    assert all(v > 0 for v in values)  # it fades, it never flips sign
    assert values[0] <= state.score


@settings(max_examples=200, deadline=None)
@given(score=st.floats(1e-6, 1e6), dts=st.lists(st.floats(0, 1e9), min_size=2, max_size=8))
def test_decay_never_increases_a_positive_score(score: float, dts: list[float]) -> None:
    state = EngagementState(score=score, t0=T0)
    values = [state.at(T0 + dt, H) for dt in sorted(dts)]
    assert all(b <= a for a, b in pairwise(values))


scores = st.one_of(st.just(0.0), st.floats(1e-3, 1e4), st.floats(-1e4, -1e-3))


@settings(max_examples=300, deadline=None)
@given(states=st.lists(st.tuples(scores, st.floats(START, T0)), min_size=2, max_size=12),
       ahead=st.floats(0, 200 * DAY))
def test_rank_key_orders_like_the_score_decayed_to_now(
        states: list[tuple[float, float]], ahead: float) -> None:
    now = T0 + ahead
    for s1, t1 in states:
        for s2, t2 in states:
            now1 = s1 * 2 ** (-(now - t1) / H)
            now2 = s2 * 2 ** (-(now - t2) / H)
            if math.isclose(now1, now2, rel_tol=1e-9, abs_tol=1e-12):
                continue
            assert (rank_key(s1, t1, H) > rank_key(s2, t2, H)) == (now1 > now2), \
                ((s1, t1, now1), (s2, t2, now2))


@settings(max_examples=200, deadline=None)
@given(score=scores, t0=st.floats(START, T0), minimum=st.floats(0.01, 500),
       ahead=st.floats(0, 200 * DAY))
def test_rank_threshold_selects_scores_at_least_the_minimum_now(
        score: float, t0: float, minimum: float, ahead: float) -> None:
    now = T0 + ahead
    value = score * 2 ** (-(now - t0) / H)
    assume(not math.isclose(value, minimum, rel_tol=1e-9))
    assert (rank_key(score, t0, H) >= rank_threshold(minimum, now, H)) == (value >= minimum)


def test_rank_threshold_refuses_non_positive_minimums() -> None:
    with pytest.raises(ValueError, match="positive"):
        rank_threshold(0, T0, H)


# ------------------------------------------------------------------ worked examples


def page_views(*ts: float) -> list[tuple[float, EventShape]]:
    return [(t, EventShape(type="page_view", url="/blog")) for t in ts]


def test_cap_counts_per_calendar_day_and_resets_at_midnight() -> None:
    midnight = next(b for b in BOUNDARIES if b > START + DAY)
    events = page_views(*[midnight - 3600 + i for i in range(12)],
                        *[midnight + 60 + i for i in range(3)])
    state = replay(events, CFG.engagement)
    # the first 10 of the 12 views before midnight count, then the 3 after it
    counted = [midnight - 3600 + i for i in range(10)] + [midnight + 60 + i for i in range(3)]
    t_last = midnight + 62
    assert state.t0 == t_last
    assert state.score == pytest.approx(sum(2 ** (-(t_last - t) / H) for t in counted),
                                        rel=1e-12)
    assert state.caps["page_view"][1] == 3


def test_a_late_event_takes_its_place_under_the_cap() -> None:
    """A late view earlier in a full day takes a capped slot from a later one: exact replay."""
    day = next(b for b in BOUNDARIES if b > START + DAY)
    on_time = [Ev(1, day + 3600 * (i + 1), EventShape("page_view"), i) for i in range(10)]
    late = Ev(1, day + 60, EventShape("page_view", url="/pricing"), 10)
    contact = incremental([*on_time, late], 1, CFG)
    scratch = replay(history([*on_time, late], 1), CFG.engagement)
    assert_same_state(contact.engagement, scratch)
    # the late view earned its point; the 10th on-time view no longer did
    t_last = day + 3600 * 10
    assert contact.engagement.breakdown["page_view"] == pytest.approx(
        sum(2 ** (-(t_last - t) / H) for t in [day + 60] + [day + 3600 * (i + 1)
                                                            for i in range(9)]), rel=1e-12)
    assert contact.engagement.breakdown["pricing_page"] == pytest.approx(
        8 * 2 ** (-(t_last - day - 60) / H), rel=1e-12)


def test_half_life_halves_the_score() -> None:
    state = replay([(T0, EventShape("demo_request"))], CFG.engagement)
    assert state.score == 30
    assert state.at(T0 + H, H) == pytest.approx(15)
    assert state.at(T0 + 2 * H, H) == pytest.approx(7.5)


# ------------------------------------------------------------------ through the services




def to_event_in(contact_id: int, e: Ev, n: int) -> EventIn:
    s = e.shape
    return EventIn(type=s.type, contact_id=contact_id, ts=e.ts, url=s.url, premium=s.premium,
                   content_stage=s.content_stage, message_id=f"m-{contact_id}-{n}")


_emails = count()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=arrivals(max_contacts=1, max_size=14), batches=st.lists(st.integers(1, 4),
                                                                        min_size=14, max_size=14))
def test_recorded_events_equal_replay_and_rescore(app: App, clock: FakeClock, events: list[Ev],
                                                  batches: list[int]) -> None:
    """Through record_event / record_events on a real database, in the drawn arrival order
    (a late event recomputes the contact exactly), then against the set-based rescore."""
    clock.t = T0
    contact = create_contact(uow=app.uow(), ctx=app.ctx,
                             data=ContactIn(email=f"p{next(_emails)}@example.com"))
    assert contact.id is not None
    cid = contact.id
    i = 0
    for size in batches:
        chunk = events[i:i + size]
        if not chunk:
            break
        if len(chunk) == 1:
            record_event(uow=app.uow(), ctx=app.ctx, event=to_event_in(cid, chunk[0], i))
        else:
            # a batch is applied in event-time order; it may still be late for the contact
            record_events(uow=app.uow(), ctx=app.ctx,
                          events=[to_event_in(cid, e, i + j) for j, e in enumerate(chunk)])
        i += size
    with app.uow() as uow:
        stored = uow.contacts.get(cid)
        db_history = uow.events.history(cid)
    assert stored is not None
    assert sorted(t for t, _ in db_history) == sorted(e.ts for e in events)
    scratch = replay(db_history, app.config.engagement)
    assert_same_state(stored.engagement, scratch)
    # the set-based pass over the stored events agrees, for this contact and every other
    scoring = app.bulk_scoring()
    chunks = scoring.recompute(NullProgress())
    rows = [r for c in chunks for r in c.frame.iter_rows(named=True) if r["contact_id"] == cid]
    if scratch.t0 is None:
        assert not rows or rows[0]["t0"] is None
    else:
        (row,) = rows
        assert close(row["score"], scratch.score)
        assert close(row["t0"], scratch.t0)
    assert list(scoring.differences(chunks, tolerance=TOL)) == []
