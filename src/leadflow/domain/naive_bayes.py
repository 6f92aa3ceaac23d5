"""The baseline of CRM predictive scoring: a frequency-table naive Bayes, as Odoo CRM does it.

For each feature and each of its values, count the won and the lost rows of the training part;
a row's chances are the prior odds multiplied, feature by feature, by
``P(value | won) / P(value | lost)``, where ``P(value | won) = (won(value) + a) /
(won + a * values)`` (Laplace smoothing, ``a = 1``; Odoo adds 0.1 to each count instead).
A value never seen in training says nothing and is skipped, as in Odoo. Numbers are cut into
the deciles of their training values first; a missing value is a value of its own.
Computed in log odds, so that thirty features do not underflow.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from leadflow.domain.evaluation import (
    MISSING,
    NUMBER,
    FeatureValue,
    LabelledRows,
    Split,
    require_both_classes,
)

BINS = 10


def _edges(values: Sequence[FeatureValue], bins: int) -> list[float]:
    numbers = sorted(float(v) for v in values if v is not None)
    if not numbers:
        return []
    cuts = {numbers[min(len(numbers) - 1, (len(numbers) * k) // bins)] for k in range(1, bins)}
    return sorted(cuts)


def _bucket(value: FeatureValue, edges: list[float] | None) -> str:
    if edges is None:
        return str(value) if value is not None else MISSING
    if value is None:
        return MISSING
    return f"bin{bisect.bisect_right(edges, float(value))}"


@dataclass(frozen=True)
class _Table:
    edges: list[float] | None  # numbers: the decile cuts
    log_ratio: dict[str, float]  # value -> log P(value | won) - log P(value | lost)


@dataclass(frozen=True)
class FrequencyNaiveBayesModel:
    prior_log_odds: float
    tables: dict[str, _Table]
    smoothing: float

    def probabilities(self, rows: LabelledRows) -> list[float]:
        out = []
        for i in range(len(rows)):
            log_odds = self.prior_log_odds
            for name, table in self.tables.items():
                ratio = table.log_ratio.get(_bucket(rows.columns[name][i], table.edges))
                if ratio is not None:
                    log_odds += ratio
            out.append(_sigmoid(log_odds))
        return out

    def describe(self) -> str:
        return (f"value frequencies of {len(self.tables)} feature(s), Laplace smoothing "
                f"{self.smoothing:g}, numbers in deciles")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


@dataclass
class FrequencyNaiveBayes:
    """The learner (see the module's description)."""

    name: str = "naive Bayes (Odoo CRM)"
    smoothing: float = 1.0
    bins: int = BINS

    def fit(self, train: LabelledRows, *, inner: Split, seed: int) -> FrequencyNaiveBayesModel:
        require_both_classes(train.labels, what="the training part")
        won = sum(train.labels)
        lost = len(train) - won
        tables: dict[str, _Table] = {}
        for feature in train.features:
            values = train.columns[feature.name]
            edges = _edges(values, self.bins) if feature.kind == NUMBER else None
            counts: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
            for value, label in zip(values, train.labels, strict=True):
                counts[label][_bucket(value, edges)] += 1
            seen = set(counts[True]) | set(counts[False])
            a, k = self.smoothing, len(seen)
            tables[feature.name] = _Table(edges=edges, log_ratio={
                v: math.log((counts[True][v] + a) / (won + a * k))
                - math.log((counts[False][v] + a) / (lost + a * k)) for v in seen})
        return FrequencyNaiveBayesModel(prior_log_odds=math.log(won / lost), tables=tables,
                                        smoothing=self.smoothing)
