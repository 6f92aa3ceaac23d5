"""Backtests of scoring rules and thresholds: replay each contact's recorded events under a
candidate configuration and ask, for many MQL (and SQL) thresholds at once, whom each would
have flagged, how many of those became customers, and how much sooner than the configuration in
force did.

A threshold is the number in the ``engagement_at_least`` tests of a rule (the MQL milestone's,
the hand-off stage's). For one contact, the rule's *level* at a moment is the highest threshold
at which the whole rule would hold then (``leveller``); levels only rise at events (engagement and
signals change there; between events engagement decays), so the running maximum of the level
over a contact's events gives, for every threshold at once, the first moment the rule held.

Only evidence before a contact became a customer counts: a threshold that flags a buyer after
the purchase picked nobody.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from leadflow.domain.config import Condition, LifecycleConfig
from leadflow.domain.engagement import EngagementState
from leadflow.domain.errors import InvalidInput
from leadflow.domain.lifecycle import apply_event_in_order, recycle_now
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact, Qualification
from leadflow.domain.stages import Facts, facts_for

DAY = 86400.0
# What a suggestion maximises: F-beta scores weigh recall beta times as much as precision.
METRICS = ("f1", "f2", "f0.5", "precision", "recall")
_BETA = {"f1": 1.0, "f2": 2.0, "f0.5": 0.5}
DEFAULT_MIN_FLAGGED = 10
MAX_THRESHOLDS = 200


def leveller(cond: Condition) -> Callable[[Facts], float]:
    """A rule's level, compiled once (a replay asks it at every scoring event): the highest
    threshold at which ``cond`` holds if each of its ``engagement_at_least`` tests took it;
    ``-inf`` when nothing would make it hold, ``inf`` when any threshold does."""
    if cond.op in ("all", "any"):
        parts = tuple(leveller(c) for c in cond.children)
        if cond.op == "all":
            return lambda f: min((p(f) for p in parts), default=math.inf)
        return lambda f: max((p(f) for p in parts), default=-math.inf)
    if cond.op == "engagement_at_least":
        return lambda f: f.engagement_since_recycle
    return lambda f: math.inf if f.holds(cond) else -math.inf


def engagement_tests(cond: Condition) -> list[float]:
    """The numbers of the ``engagement_at_least`` tests in a rule."""
    if cond.op in ("all", "any"):
        return [n for c in cond.children for n in engagement_tests(c)]
    return [cond.number] if cond.op == "engagement_at_least" else []


@dataclass(frozen=True)
class Rule:
    """A rule whose threshold a backtest varies: the MQL milestone's or the hand-off stage's."""

    kind: str  # mql | sql
    key: str  # the milestone or stage
    condition: Condition
    current: float  # its threshold in the candidate configuration


def _milestone_rule(config: LifecycleConfig, milestone: str) -> Condition | None:
    found = [m for m in config.milestones if m.key == milestone]
    return found[0].when if found else None


def _handoff_rule(config: LifecycleConfig) -> tuple[str, Condition | None]:
    handoff = config.stages_with_role("handoff")
    return (handoff[0].key, handoff[0].enter_when) if handoff else ("", None)


def _one_number(cond: Condition, what: str) -> float:
    numbers = set(engagement_tests(cond))
    if len(numbers) > 1:
        listed = ", ".join(f"{n:g}" for n in sorted(numbers))
        raise InvalidInput(f"{what} tests engagement against several numbers ({listed}): a "
                           "backtest varies one threshold, so give each test the same one",
                           field="milestone" if what.startswith("milestone") else "stage")
    return numbers.pop()


def threshold_rules(config: LifecycleConfig, *, milestone: str = "mql") -> list[Rule]:
    """The MQL rule (the milestone ``milestone``) and the SQL rule (the first hand-off stage's
    entry rule) of a configuration, each where it tests engagement (against one number)."""
    when = _milestone_rule(config, milestone)
    if when is None:
        raise InvalidInput(f"the configuration has no milestone {milestone!r}",
                           field="milestone")
    if not engagement_tests(when):
        raise InvalidInput(f"milestone {milestone!r} has no engagement_at_least test, so no "
                           "threshold to vary", field="milestone")
    rules = [Rule("mql", milestone, when, _one_number(when, f"milestone {milestone!r}"))]
    key, enter = _handoff_rule(config)
    if enter is not None and engagement_tests(enter):
        rules.append(Rule("sql", key, enter, _one_number(enter, f"stage {key!r}")))
    return rules


def baseline_rules(config: LifecycleConfig, *, milestone: str = "mql") -> list[Rule]:
    """The same rules as ``config`` has them, whether or not they test engagement: what a
    candidate's flags are compared with (a rule without an engagement test holds at any
    threshold, so its own threshold is 0)."""
    rules: list[Rule] = []
    when = _milestone_rule(config, milestone)
    if when is not None:
        rules.append(Rule("mql", milestone, when, max(engagement_tests(when), default=0.0)))
    key, enter = _handoff_rule(config)
    if enter is not None:
        rules.append(Rule("sql", key, enter, max(engagement_tests(enter), default=0.0)))
    return rules


@dataclass(frozen=True)
class History:
    """One contact as recorded: ``contact`` holds its identity and its fit (as they are now:
    leadflow keeps no history of attributes); ``events`` are sorted by time (then id)."""

    contact: Contact
    events: Sequence[tuple[float, EventShape]]
    converted_at: float | None
    account: Account | None = None
    recycles: tuple[float, ...] = ()  # when it was moved back (each resets "evidence since")
    qualified_at: float | None = None  # when it passed qualification, if it has
    created_as_customer: bool = False  # became a customer by an import, not by its history


@dataclass(frozen=True)
class Crossings:
    """Per rule kind, the levels the contact's rule rose to before it converted (each a new
    high: strictly increasing) and when; ``baseline``: when the configuration in force
    flagged it, per kind (None: not before it converted)."""

    converted_at: float | None
    levels: dict[str, tuple[float, ...]]
    times: dict[str, tuple[float, ...]]
    baseline: dict[str, float | None] = field(default_factory=dict)

    def first_at(self, kind: str, threshold: float) -> float | None:
        """When the rule of ``kind`` would first have held at ``threshold``."""
        levels = self.levels.get(kind, ())
        i = bisect.bisect_left(levels, threshold)
        return self.times[kind][i] if i < len(levels) else None


def replay(history: History, config: LifecycleConfig, rules: Sequence[Rule]) -> Crossings:
    """Replay a contact's events before its conversion under ``config``, with its recycles
    (moves back) and its qualification at their recorded times; the baseline is where
    ``rules`` stand at their own thresholds (``with_baseline`` replaces it)."""
    recorded = history.contact
    contact = replace(recorded, engagement=EngagementState(), signals={}, recycled_at=None,
                      recycle_baseline=0.0, milestones={}, last_event_at=None,
                      qualification=Qualification())
    passed = replace(recorded.qualification, passed=True)
    bought = history.converted_at
    # Recycles and the qualification, in time order: applied before the first event after.
    marks = sorted([(t, "recycle") for t in history.recycles]
                   + ([(history.qualified_at, "qualify")]
                      if history.qualified_at is not None else []), reverse=True)
    # The engine sends an excluded contact to the excluded stage, never on to the hand-off.
    excluded = contact.fit.excluded_by is not None
    levels: dict[str, list[float]] = {r.kind: [] for r in rules}
    times: dict[str, list[float]] = {r.kind: [] for r in rules}
    measure = [(r.kind, leveller(r.condition)) for r in rules
               if not (excluded and r.kind == "sql")]

    def measure_at(ts: float) -> None:
        facts = facts_for(contact, config, now=ts)
        for kind, measured in measure:
            value = measured(facts)
            found = levels[kind]
            if value > -math.inf and (not found or value > found[-1]):
                found.append(value)
                times[kind].append(ts)

    for ts, shape in [*history.events, (math.inf, None)]:
        while marks and marks[-1][0] < ts and (bought is None or marks[-1][0] < bought):
            at, what = marks.pop()
            if what == "recycle":
                recycle_now(contact, config, now=at)
            else:
                contact.qualification = passed
                measure_at(at)
        if shape is None or (bought is not None and ts >= bought):
            break
        out = apply_event_in_order(contact, ts=ts, shape=shape, config=config)
        if out.awarded or out.signals:  # else nothing rose: engagement only decayed
            measure_at(ts)
    crossings = Crossings(bought, {k: tuple(v) for k, v in levels.items()},
                          {k: tuple(v) for k, v in times.items()})
    return with_baseline(crossings, crossings, rules)


def with_baseline(crossings: Crossings, in_force: Crossings, rules: Sequence[Rule]
                  ) -> Crossings:
    """``crossings`` compared with ``in_force``: the same contact replayed under the
    configuration in force, whose ``rules`` stand at their own thresholds."""
    return replace(crossings, baseline={r.kind: in_force.first_at(r.kind, r.current)
                                        for r in rules})


@dataclass(frozen=True)
class ThresholdResult:
    threshold: float
    flagged: int  # contacts the rule would have picked (before they bought, for customers)
    converted: int  # of them, customers
    precision: float | None
    recall: float | None
    scores: dict[str, float | None]  # every metric of METRICS
    median_days_saved: float | None  # sooner than the configuration in force (or, where it
    # did not flag the customer before the purchase, than the purchase), days
    median_days_ahead: float | None  # from the flag to the purchase, days


@dataclass(frozen=True)
class Sweep:
    """A rule's thresholds, tried one by one on the same replayed histories."""

    kind: str
    key: str
    current: float
    contacts: int
    customers: int
    results: tuple[ThresholdResult, ...]
    metric: str
    min_flagged: int
    suggested: ThresholdResult | None

    @property
    def base_rate(self) -> float | None:
        return self.customers / self.contacts if self.contacts else None


