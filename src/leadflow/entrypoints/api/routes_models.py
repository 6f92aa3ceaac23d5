"""REST: the predictive conversion score — a contact's probability with its own reasons (for
whoever may see the contact), the trained model versions and the choice of the active one
(admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.domain.ports import NullProgress
from leadflow.entrypoints.api.auth import Admin, AppDep, ContactReader
from leadflow.services import predictive
from leadflow.services.common import load_contact

router = APIRouter(prefix="/api/v1", tags=["predictive"])


class ReasonRead(BaseModel):
    feature: str = Field(description="The input, e.g. contact.seniority, events.signal.pricing")
    value: str | float | None = Field(description="The contact's value now")
    reference: str | float | None = Field(
        description="Its typical value in the training examples (median, most frequent)")
    log_odds: float = Field(description="What the value adds to the log-odds against the "
                                        "typical value (negative: it lowers the chance)")
    effect: float = Field(description="Probability as it is − with the typical value")
    direction: str = Field(description="up | down")


class ModelRef(BaseModel):
    version: int
    target: str
    horizon_days: float
    trained_at: float
    auc: float | None
    average_precision: float | None


class PredictionRead(BaseModel):
    model: ModelRef | None = Field(description="The active model (null: none is active)")
    probability: float | None = Field(
        description="Calibrated probability of reaching the target within the horizon")
    reasons: list[ReasonRead] = Field(description="The contact's own top reasons, largest "
                                                  "first")
    scored_at: float | None
    why_none: str | None = Field(description="Why there is no probability, when there is none")


class VersionRead(BaseModel):
    id: int
    created_at: float
    target: str
    horizon_days: float
    features: list[str]
    metrics: dict[str, Any] = Field(description="AUC, average precision, Brier score and lift "
                                                "at the top decile on the held-out latest "
                                                "leads, and the baseline's")
    examples: int
    positives: int
    active: bool
    trained_by: str
    details: dict[str, Any]
    scored_through: float | None


class ActivatedRead(VersionRead):
    scoring: str


@router.get("/contacts/{contact_id}/prediction", response_model=PredictionRead)
def prediction_get(contact_id: int, app: AppDep, _: ContactReader) -> dict[str, Any]:
    """The active model's probability that the contact reaches its target within the horizon,
    with the contact's own top reasons (the stored score, else one computed now)."""
    with app.reader() as uow:
        load_contact(uow, contact_id)  # 404 (or merged) for everyone, admins included
    found = predictive.contact_prediction(store=SqlPredictiveStore(app.engine), ctx=app.ctx,
                                          contact_id=contact_id)
    return found.as_dict()


@router.get("/models", response_model=list[VersionRead])
def models_list(app: AppDep, _: Admin) -> list[dict[str, Any]]:
    """Every trained version (``leadflow model train``) with its metrics; one may be
    active."""
    return [predictive.version_summary(v)
            for v in predictive.list_versions(store=SqlPredictiveStore(app.engine))]


@router.post("/models/{version_id}/activate", response_model=ActivatedRead)
def models_activate(version_id: int, app: AppDep, _: Admin) -> dict[str, Any]:
    """Make this version the active model (the only one). The worker's next scoring pass
    (each minute) scores every contact with it; until then a contact's prediction is
    computed when asked."""
    store = SqlPredictiveStore(app.engine)
    predictive.activate(store=store, ctx=app.ctx, version_id=version_id, score_now=False,
                        progress=NullProgress())
    found = store.version(version_id)
    assert found is not None
    return {**predictive.version_summary(found),
            "scoring": "every contact, by the worker's next pass"}
