"""The predictive conversion score learnt from the install's own history (pure).

**Examples.** A contact becomes an example when it becomes a lead (enters the interest stage
or any main stage after it, for the first time): its first *cutoff*. While it has not reached
the target nor left for an excluded or erased stage, it is an example again every
``SNAPSHOT_DAYS`` after that, up to ``SNAPSHOTS`` times (so that the model learns what a lead
that has been waiting for 60 days looks like, as it will score such leads). An example counts
once its horizon has passed (cutoff + horizon ≤ now). Its label: the contact reached the
target (the won stage by default, or ``milestone:<key>``) within the horizon after the
cutoff. A contact whose data were erased is left out. Every input is read as of the cutoff:
events with ``ts`` ≤ cutoff only; never the stage, the owner, an opportunity or a milestone,
never a deal or purchase event. Contact and account attributes are read as they are now
(leadflow keeps no history of them): those filled in only later (by sales, after the
hand-off) belong in ``model.exclude``.

**Scores.** The active model scores, as of now, each contact that became a lead and has not
reached the target, and is neither excluded nor erased; ``lead.days_as_lead`` tells it how
long the contact has been one. Its probability comes with its own
reasons: for each input, the change in the model's (calibrated) log-odds when that input alone
is replaced by its reference value from the training set (the median of a number, the most
frequent category); the largest changes, either sign, are the reasons. For a logistic model
this is exactly coefficient × (value − reference) on the encoded input; for boosted trees it is
a per-contact ablation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.config import Condition, LifecycleConfig
from leadflow.domain.errors import InvalidInput
from leadflow.domain.evaluation import (
    CATEGORY,
    MISSING,
    Feature,
    FeatureValue,
    FittedModel,
    LabelledRows,
)
from leadflow.domain.predictive_config import MILESTONE_PREFIX, target_problem

DAY = 86_400.0
TOP_REASONS = 5
SNAPSHOT_DAYS = 30  # a contact still open is an example again this many days later ...
SNAPSHOTS = 7  # ... up to this many times (at 0, 30, ..., 180 days after it became a lead)
# Event types that are an opportunity or its outcome, whatever the configuration says.
OUTCOME_EVENT_PREFIXES = ("deal_",)


@dataclass(frozen=True)
class Target:
    """What a model predicts, resolved against the configuration."""

    spec: str  # "customer", "milestone:mql"
    kind: str  # "stage" | "milestone"
    keys: tuple[str, ...]  # stages whose entry reaches it (it and the main stages after it),
    # or the milestone's key
    lead_stages: tuple[str, ...]  # entering any of these makes a contact a lead
    open_stages: tuple[str, ...]  # a contact in one of these may still reach it (scored)


def _signals_of(condition: Condition | None) -> set[str]:
    if condition is None:
        return set()
    found = {condition.name} if condition.op == "signal" else set()
    for child in condition.children:
        found |= _signals_of(child)
    return found


def outcome_signals(config: LifecycleConfig) -> frozenset[str]:
    """Signals that move a contact into the commit or won stages: an opportunity, a purchase.
    Their events are never a model input."""
    found: set[str] = set()
    for stage in config.stages:
        if stage.role in ("commit", "won"):
            found |= _signals_of(stage.enter_when)
    return frozenset(found)


def resolve_target(config: LifecycleConfig, spec: str | None = None) -> Target:
    """The target ``spec`` (default: the configuration's ``model.target``, else the won
    stage); InvalidInput when the configuration has no such stage or milestone."""
    main = [s.key for s in config.main_stages]
    roles = {s.key: s.role for s in config.stages}
    interest = next(i for i, k in enumerate(main) if roles[k] == "interest")
    candidates = {k: i for i, k in enumerate(main) if i > interest}
    chosen = spec or config.model.target or config.first_stage("won").key
    problem = target_problem(chosen, stages=candidates,
                             milestones=set(config.milestone_keys()))
    if problem is not None:
        raise InvalidInput(problem, field="target")
    lead_stages = tuple(main[interest:])
    if chosen.startswith(MILESTONE_PREFIX):
        return Target(spec=chosen, kind="milestone",
                      keys=(chosen.removeprefix(MILESTONE_PREFIX),), lead_stages=lead_stages,
                      open_stages=lead_stages)
    rank = candidates[chosen]
    return Target(spec=chosen, kind="stage", keys=tuple(main[rank:]), lead_stages=lead_stages,
                  open_stages=tuple(main[interest:rank]))


# ------------------------------------------------------------------------- reasons


@dataclass(frozen=True)
class Reason:
    feature: str
    value: FeatureValue
    reference: FeatureValue
    log_odds: float  # what this input adds to the log-odds, against its reference value
    effect: float  # probability with the input as it is − with the reference value

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": _rounded(self.value),
                "reference": _rounded(self.reference),
                "log_odds": round(self.log_odds, 4), "effect": round(self.effect, 4),
                "direction": "up" if self.log_odds > 0 else "down"}


def _rounded(value: FeatureValue) -> FeatureValue:
    return round(value, 2) if isinstance(value, float) else value


def references(rows: LabelledRows) -> dict[str, FeatureValue]:
    """Each input's reference value in ``rows``: the median of a number (None when it is
    always missing), the most frequent category (ties: the first in sorted order)."""
    out: dict[str, FeatureValue] = {}
    for feature in rows.features:
        values = rows.columns[feature.name]
        if feature.kind == CATEGORY:
            counts = Counter(str(v) for v in values)
            out[feature.name] = min(counts, key=lambda v: (-counts[v], v)) if counts \
                else MISSING
        else:
            present = sorted(float(v) for v in values if v is not None
                             and not (isinstance(v, float) and math.isnan(v)))
            out[feature.name] = _median(present)
    return out


def informative(rows: LabelledRows) -> tuple[LabelledRows, tuple[str, ...]]:
    """``rows`` without the inputs that hold one value (or none) in every row: they cannot
    tell examples apart. Also, the names of those left out."""
    kept: list[Feature] = []
    constant: list[str] = []
    for feature in rows.features:
        values = rows.columns[feature.name]
        distinct = {None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                    for v in values}
        if len(distinct) > 1:
            kept.append(feature)
        else:
            constant.append(feature.name)
    return (LabelledRows(features=tuple(kept),
                         columns={f.name: rows.columns[f.name] for f in kept},
                         labels=rows.labels, times=rows.times, lines=rows.lines),
            tuple(constant))


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _logit(p: float) -> float:
    q = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(q / (1 - q))


def _same(a: FeatureValue, b: FeatureValue) -> bool:
    return a == b or (a is None and b is None)


def explain(model: FittedModel, rows: LabelledRows, refs: Mapping[str, FeatureValue], *,
            top: int = TOP_REASONS) -> list[tuple[float, list[Reason]]]:
    """The probability of each row and its ``top`` reasons (largest |log-odds| first; inputs
    at their reference value add nothing and are never a reason). One call of the model for
    all the rows and their ablations (one per input that is not at its reference value)."""
    features = rows.features
    n = len(rows)
    if n == 0:
        return []
    columns: dict[str, list[FeatureValue]] = {f.name: [] for f in features}
    ablated: list[list[int]] = []  # per row: the inputs replaced, in the order of their rows
    for i in range(n):
        own = [rows.columns[f.name][i] for f in features]
        differ = [j for j, f in enumerate(features) if not _same(own[j], refs[f.name])]
        ablated.append(differ)
        for j, f in enumerate(features):
            columns[f.name].append(own[j])
        for k in differ:
            for j, f in enumerate(features):
                columns[f.name].append(refs[f.name] if j == k else own[j])
    size = len(columns[features[0].name]) if features else n
    expanded = LabelledRows(features=features, columns=columns, labels=[False] * size,
                            times=[None] * size, lines=[0] * size)
    p = model.probabilities(expanded)
    out: list[tuple[float, list[Reason]]] = []
    at = 0
    for i in range(n):
        base = p[at]
        reasons = []
        for offset, j in enumerate(ablated[i], start=1):
            f = features[j]
            without = p[at + offset]
            delta = _logit(base) - _logit(without)
            if abs(delta) < 1e-6:
                continue
            reasons.append(Reason(feature=f.name, value=rows.columns[f.name][i],
                                  reference=refs[f.name], log_odds=delta,
                                  effect=base - without))
        at += 1 + len(ablated[i])
        reasons.sort(key=lambda r: (-abs(r.log_odds), r.feature))
        out.append((base, reasons[:top]))
    return out


# ------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class Examples:
    """The training examples of a run: rows (times: the cutoffs; lines: the contact ids),
    the contact and account inputs read, and what was not read, with why."""

    rows: LabelledRows
    columns_read: tuple[str, ...]
    not_read: tuple[tuple[str, str], ...]
    lead_at: Sequence[float]  # when each row's contact became a lead (splits keep contacts whole)


@dataclass
class TrainedModel:
    """What a model version keeps to score contacts later (stored with the version)."""

    target: str
    horizon_days: float
    features: tuple[Feature, ...]
    excluded: tuple[str, ...]  # input names the configuration excluded when it was trained
    model: FittedModel
    references: dict[str, FeatureValue]


@dataclass(frozen=True)
class ModelVersion:
    id: int
    created_at: float
    target: str
    horizon_days: float
    features: tuple[str, ...]
    metrics: dict[str, Any]
    examples: int
    positives: int
    active: bool
    trained_by: str
    details: dict[str, Any] = field(default_factory=dict)
    scored_through: float | None = None  # the last scoring pass covered changes until then


@dataclass(frozen=True)
class Prediction:
    contact_id: int
    version_id: int
    probability: float
    reasons: tuple[dict[str, Any], ...]
    scored_at: float


def feature_names(features: Sequence[Feature]) -> tuple[str, ...]:
    return tuple(f.name for f in features)
