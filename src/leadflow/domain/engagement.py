"""Engagement scoring: points per event from rules, caps per time window, exponential decay.

The state keeps ``score`` as it stood at ``t0``, the time of the last event that matched a rule;
``S(t) = score * 2^(-(t - t0)/h)``. Events must be applied in event-time order (ties by event
id); a late event means replaying the contact's events (``replay``). Caps count points per rule
within fixed windows aligned to Monday 00:00 UTC, in event-time order: the first events of a
window get their points, the rest get what remains of the cap.

``rank_key`` orders contacts by their score *now* without rewriting rows: every stored score
decays by the same factor, so ``t0/h + log2(S)`` (for S > 0) sorts like ``S(now)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leadflow.domain.config import EngagementConfig, EngagementRule
from leadflow.domain.matching import EventShape

WINDOW_ORIGIN = 345600.0  # 1970-01-05T00:00Z, a Monday: day and week windows start at midnight
ZERO_RANK = -1.0e9
NEGATIVE_RANK_BASE = -2.0e9


def window_index(ts: float, window_seconds: float) -> int:
    return math.floor((ts - WINDOW_ORIGIN) / window_seconds)


def decay_factor(dt_seconds: float, half_life_seconds: float) -> float:
    return float(2.0 ** (-dt_seconds / half_life_seconds))


@dataclass
class EngagementState:
    score: float = 0.0
    t0: float | None = None
    breakdown: dict[str, float] = field(default_factory=dict)
    caps: dict[str, tuple[int, float]] = field(default_factory=dict)

    def at(self, ts: float, half_life_seconds: float) -> float:
        """The score decayed to time ``ts``."""
        if self.t0 is None:
            return 0.0
        return self.score * decay_factor(ts - self.t0, half_life_seconds)

    def breakdown_at(self, ts: float, half_life_seconds: float) -> dict[str, float]:
        if self.t0 is None:
            return {}
        f = decay_factor(ts - self.t0, half_life_seconds)
        return {k: v * f for k, v in self.breakdown.items()}

    def copy(self) -> EngagementState:
        return EngagementState(self.score, self.t0, dict(self.breakdown), dict(self.caps))


def matching_rules(
    rules: Sequence[EngagementRule], shape: EventShape
) -> list[EngagementRule]:
    return [r for r in rules if r.when.matches(shape)]


def apply_event(
    state: EngagementState,
    *,
    ts: float,
    rules: Sequence[EngagementRule],
    half_life_seconds: float,
) -> dict[str, float]:
    """Apply one event (already matched to ``rules``) at time ``ts``; return points awarded."""
    if not rules:
        return {}
    if state.t0 is not None and ts < state.t0:
        raise ValueError("events must be applied in event-time order; replay instead")
    awarded: dict[str, float] = {}
    for rule in rules:
        points = rule.points
        if rule.cap is not None:
            w = window_index(ts, rule.cap.window_seconds)
            prev_w, used = state.caps.get(rule.key, (w, 0.0))
            if prev_w != w:
                used = 0.0
            allowed = max(0.0, rule.cap.points - used)
            magnitude = min(abs(points), allowed)
            points = math.copysign(magnitude, points)
            state.caps[rule.key] = (w, used + magnitude)
        awarded[rule.key] = awarded.get(rule.key, 0.0) + points
    factor = 1.0 if state.t0 is None else decay_factor(ts - state.t0, half_life_seconds)
    state.score = state.score * factor + sum(awarded.values())
    state.breakdown = {k: v * factor for k, v in state.breakdown.items()}
    for k, v in awarded.items():
        state.breakdown[k] = state.breakdown.get(k, 0.0) + v
    state.t0 = ts
    return awarded


def replay(
    events: Iterable[tuple[float, EventShape]],
    config: EngagementConfig,
    *,
    until: float | None = None,
) -> EngagementState:
    """Score a contact from scratch from its events, given sorted by (time, id)."""
    state = EngagementState()
    for ts, shape in events:
        if until is not None and ts > until:
            break
        apply_event(
            state,
            ts=ts,
            rules=config.rules_for(shape),
            half_life_seconds=config.half_life_seconds,
        )
    return state


def rank_key(score: float, t0: float | None, half_life_seconds: float) -> float:
    """A value that sorts contacts like their score decayed to any common 'now'."""
    if t0 is None or score == 0:
        return ZERO_RANK
    if score > 0:
        return t0 / half_life_seconds + math.log2(score)
    return NEGATIVE_RANK_BASE - (t0 / half_life_seconds + math.log2(-score))


def rank_threshold(min_score: float, now: float, half_life_seconds: float) -> float:
    """``rank_key >= rank_threshold(m, now)`` iff the score at ``now`` is >= m (for m > 0)."""
    if min_score <= 0:
        raise ValueError("rank thresholds exist for positive scores only")
    return now / half_life_seconds + math.log2(min_score)