def _f_beta(precision: float | None, recall: float | None, beta: float) -> float | None:
    if precision is None or recall is None:
        return None
    if precision == 0 and recall == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class Tally:
    """What sweeps need of the replayed contacts, kept small on a large install: each contact's
    peak level per rule kind (how far its rule rose before it bought), sorted on demand, and
    the buyers' crossings in full (medians need their times)."""

    def __init__(self, crossings: Iterable[Crossings] = ()) -> None:
        self.contacts = 0
        self.customers = 0
        self._peaks: dict[str, list[float]] = {}
        self._buyer_peaks: dict[str, list[float]] = {}
        self._sorted = True
        self.buyers: list[Crossings] = []
        for c in crossings:
            self.add(c)

    def add(self, c: Crossings) -> None:
        self.contacts += 1
        self._sorted = False
        bought = c.converted_at is not None
        if bought:
            self.customers += 1
            self.buyers.append(c)
        for kind, levels in c.levels.items():
            if levels:
                self._peaks.setdefault(kind, []).append(levels[-1])
                if bought:
                    self._buyer_peaks.setdefault(kind, []).append(levels[-1])

    def reaching(self, kind: str, threshold: float) -> tuple[int, int]:
        """(contacts, customers) whose rule of ``kind`` held at ``threshold`` at some point
        (for customers: before they bought)."""
        if not self._sorted:
            for found in (*self._peaks.values(), *self._buyer_peaks.values()):
                found.sort()
            self._sorted = True
        peaks, buyers = self._peaks.get(kind, []), self._buyer_peaks.get(kind, [])
        return (len(peaks) - bisect.bisect_left(peaks, threshold),
                len(buyers) - bisect.bisect_left(buyers, threshold))


