"""Evaluating a conversion model on labelled rows: the rows, the splits, the metrics (pure).

The split is fixed from the labels, times and seed alone, before any model sees a row, and the
inner split (for choosing and calibrating a model) is taken from the training part only; the
test part is scored once, at the end.

Metrics, on the test part:

- ``auc``: ROC AUC, the chance that a random positive scores above a random negative (ties
  count one half).
- ``average_precision``: the mean of the precision at each positive, walking down the scores
  (rows with equal scores taken together), as scikit-learn defines it.
- ``brier``: the mean squared difference between probability and outcome (lower is better).
- ``lift_top_decile``: the conversion rate among the 10 % best-scored rows over the overall
  rate; rows tied at the cut count by the share of them that fits in the decile.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from leadflow.domain.errors import InvalidInput

CATEGORY = "category"
NUMBER = "number"
MISSING = "(missing)"  # the category of a missing value
SPLITS = ("time", "seeded")

FeatureValue = str | float | None


@dataclass(frozen=True)
class Feature:
    """One model input: a category (text, ``MISSING`` when absent) or a number (None)."""

    name: str
    kind: str  # CATEGORY or NUMBER
    source: str  # the column (or attribute) it is read from


@dataclass(frozen=True)
class LabelledRows:
    """Rows with their features (by column), outcome, time and origin (a file line)."""

    features: tuple[Feature, ...]
    columns: Mapping[str, Sequence[FeatureValue]]
    labels: Sequence[bool]
    times: Sequence[float | None]
    lines: Sequence[int]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: Sequence[int]) -> LabelledRows:
        return LabelledRows(
            features=self.features,
            columns={name: [values[i] for i in rows] for name, values in self.columns.items()},
            labels=[self.labels[i] for i in rows], times=[self.times[i] for i in rows],
            lines=[self.lines[i] for i in rows])


@dataclass(frozen=True)
class Split:
    """Row indices of the two parts; a time split also says where it cut."""

    kind: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    cutoff: float | None = None  # time split: the test part is the rows at or after this


def require_both_classes(labels: Sequence[bool], *, what: str) -> None:
    """InvalidInput unless ``labels`` hold at least one positive and one negative."""
    positives = sum(labels)
    if positives == 0 or positives == len(labels):
        only = "no positive" if positives == 0 else "no negative"
        raise InvalidInput(f"{what} has {only} label in {len(labels):,} row(s): a model needs "
                           "both converted and not converted examples", field="label")


def time_split(times: Sequence[float | None], *, test_share: float) -> Split:
    """The latest ``test_share`` of the rows (by time) are the test part; rows with the same
    time stay together, on the test side of the cut. Every row needs a time."""
    if any(t is None for t in times):
        raise InvalidInput("a time-ordered split needs a time on every row", field="split")
    dated = [t for t in times if t is not None]
    if len(dated) < 2:
        raise InvalidInput("a split needs at least two rows", field="split")
    ordered = sorted(dated)
    cut_at = min(max(1, math.ceil(len(ordered) * (1 - test_share))), len(ordered) - 1)
    cutoff = ordered[cut_at]
    train = tuple(i for i, t in enumerate(dated) if t < cutoff)
    test = tuple(i for i, t in enumerate(dated) if t >= cutoff)
    if not train:
        raise InvalidInput("every row has the same time: a time-ordered split cannot cut",
                           field="split")
    return Split(kind="time", train=train, test=test, cutoff=cutoff)


def seeded_split(labels: Sequence[bool], *, seed: int, test_share: float) -> Split:
    """A random ``test_share`` of each class (so both parts keep the base rate), drawn with
    ``seed``: the same seed gives the same split."""
    rng = random.Random(seed)
    test: list[int] = []
    for cls in (False, True):
        members = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(members)
        test += members[:round(len(members) * test_share)]
    chosen = set(test)
    return Split(kind="seeded", train=tuple(i for i in range(len(labels)) if i not in chosen),
                 test=tuple(sorted(chosen)))


def make_split(kind: str, rows: LabelledRows, *, seed: int, test_share: float) -> Split:
    if kind == "time":
        return time_split(rows.times, test_share=test_share)
    if kind == "seeded":
        return seeded_split(rows.labels, seed=seed, test_share=test_share)
    raise InvalidInput(f"unknown split {kind!r} (allowed: {', '.join(SPLITS)})", field="split")


# --- metrics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    auc: float
    average_precision: float
    brier: float
    lift_top_decile: float


def _groups(labels: Sequence[bool], scores: Sequence[float]) -> list[tuple[int, int]]:
    """(positives, rows) of each distinct score, best score first."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out: list[tuple[int, int]] = []
    previous: float | None = None
    for i in order:
        if previous is None or scores[i] != previous:
            out.append((0, 0))
            previous = scores[i]
        pos, n = out[-1]
        out[-1] = (pos + int(labels[i]), n + 1)
    return out


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    require_both_classes(labels, what="the scored part")
    positives = sum(labels)
    negatives = len(labels) - positives
    wins = 0.0
    negatives_below = negatives
    for pos, n in _groups(labels, scores):
        neg = n - pos
        negatives_below -= neg
        wins += pos * (negatives_below + neg / 2)
    return wins / (positives * negatives)


def average_precision(labels: Sequence[bool], scores: Sequence[float]) -> float:
    require_both_classes(labels, what="the scored part")
    positives = sum(labels)
    total = 0.0
    seen = hits = 0
    for pos, n in _groups(labels, scores):
        seen += n
        hits += pos
        total += (pos / positives) * (hits / seen)
    return total


def brier(labels: Sequence[bool], probabilities: Sequence[float]) -> float:
    return sum((p - float(y)) ** 2 for y, p in zip(labels, probabilities, strict=True)) \
        / len(labels)


def lift_at_top(labels: Sequence[bool], scores: Sequence[float], *, share: float = 0.1) -> float:
    require_both_classes(labels, what="the scored part")
    room = max(1, math.ceil(len(labels) * share))
    taken = 0.0
    converted = 0.0
    for pos, n in _groups(labels, scores):
        if taken >= room:
            break
        part = min(1.0, (room - taken) / n)
        taken += n * part
        converted += pos * part
    return (converted / taken) / (sum(labels) / len(labels))


def metrics(labels: Sequence[bool], probabilities: Sequence[float]) -> Metrics:
    return Metrics(auc=roc_auc(labels, probabilities),
                   average_precision=average_precision(labels, probabilities),
                   brier=brier(labels, probabilities),
                   lift_top_decile=lift_at_top(labels, probabilities))


# --- models, as the evaluation sees them ----------------------------------------------------


class FittedModel(Protocol):
    def probabilities(self, rows: LabelledRows) -> list[float]:
        """The probability of conversion of each row."""
        ...

    def describe(self) -> str:
        """What was fitted (for a chosen model: which candidate, and why)."""
        ...


class Learner(Protocol):
    name: str

    def fit(self, train: LabelledRows, *, inner: Split, seed: int) -> FittedModel:
        """A model learnt from ``train`` alone; ``inner`` splits ``train`` for choosing and
        calibrating, if the learner does either."""
        ...


@dataclass(frozen=True)
class ModelResult:
    name: str
    metrics: Metrics
    details: str = ""


@dataclass(frozen=True)
class Evaluation:
    split: Split
    inner: Split
    seed: int
    rows: int
    positives: int
    train_positives: int
    test_positives: int
    features: tuple[Feature, ...]
    results: tuple[ModelResult, ...] = field(default=())
