"""Model evaluation: the metrics (against scikit-learn's), the splits, the naive Bayes baseline,
and leadflow's model beating both baselines where conversion depends on known features."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from leadflow.adapters.ml.learners import LeadflowModel, OneHotLogistic
from leadflow.domain.errors import InvalidInput
from leadflow.domain.evaluation import (
    CATEGORY,
    NUMBER,
    Feature,
    LabelledRows,
    average_precision,
    brier,
    lift_at_top,
    roc_auc,
    seeded_split,
    time_split,
)
from leadflow.domain.naive_bayes import FrequencyNaiveBayes
from leadflow.services.model_evaluation import evaluate_models

REGIONS = ("north", "south", "east", "west")
CHANNELS = ("ads", "organic", "referral")


def generated_leads(n: int, *, seed: int) -> list[dict[str, object]]:
    """Leads whose conversion depends on known features, partly through an interaction (a
    region converts from ads, the others from other channels) that neither a per-feature
    frequency table nor a linear model on one-hot values can express."""
    rng = random.Random(seed)
    start = date(2023, 1, 1)
    out = []
    for i in range(n):
        region, channel = rng.choice(REGIONS), rng.choice(CHANNELS)
        visits = rng.randint(0, 20)
        fits = (region in ("north", "east")) == (channel == "ads")
        logit = -2.0 + 3.0 * fits + 0.12 * (visits - 10) + rng.gauss(0, 0.3)
        won = rng.random() < 1 / (1 + math.exp(-logit))
        out.append({"id": f"L{i:05d}", "region": region, "channel": channel, "visits": visits,
                    "signup": (start + timedelta(days=i * 365 // n)).isoformat(),
                    "status": "won" if won else "lost", "converted": int(won)})
    return out


def as_rows(leads: list[dict[str, object]]) -> LabelledRows:
    features = (Feature("region", CATEGORY, "region"), Feature("channel", CATEGORY, "channel"),
                Feature("visits", NUMBER, "visits"))
    return LabelledRows(
        features=features,
        columns={"region": [str(r["region"]) for r in leads],
                 "channel": [str(r["channel"]) for r in leads],
                 "visits": [float(str(r["visits"])) for r in leads]},
        labels=[bool(r["converted"]) for r in leads],
        times=[float(date.fromisoformat(str(r["signup"])).toordinal()) for r in leads],
        lines=list(range(2, len(leads) + 2)))


def test_metrics_equal_scikit_learns_with_ties() -> None:
    rng = random.Random(3)
    labels = [rng.random() < 0.3 for _ in range(500)]
    scores = [round(rng.random() * 0.5 + 0.4 * y, 1) for y in labels]  # many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12)
    assert brier(labels, scores) == pytest.approx(brier_score_loss(labels, scores), abs=1e-12)


def test_lift_at_top_decile() -> None:
    labels = [True, True, False, False, False, False, False, False, False, False] * 2
    scores = [0.9 - i / 100 for i in range(20)]
    # the top 2 of 20 rows: the first two (converted, then converted) -> rate 1 over 0.2
    assert lift_at_top(labels, scores) == pytest.approx(5.0)
    # all tied: the decile holds a tenth of every row, so the lift is 1
    assert lift_at_top(labels, [0.5] * 20) == pytest.approx(1.0)


def test_time_split_tests_on_the_latest_rows_and_keeps_equal_times_together() -> None:
    times = [5.0, 1.0, 3.0, 3.0, 2.0, 4.0, 5.0, 3.0, 0.0, 1.0]
    split = time_split(times, test_share=0.2)
    assert split.cutoff == 5.0
    assert sorted(split.test) == [0, 6]
    assert max(times[i] for i in split.train) < min(times[i] for i in split.test)
    wider = time_split(times, test_share=0.5)  # the cut falls inside the 3s: all go to test
    assert sorted(times[i] for i in wider.test) == [3.0, 3.0, 3.0, 4.0, 5.0, 5.0]


def test_seeded_split_is_fixed_by_its_seed_and_keeps_the_base_rate() -> None:
    labels = [i % 4 == 0 for i in range(400)]
    first = seeded_split(labels, seed=1, test_share=0.2)
    assert first == seeded_split(labels, seed=1, test_share=0.2)
    assert first != seeded_split(labels, seed=2, test_share=0.2)
    assert len(first.test) == 80
    assert sum(labels[i] for i in first.test) == 20
    assert not set(first.train) & set(first.test)


def test_naive_bayes_multiplies_smoothed_value_frequencies() -> None:
    rows = LabelledRows(features=(Feature("c", CATEGORY, "c"),),
                        columns={"c": ["a", "a", "a", "b", "b", "b"]},
                        labels=[True, True, False, False, False, True], times=[None] * 6,
                        lines=list(range(6)))
    model = FrequencyNaiveBayes().fit(rows, inner=seeded_split(rows.labels, seed=1,
                                                               test_share=0.3), seed=1)
    # prior 3:3; P(a|won) = (2+1)/(3+2), P(a|lost) = (1+1)/(3+2) -> odds 3:2
    probe = LabelledRows(features=rows.features, columns={"c": ["a", "b", "never seen"]},
                         labels=[True, False, True], times=[None] * 3, lines=[1, 2, 3])
    assert model.probabilities(probe) == pytest.approx([0.6, 0.4, 0.5])


def test_both_classes_are_required() -> None:
    rows = as_rows(generated_leads(50, seed=1))
    none_won = LabelledRows(features=rows.features, columns=rows.columns,
                            labels=[False] * len(rows), times=rows.times, lines=rows.lines)
    with pytest.raises(InvalidInput, match="the file has no positive label in 50 row"):
        evaluate_models(rows=none_won, learners=[OneHotLogistic()], split="seeded", seed=1)


def test_leadflow_beats_both_baselines_where_conversion_depends_on_known_features() -> None:
    rows = as_rows(generated_leads(2000, seed=11))
    for split in ("time", "seeded"):
        result = evaluate_models(rows=rows, split=split, seed=5, learners=[
            LeadflowModel(), FrequencyNaiveBayes(), OneHotLogistic()])
        ours, bayes, logistic = (r.metrics for r in result.results)
        assert "gradient boosting" in result.results[0].details.split(" on the")[0]
        for baseline in (bayes, logistic):
            assert ours.auc > baseline.auc + 0.05, (split, ours, baseline)
            assert ours.average_precision > baseline.average_precision + 0.05
            assert ours.brier < baseline.brier
        assert 0.0 < ours.brier < 0.25
        assert ours.lift_top_decile > 1.5