def try_threshold(tally: Tally, kind: str, threshold: float) -> ThresholdResult:
    flagged, converted = tally.reaching(kind, threshold)
    saved: list[float] = []
    ahead: list[float] = []
    for c in tally.buyers:
        at = c.first_at(kind, threshold)
        if at is None or c.converted_at is None:
            continue
        bought = c.converted_at
        ahead.append((bought - at) / DAY)
        before = c.baseline.get(kind)
        saved.append(((bought if before is None else before) - at) / DAY)
    customers = tally.customers
    precision = converted / flagged if flagged else None
    recall = converted / customers if customers else None
    scores: dict[str, float | None] = {m: _f_beta(precision, recall, b)
                                       for m, b in _BETA.items()}
    scores["precision"], scores["recall"] = precision, recall
    return ThresholdResult(threshold, flagged, converted, precision, recall, scores,
                           _median(saved), _median(ahead))


def suggest(results: Iterable[ThresholdResult], *, metric: str, min_flagged: int,
            current: float | None = None) -> ThresholdResult | None:
    """The threshold with the best ``metric`` among those that flag at least ``min_flagged``
    contacts; on a tie, the one that catches more buyers, then flags fewer contacts, then
    flags them sooner, then the current one (nothing to change for nothing gained)."""
    def worth(r: ThresholdResult) -> tuple[float, int, int, float, bool]:
        return (r.scores[metric] or 0.0, r.converted, -r.flagged,
                -math.inf if r.median_days_ahead is None else r.median_days_ahead,
                r.threshold == current)
    eligible = [r for r in results if r.scores[metric] is not None and r.flagged >= min_flagged]
    return max(eligible, key=worth, default=None)


