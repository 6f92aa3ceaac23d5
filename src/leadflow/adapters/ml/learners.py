"""The scikit-learn models: leadflow's conversion model and the one-hot logistic baseline.

leadflow's model tries a few gradient-boosted (HistGradientBoostingClassifier, categories
native) and regularised logistic candidates; each is fitted on the inner training part and
scored on the inner validation part (both from the training part: the test part is never
seen), and the best by AUC + average precision there wins. Its scores on the inner validation
part fit a Platt calibration (a logistic curve on the log odds: it moves probabilities, never
the order). The winner is then fitted again on the whole training part, and its probabilities
go through that calibration. Deterministic for a given seed: every fit and prediction runs on
one thread (``single_thread``), so that sums are added in the same order on every machine
(and on a small machine, OpenMP and BLAS threads fighting each other made fits 10x slower).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
)
from threadpoolctl import threadpool_limits

from leadflow.domain.evaluation import (
    CATEGORY,
    Feature,
    LabelledRows,
    Split,
    metrics,
    require_both_classes,
)

MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature


def matrix(rows: LabelledRows) -> np.ndarray[Any, Any]:
    """One object column per feature: categories as text, numbers as floats (NaN missing)."""
    out = np.empty((len(rows), len(rows.features)), dtype=object)
    for j, feature in enumerate(rows.features):
        values = rows.columns[feature.name]
        if feature.kind == CATEGORY:
            out[:, j] = [str(v) for v in values]
        else:
            out[:, j] = [np.nan if v is None else float(v) for v in values]
    return out


def _as_float(x: Any) -> Any:
    return np.asarray(x, dtype=float)


def _split_columns(features: Sequence[Feature]) -> tuple[list[int], list[int]]:
    cats = [j for j, f in enumerate(features) if f.kind == CATEGORY]
    nums = [j for j, f in enumerate(features) if f.kind != CATEGORY]
    return cats, nums


def _columns(features: Sequence[Feature], categories: Any, numbers: Any) -> ColumnTransformer:
    cats, nums = _split_columns(features)
    parts: list[tuple[str, Any, list[int]]] = []
    if cats:
        parts.append(("categories", categories, cats))
    if nums:
        parts.append(("numbers", numbers, nums))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def one_hot_logistic(features: Sequence[Feature], *, c: float, seed: int,
                     min_frequency: int | None = None, quantiles: int = 0) -> Pipeline:
    """Logistic regression on one-hot categories and scaled numbers (missing: the median,
    plus an indicator)."""
    encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency) \
        if min_frequency else OneHotEncoder(handle_unknown="ignore")
    steps: list[Any] = [FunctionTransformer(_as_float)]
    if quantiles:  # tames long tails, and dates beyond the training range do not extrapolate
        steps.append(QuantileTransformer(output_distribution="normal", n_quantiles=quantiles,
                                         random_state=seed))
    steps += [SimpleImputer(strategy="median", add_indicator=True), StandardScaler()]
    return make_pipeline(_columns(features, encoder, make_pipeline(*steps)),
                         LogisticRegression(C=c, max_iter=2000))


def gradient_boosting(features: Sequence[Feature], *, seed: int, trees: int,
                      leaves: int) -> Pipeline:
    cats, _ = _split_columns(features)
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                             min_frequency=5, max_categories=MAX_CATEGORIES)
    columns = _columns(features, encoder, FunctionTransformer(_as_float))
    model = HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=trees, max_leaf_nodes=leaves, min_samples_leaf=20,
        l2_regularization=1.0, early_stopping=False, random_state=seed,
        categorical_features=list(range(len(cats))) or None)
    return make_pipeline(columns, model)


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[Sequence[Feature], int, int], Pipeline]  # (features, seed, rows)


def candidates() -> list[Candidate]:
    """The candidates of leadflow's model, in the order they are tried (a tie keeps the
    first)."""
    out = [Candidate(f"gradient boosting ({trees} trees, {leaves} leaves)",
                     partial(_boosting, trees=trees, leaves=leaves))
           for trees, leaves in ((150, 8), (400, 8), (150, 31))]
    out += [Candidate(f"logistic (C={c:g})", partial(_logistic, c=c)) for c in (0.03, 0.3, 3.0)]
    return out


def _boosting(features: Sequence[Feature], seed: int, rows: int, *, trees: int,
              leaves: int) -> Pipeline:
    return gradient_boosting(features, seed=seed, trees=trees, leaves=leaves)


def _logistic(features: Sequence[Feature], seed: int, rows: int, *, c: float) -> Pipeline:
    return one_hot_logistic(features, c=c, seed=seed, min_frequency=5,
                            quantiles=max(2, min(200, rows)))


def single_thread() -> threadpool_limits:
    return threadpool_limits(limits=1)


def _fit(model: Pipeline, rows: LabelledRows) -> Pipeline:
    with single_thread():
        model.fit(matrix(rows), np.asarray(rows.labels, dtype=int))
    return model


def _positive(model: Pipeline, rows: LabelledRows) -> np.ndarray[Any, Any]:
    with single_thread():
        return np.asarray(model.predict_proba(matrix(rows))[:, 1], dtype=float)


def _logit(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=float).reshape(-1, 1)


@dataclass
class PipelineModel:
    model: Pipeline
    description: str
    calibration: LogisticRegression | None = None

    def probabilities(self, rows: LabelledRows) -> list[float]:
        p = _positive(self.model, rows)
        if self.calibration is not None:
            p = self.calibration.predict_proba(_logit(p))[:, 1]
        return [float(v) for v in p]

    def describe(self) -> str:
        return self.description


@dataclass
class OneHotLogistic:
    """The plain baseline: one-hot categories, scaled numbers, C = 1, no choice, no
    calibration."""

    name: str = "one-hot logistic regression"

    def fit(self, train: LabelledRows, *, inner: Split, seed: int) -> PipelineModel:
        require_both_classes(train.labels, what="the training part")
        model = _fit(one_hot_logistic(train.features, c=1.0, seed=seed), train)
        return PipelineModel(model, "C=1, one-hot categories, numbers scaled, median for missing")


@dataclass
class LeadflowModel:
    """leadflow's model: the best candidate on the inner split, Platt-calibrated there."""

    name: str = "leadflow"
    choices: list[Candidate] = field(default_factory=candidates)

    def fit(self, train: LabelledRows, *, inner: Split, seed: int) -> PipelineModel:
        fitting, validation = train.subset(inner.train), train.subset(inner.test)
        where = "the inner training part" if inner.kind == "seeded" else \
            "the inner training part (the earlier rows of the training part)"
        require_both_classes(fitting.labels, what=where)
        require_both_classes(validation.labels, what="the inner validation part")
        best: tuple[float, Candidate, np.ndarray[Any, Any]] | None = None
        tried: list[str] = []
        for candidate in self.choices:
            model = _fit(candidate.build(train.features, seed, len(fitting)), fitting)
            p = _positive(model, validation)
            m = metrics(validation.labels, [float(v) for v in p])
            tried.append(f"{candidate.name}: AUC {m.auc:.3f}, AP {m.average_precision:.3f}")
            score = m.auc + m.average_precision
            if best is None or score > best[0] + 1e-12:
                best = (score, candidate, p)
        assert best is not None
        _, chosen, p_valid = best
        calibration = LogisticRegression(C=1e4, max_iter=1000)
        calibration.fit(_logit(p_valid), np.asarray(validation.labels, dtype=int))
        final = _fit(chosen.build(train.features, seed, len(train)), train)
        description = (f"chose {chosen.name} on the inner validation part "
                       f"({len(validation):,} rows; {'; '.join(tried)}); Platt-calibrated "
                       "there, then refitted on the whole training part")
        return PipelineModel(final, description, calibration)
