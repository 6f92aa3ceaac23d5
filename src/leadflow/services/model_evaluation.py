"""Evaluate conversion models on labelled rows: one split, fixed first, the same for every model.

The split (time-ordered: the latest rows are the test part; or seeded and stratified) is drawn
from the times, labels and seed alone, before any model is fitted. The inner split, for the
models that choose or calibrate, is drawn the same way from the training part only. Each
learner is fitted on the training part and scored once on the test part.
"""

from __future__ import annotations

from collections.abc import Sequence

from leadflow.domain.errors import InvalidInput
from leadflow.domain.evaluation import (
    SPLITS,
    Evaluation,
    LabelledRows,
    Learner,
    ModelResult,
    make_split,
    metrics,
    require_both_classes,
)

TEST_SHARE = 0.2
INNER_SHARE = 0.2


def evaluate_models(*, rows: LabelledRows, learners: Sequence[Learner], split: str,
                    seed: int, test_share: float = TEST_SHARE,
                    inner_share: float = INNER_SHARE) -> Evaluation:
    """Fit each learner on the training part and measure it on the test part."""
    if split not in SPLITS:
        raise InvalidInput(f"unknown split {split!r} (allowed: {', '.join(SPLITS)})",
                           field="split")
    if split == "time":
        undated = [line for line, t in zip(rows.lines, rows.times, strict=True) if t is None]
        if len(undated) == len(rows):
            raise InvalidInput("a time-ordered split needs the time each row entered: the rows "
                               "have none (give the mapping a stage.at column, or use "
                               "--split seeded)", field="split")
        if undated:
            raise InvalidInput(f"{len(undated):,} row(s) have no time (first on line "
                               f"{undated[0]}): a time-ordered split needs one on every row",
                               field="split")
    require_both_classes(rows.labels, what="the file")
    outer = make_split(split, rows, seed=seed, test_share=test_share)
    train, test = rows.subset(outer.train), rows.subset(outer.test)
    require_both_classes(train.labels, what="the training part")
    require_both_classes(test.labels, what="the test part")
    inner = make_split(split, train, seed=seed, test_share=inner_share)
    results = []
    for learner in learners:
        model = learner.fit(train, inner=inner, seed=seed)
        results.append(ModelResult(name=learner.name, details=model.describe(),
                                   metrics=metrics(test.labels, model.probabilities(test))))
    return Evaluation(split=outer, inner=inner, seed=seed, rows=len(rows),
                      positives=sum(rows.labels), train_positives=sum(train.labels),
                      test_positives=sum(test.labels), features=rows.features,
                      results=tuple(results))