def check_choices(*, metric: str, min_flagged: int) -> None:
    if metric not in METRICS:
        raise InvalidInput(f"the metric to maximise is one of {', '.join(METRICS)}, "
                           f"not {metric!r}", field="metric")
    if min_flagged < 1:
        raise InvalidInput("the fewest contacts a suggested threshold flags is at least 1",
                           field="min_flagged")


def sweep(tally: Tally, rule: Rule, thresholds: Sequence[float], *, metric: str,
          min_flagged: int = DEFAULT_MIN_FLAGGED) -> Sweep:
    check_choices(metric=metric, min_flagged=min_flagged)
    tried = sorted(set(thresholds) | {rule.current})
    results = tuple(try_threshold(tally, rule.kind, t) for t in tried)
    return Sweep(rule.kind, rule.key, rule.current, tally.contacts, tally.customers, results,
                 metric, min_flagged,
                 suggest(results, metric=metric, min_flagged=min_flagged, current=rule.current))


def default_thresholds(current: float) -> list[float]:
    """A quarter of the current threshold to three times it, in quarter steps."""
    step = current / 4 if current > 0 else 10.0
    return [round(step * k, 6) for k in range(1, 13)]


class BadThresholds(InvalidInput):
    """Thresholds written wrong; ``problem`` says how (for pages that word it themselves):
    too_long, format, reversed, too_many, none, not_positive; ``part``: the piece at fault."""

    def __init__(self, message: str, *, field: str, problem: str, part: str = "") -> None:
        super().__init__(message, field=field)
        self.problem = problem
        self.part = part


def parse_thresholds(text: str, *, field_name: str) -> list[float]:
    """``20,30,45`` or ``10:120:10`` (from, to, step; both ends included), or both."""
    def bad(message: str, problem: str, part: str = "") -> BadThresholds:
        return BadThresholds(message, field=field_name, problem=problem, part=part)

    if len(text) > 2000:
        raise bad("that is too long a list of thresholds", "too_long")
    values: set[float] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if ":" in part:
                low, high, step = (float(x) for x in part.split(":"))
                span = (high - low) / step if step > 0 else math.nan
                if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(span)):
                    raise ValueError
                if high < low:
                    raise bad(f"{part!r}: a range goes from the lower number to the higher "
                              "(10:120:10)", "reversed", part)
                n = math.floor(span + 1e-9) + 1
                if n > MAX_THRESHOLDS:
                    raise bad(f"{part!r} makes {n:,} thresholds; try at most "
                              f"{MAX_THRESHOLDS}", "too_many", part)
                values.update(round(low + i * step, 9) for i in range(n))
            else:
                values.add(float(part))
        except ValueError:
            raise bad(f"{part!r} is not a threshold: write numbers separated by commas "
                      "(20,30,45) or a range from:to:step (10:120:10)", "format", part) from None
        if len(values) > MAX_THRESHOLDS:
            raise bad(f"try at most {MAX_THRESHOLDS} thresholds at once", "too_many")
    if not values:
        raise bad("give at least one threshold", "none")
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise bad("thresholds are positive numbers", "not_positive")
    return sorted(values)
