"""The predictive conversion score: train on the install's own history, keep each run as a
version, activate one, score contacts incrementally, explain each score.

What an example is, its cutoff, its label and what is never read: ``domain/predictive.py``.

**Training** (``train``): the examples are ordered by the time their contact became a
lead; the latest 20 % are the test part (a contact's snapshots all on one side). The learner
(leadflow's model: boosted trees or regularised logistic regression, chosen and
Platt-calibrated on the latest 20 % of the training part) is fitted on the rest and measured
once on the test part — AUC, average precision, Brier score, lift at the top decile — beside a
plain one-hot logistic baseline fitted on the same part. The version then keeps the same
learner fitted on every example (the most recent history included); its metrics are those of
the held-out run.

**Scoring** (``score``): after activation every contact the model scores is scored (a full
pass); afterwards a pass scores only the contacts changed since the previous one (their events,
attributes or stage, or their account) and forgets the prediction of a contact that left the
scored population (converted, excluded, erased).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import InvalidInput, NotFound
from leadflow.domain.evaluation import (
    Feature,
    LabelledRows,
    Learner,
    Metrics,
    metrics,
    require_both_classes,
    time_split,
)
from leadflow.domain.ports import Progress
from leadflow.domain.predictive import (
    Examples,
    ModelVersion,
    Prediction,
    Target,
    TrainedModel,
    explain,
    informative,
    references,
    resolve_target,
)
from leadflow.services.context import Context

TEST_SHARE = 0.2
INNER_SHARE = 0.2
MIN_EXAMPLES = 50
BATCH = 1000  # contacts per scoring batch
ALL = 2**62


class PredictiveStore(Protocol):
    """The history, model versions and predictions (adapters/ml/store.py)."""

    def training_rows(self, *, config: LifecycleConfig, target: Target, horizon_days: float,
                      now: float, exclude: Sequence[str]) -> Examples: ...

    def scoring_rows(self, *, config: LifecycleConfig, target: Target,
                     features: Sequence[Feature], excluded: Sequence[str], now: float,
                     contact_ids: Sequence[int]) -> LabelledRows: ...

    def scorable_ids(self, *, target: Target, after: int, limit: int) -> list[int]: ...

    def changed_ids(self, *, since: float) -> list[int]: ...

    def add_version(self, *, model: TrainedModel, created_at: float, metrics: dict[str, object],
                    details: dict[str, object], examples: int, positives: int,
                    trained_by: str) -> int: ...

    def versions(self) -> list[ModelVersion]: ...

    def version(self, version_id: int) -> ModelVersion | None: ...

    def active_version(self) -> ModelVersion | None: ...

    def load_model(self, version: ModelVersion) -> TrainedModel: ...

    def activate(self, version_id: int) -> None: ...

    def mark_scored(self, version_id: int, through: float) -> None: ...

    def save_predictions(self, predictions: Sequence[Prediction], *,
                         forget: Sequence[int] = ()) -> None: ...

    def forget_older(self, version_id: int, before: float) -> int: ...

    def prediction(self, contact_id: int, version_id: int) -> Prediction | None: ...

    def count(self, version_id: int) -> int: ...


# ------------------------------------------------------------------------- training


def _metrics(m: Metrics) -> dict[str, float]:
    return {"auc": round(m.auc, 4), "average_precision": round(m.average_precision, 4),
            "brier": round(m.brier, 4), "lift_top_decile": round(m.lift_top_decile, 3)}


def _check(rows: LabelledRows, *, target: str, horizon_days: float) -> None:
    if len(rows) < MIN_EXAMPLES:
        raise InvalidInput(
            f"only {len(rows):,} contact(s) became a lead at least {horizon_days:g} days ago: "
            f"a model needs at least {MIN_EXAMPLES} examples whose horizon has passed "
            "(wait for more history, or train with a shorter --horizon-days)", field="history")
    positives = sum(rows.labels)
    if positives == 0 or positives == len(rows):
        which = "reached" if positives else "did not reach"
        raise InvalidInput(f"every one of the {len(rows):,} examples {which} {target} within "
                           f"{horizon_days:g} days: a model needs both kinds", field="history")


def train(*, store: PredictiveStore, ctx: Context, learner: Learner,
          baseline: Learner | None, trained_by: str, progress: Progress,
          target: str | None = None, horizon_days: float | None = None,
          seed: int = 7) -> ModelVersion:
    """Train on the history, measure on its latest examples, store the version (inactive)."""
    config = ctx.config
    goal = resolve_target(config, target)
    horizon = horizon_days if horizon_days is not None else config.model.horizon_days
    if horizon <= 0:
        raise InvalidInput("the horizon must be more than 0 days", field="horizon_days")
    now = ctx.clock.now()
    steps = 5 if baseline is not None else 4
    progress.start("training the conversion model", steps)
    try:
        examples = store.training_rows(config=config, target=goal, horizon_days=horizon,
                                       now=now, exclude=config.model.exclude)
        rows, constant = informative(examples.rows)
        _check(rows, target=goal.spec, horizon_days=horizon)
        progress.advance(1)
        # By the time each contact became a lead: a contact's snapshots stay on one side.
        lead_at = list(examples.lead_at)
        outer = time_split(lead_at, test_share=TEST_SHARE)
        train_part, test_part = rows.subset(outer.train), rows.subset(outer.test)
        require_both_classes(train_part.labels, what="the earlier examples (training part)")
        require_both_classes(test_part.labels, what="the latest examples (test part)")
        inner = time_split([lead_at[i] for i in outer.train], test_share=INNER_SHARE)
        held_out = learner.fit(train_part, inner=inner, seed=seed)
        measured = metrics(test_part.labels, held_out.probabilities(test_part))
        progress.advance(1)
        compared: dict[str, Any] | None = None
        if baseline is not None:
            base_model = baseline.fit(train_part, inner=inner, seed=seed)
            compared = {"name": baseline.name, **_metrics(metrics(
                test_part.labels, base_model.probabilities(test_part)))}
            progress.advance(1)
        final = learner.fit(rows, inner=time_split(lead_at, test_share=INNER_SHARE),
                            seed=seed)
        progress.advance(1)
        trained = TrainedModel(target=goal.spec, horizon_days=horizon, features=rows.features,
                               excluded=tuple(config.model.exclude), model=final,
                               references=references(rows))
        figures: dict[str, object] = {
            **_metrics(measured), "baseline": compared,
            "test": {"examples": len(test_part), "positives": sum(test_part.labels),
                     "contacts": len(set(test_part.lines)), "leads_from": outer.cutoff},
            "train": {"examples": len(train_part), "positives": sum(train_part.labels),
                      "contacts": len(set(train_part.lines))},
        }
        details: dict[str, object] = {
            "model": final.describe(), "held_out_model": held_out.describe(), "seed": seed,
            "config_version": config.config_version,
            "excluded": list(config.model.exclude),
            "columns_read": list(examples.columns_read),
            "not_read": [{"what": w, "why": y} for w, y in examples.not_read],
            "constant": list(constant),
            "cutoff": "the first time the contact entered "
                      f"{' or '.join(goal.lead_stages)}",
            "first_cutoff": rows.times[0], "last_cutoff": rows.times[-1],
        }
        version_id = store.add_version(model=trained, created_at=now, metrics=figures,
                                       details=details, examples=len(rows),
                                       positives=sum(rows.labels), trained_by=trained_by)
        progress.advance(1)
    finally:
        progress.finish()
    found = store.version(version_id)
    assert found is not None
    return found


# ------------------------------------------------------------------------- versions


def list_versions(*, store: PredictiveStore) -> list[ModelVersion]:
    return store.versions()


def _version(store: PredictiveStore, version_id: int) -> ModelVersion:
    found = store.version(version_id)
    if found is None:
        raise NotFound(f"no model version {version_id}", field="version")
    return found


@dataclass(frozen=True)
class ScoreReport:
    version_id: int | None
    full: bool
    considered: int  # contacts looked at (changed ones, or every scored one)
    scored: int
    forgotten: int  # predictions removed: their contacts left the scored population


def activate(*, store: PredictiveStore, ctx: Context, version_id: int,
             score_now: bool = True, progress: Progress) -> ScoreReport:
    """Make ``version_id`` the active model (the only one); with ``score_now``, score every
    contact at once, else the next scoring pass (the worker's, each minute) does."""
    version = _version(store, version_id)
    try:
        resolve_target(ctx.config, version.target)
    except InvalidInput as exc:
        raise InvalidInput(f"version {version_id} predicts {version.target!r}, which the "
                           f"lifecycle configuration no longer has: {exc.message}",
                           field="version") from None
    store.load_model(version)  # fails here, not in the worker, if it cannot be read
    store.activate(version_id)
    if not score_now:
        return ScoreReport(version_id=version_id, full=True, considered=0, scored=0,
                           forgotten=0)
    return score(store=store, ctx=ctx, progress=progress)


# ------------------------------------------------------------------------- scoring


def _predict(model: TrainedModel, version_id: int, rows: LabelledRows, now: float
             ) -> list[Prediction]:
    explained = explain(model.model, rows, model.references)
    return [Prediction(contact_id=cid, version_id=version_id, probability=round(p, 6),
                       reasons=tuple(r.as_dict() for r in reasons), scored_at=now)
            for cid, (p, reasons) in zip(rows.lines, explained, strict=True)]


def _score_ids(store: PredictiveStore, ctx: Context, version: ModelVersion,
               model: TrainedModel, target: Target, ids: Sequence[int], now: float
               ) -> tuple[int, int]:
    rows = store.scoring_rows(config=ctx.config, target=target, features=model.features,
                              excluded=model.excluded, now=now, contact_ids=ids)
    predictions = _predict(model, version.id, rows, now)
    kept = set(rows.lines)
    gone = [cid for cid in ids if cid not in kept]
    store.save_predictions(predictions, forget=gone)
    return len(predictions), len(gone)


def score(*, store: PredictiveStore, ctx: Context, progress: Progress,
          full: bool = False) -> ScoreReport:
    """Score with the active model: every contact it scores when ``full`` or when nothing was
    scored since activation, else the contacts changed since the previous pass."""
    version = store.active_version()
    if version is None:
        return ScoreReport(version_id=None, full=full, considered=0, scored=0, forgotten=0)
    model = store.load_model(version)
    target = resolve_target(ctx.config, version.target)
    started = ctx.clock.now()
    scored = forgotten = considered = 0
    full = full or version.scored_through is None
    try:
        if full:
            ids = store.scorable_ids(target=target, after=0, limit=ALL)
            what = "scoring every contact"
        else:
            assert version.scored_through is not None
            ids = store.changed_ids(since=version.scored_through)
            what = "scoring the contacts changed since the last pass"
        considered = len(ids)
        progress.start(f"{what} (model version {version.id})", len(ids))
        for i in range(0, len(ids), BATCH):
            part = ids[i:i + BATCH]
            done, gone = _score_ids(store, ctx, version, model, target, part, started)
            scored, forgotten = scored + done, forgotten + gone
            progress.advance(len(part))
        if full:
            forgotten += store.forget_older(version.id, started)
        store.mark_scored(version.id, started)
    finally:
        progress.finish()
    return ScoreReport(version_id=version.id, full=full, considered=considered, scored=scored,
                       forgotten=forgotten)


# ------------------------------------------------------------------------- one contact


@dataclass(frozen=True)
class ContactPrediction:
    """A contact's predicted conversion, or why it has none (``prediction`` None)."""

    version: ModelVersion | None
    prediction: Prediction | None
    why_none: str | None = None

    def as_dict(self) -> dict[str, Any]:
        v, p = self.version, self.prediction
        return {
            "model": None if v is None else {
                "version": v.id, "target": v.target, "horizon_days": v.horizon_days,
                "trained_at": v.created_at, "auc": v.metrics.get("auc"),
                "average_precision": v.metrics.get("average_precision")},
            "probability": None if p is None else p.probability,
            "reasons": [] if p is None else list(p.reasons),
            "scored_at": None if p is None else p.scored_at,
            "why_none": self.why_none,
        }


def contact_prediction(*, store: PredictiveStore, ctx: Context, contact_id: int,
                       fresh: bool = False, save: bool = False) -> ContactPrediction:
    """The active model's prediction for a contact: the stored one, else (or with ``fresh``)
    computed now — and stored with ``save``. The caller checks the contact's access first."""
    version = store.active_version()
    if version is None:
        return ContactPrediction(None, None, "no model is active")
    if not fresh:
        stored = store.prediction(contact_id, version.id)
        if stored is not None:
            return ContactPrediction(version, stored)
    model = store.load_model(version)
    target = resolve_target(ctx.config, version.target)
    now = ctx.clock.now()
    rows = store.scoring_rows(config=ctx.config, target=target, features=model.features,
                              excluded=model.excluded, now=now, contact_ids=[contact_id])
    if not len(rows):
        if save:
            store.save_predictions([], forget=[contact_id])
        return ContactPrediction(version, None, (
            f"not scored: the model scores contacts in {', '.join(target.open_stages)} that "
            f"have not reached {target.spec}"))
    [prediction] = _predict(model, version.id, rows, now)
    if save:
        store.save_predictions([prediction])
    return ContactPrediction(version, prediction)


def version_summary(version: ModelVersion) -> dict[str, Any]:
    """A version as the API and the CLI show it (no model bytes)."""
    out = asdict(version)
    out["features"] = list(version.features)
    return out
