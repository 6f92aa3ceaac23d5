"""Backtests: had the scoring rules been these and the MQL (or SQL) threshold that, whom would
we have flagged, how many became customers, how much sooner? Every contact's recorded events
are replayed under a candidate configuration (the one in force by default); the arithmetic is
in ``domain.backtest``. Admins and marketers only: it reads every contact."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from leadflow.domain.backtest import (
    DEFAULT_MIN_FLAGGED,
    Crossings,
    History,
    Rule,
    Sweep,
    Tally,
    baseline_rules,
    check_choices,
    default_thresholds,
    threshold_rules,
    with_baseline,
)
from leadflow.domain.backtest import replay as replay_history
from leadflow.domain.backtest import sweep as sweep_rule
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Forbidden
from leadflow.domain.fit import score_fit
from leadflow.domain.ports import Progress
from leadflow.domain.users import Principal
from leadflow.services.context import Context

R = TypeVar("R")


class BacktestReads(Protocol):
    """adapters/db/backtest_reads."""

    def count(self, *, skip_stages: Sequence[str], created_before: float | None) -> int: ...

    def replayed(self, work: Callable[[list[History]], R], *, won_stages: Sequence[str],
                 skip_stages: Sequence[str], created_before: float | None
                 ) -> Iterator[tuple[int, R]]:
        """``work`` on each slice of histories (in worker processes for a large install),
        with the number of contacts of the slice."""
        ...


@dataclass(frozen=True)
class BacktestReport:
    config_version: str  # the candidate's
    in_force: bool  # whether the candidate is the configuration in force
    created_before: float | None
    contacts: int
    customers: int
    left_out: int  # customers imported as such, or without behaviour before they bought
    sweeps: tuple[Sweep, ...]  # mql, then sql when the hand-off rule tests engagement


def may_backtest(principal: Principal) -> None:
    if not principal.sees_all:
        raise Forbidden("backtests replay every contact: admins and marketers run them",
                        field="role")


def run_backtest(*, reads: BacktestReads, ctx: Context, principal: Principal,
                 progress: Progress, candidate: LifecycleConfig | None = None,
                 mql_thresholds: Sequence[float] | None = None,
                 sql_thresholds: Sequence[float] | None = None, metric: str = "f1",
                 min_flagged: int = DEFAULT_MIN_FLAGGED, milestone: str = "mql",
                 created_before: float | None = None) -> BacktestReport:
    """Replay every contact (created before ``created_before``, if given; erased ones have
    nothing to replay) under ``candidate`` and sweep each rule's thresholds (by default a
    quarter of the candidate's threshold to three times it)."""
    may_backtest(principal)
    check_choices(metric=metric, min_flagged=min_flagged)
    config = candidate or ctx.config
    rules = threshold_rules(config, milestone=milestone)
    other = candidate is not None and candidate.digest != ctx.config.digest
    in_force = baseline_rules(ctx.config, milestone=milestone) if other else rules
    skip = [s.key for s in ctx.config.stages_with_role("erased")]
    won = [s.key for s in ctx.config.stages_with_role("won")]
    total = reads.count(skip_stages=skip, created_before=created_before)
    progress.start("Replaying contacts", total)
    tally = Tally()
    left_out = 0
    work = SliceReplay(config, tuple(rules), ctx.config, tuple(in_force), other)
    for contacts, (crossings, skipped) in reads.replayed(
            work, won_stages=won, skip_stages=skip, created_before=created_before):
        for found in crossings:
            tally.add(found)
        left_out += skipped
        progress.advance(contacts)
    progress.finish()
    asked = {"mql": mql_thresholds, "sql": sql_thresholds}
    sweeps = tuple(
        sweep_rule(tally, rule, asked[rule.kind] or default_thresholds(rule.current),
                   metric=metric, min_flagged=min_flagged) for rule in rules)
    return BacktestReport(config.config_version, not other, created_before, tally.contacts,
                          tally.customers, left_out, sweeps)


@dataclass(frozen=True)
class SliceReplay:
    """Replays a slice of contacts (picklable: worker processes run it)."""

    config: LifecycleConfig  # the candidate's, or the one in force
    rules: tuple[Rule, ...]
    in_force_config: LifecycleConfig
    in_force: tuple[Rule, ...]
    other: bool  # whether the candidate differs from the configuration in force

    def __call__(self, histories: list[History]) -> tuple[list[Crossings], int]:
        """The crossings of each contact, and how many were left out."""
        out: list[Crossings] = []
        left_out = 0
        for history in histories:
            if history.created_as_customer or (
                    history.converted_at is not None
                    and not any(ts < history.converted_at for ts, _ in history.events)):
                # Imported as a customer (its purchase time is the import's), or no behaviour
                # recorded before it bought: no threshold could have flagged it first.
                left_out += 1
                continue
            # Fit is graded from the attributes as they are now, by each configuration's
            # personas (the one in force's too: a stored grade may predate its last edit).
            now_fit = _graded(history, self.in_force_config)
            if not self.other:
                out.append(replay_history(now_fit, self.config, self.rules))
                continue
            tried = replay_history(_graded(history, self.config), self.config, self.rules)
            out.append(with_baseline(
                tried, replay_history(now_fit, self.in_force_config, self.in_force),
                self.in_force))
        return out, left_out


def _graded(history: History, config: LifecycleConfig) -> History:
    fit = score_fit(history.contact, history.account, config.fit)
    return replace(history, contact=replace(history.contact, fit=fit))


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def sweep_summary(s: Sweep) -> dict[str, Any]:
    def row(r: Any) -> dict[str, Any]:
        return {"threshold": r.threshold, "flagged": r.flagged, "converted": r.converted,
                "precision": _ratio(r.precision), "recall": _ratio(r.recall),
                "scores": {k: _ratio(v) for k, v in r.scores.items()},
                "lift": _ratio(r.precision / s.base_rate)
                if r.precision is not None and s.base_rate else None,
                "median_days_saved": _days(r.median_days_saved),
                "median_days_ahead": _days(r.median_days_ahead),
                "current": r.threshold == s.current}
    return {"kind": s.kind, "rule": s.key, "current": s.current, "metric": s.metric,
            "min_flagged": s.min_flagged, "base_rate": _ratio(s.base_rate),
            "thresholds": [row(r) for r in s.results],
            "suggested": None if s.suggested is None else row(s.suggested)}


def backtest_summary(report: BacktestReport) -> dict[str, Any]:
    return {"config_version": report.config_version, "in_force": report.in_force,
            "created_before": report.created_before, "contacts": report.contacts,
            "customers": report.customers, "left_out": report.left_out,
            "sweeps": [sweep_summary(s) for s in report.sweeps]}
