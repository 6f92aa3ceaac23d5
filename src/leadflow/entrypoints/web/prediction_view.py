"""The contact page's "predicted conversion": the active model's probability for the contact
and its own top reasons, in the viewer's words (services/predictive.py computes them)."""

from __future__ import annotations

from typing import Any

from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.bootstrap import App
from leadflow.domain.evaluation import MISSING
from leadflow.domain.predictive_config import MILESTONE_PREFIX
from leadflow.entrypoints.web.i18n import Translate
from leadflow.services import predictive


def feature_label(name: str, _: Translate) -> str:
    fixed = {
        "contact.seniority": _("Seniority"), "contact.country": _("Country"),
        "contact.region": _("Region"), "contact.language": _("Language"),
        "contact.source": _("Source"), "contact.account_role": _("Role in the account"),
        "account.industry": _("Industry"), "account.employees": _("Employees"),
        "account.country": _("Company country"), "account.annual_revenue": _("Annual revenue"),
        "lead.days_after_creation": _("Days from first seen to lead"),
        "lead.days_as_lead": _("Days as a lead"), "events.total": _("Events so far"),
        "events.last_30d": _("Events in the last 30 days"),
        "events.days_since_first": _("Days since the first event"),
        "events.days_since_last": _("Days since the last event"),
        "events.premium": _("Premium content"),
    }
    if name in fixed:
        return fixed[name]
    family, _dot, rest = name.rpartition(".")
    if family == "events.signal":
        return _("Signal: {name}", name=rest)
    if family == "events.type":
        return _("Events: {name}", name=rest)
    if family == "events.content":
        return _("Content of maturity {name}", name=rest)
    if name.startswith("contact.attributes."):
        return _("Attribute: {name}", name=name.removeprefix("contact.attributes."))
    if name.startswith("account.attributes."):
        return _("Company attribute: {name}", name=name.removeprefix("account.attributes."))
    return name


def _known(value: Any) -> Any:
    return None if value == MISSING else value


def prediction_for(app: App, contact_id: int, _: Translate) -> dict[str, Any]:
    """What the page shows: ``state`` is none (no active model), unscored or scored."""
    found = predictive.contact_prediction(store=SqlPredictiveStore(app.engine), ctx=app.ctx,
                                          contact_id=contact_id)
    v, p = found.version, found.prediction
    if v is None:
        return {"state": "none"}
    stage, name = None, v.target
    if v.target.startswith(MILESTONE_PREFIX):
        key = v.target.removeprefix(MILESTONE_PREFIX)
        name = next((m.name for m in app.config.milestones if m.key == key), key)
    else:
        stage = v.target
    model = {"version": v.id, "stage": stage, "milestone": name, "days": v.horizon_days,
             "auc": v.metrics.get("auc"), "trained_at": v.created_at}
    if p is None:
        return {"state": "unscored", "model": model}
    reasons = [{"feature": r["feature"], "label": feature_label(r["feature"], _),
                "value": _known(r["value"]), "reference": _known(r["reference"]),
                "up": r["log_odds"] > 0, "points": abs(r["effect"]) * 100}
               for r in p.reasons]
    return {"state": "scored", "model": model, "probability": p.probability,
            "scored_at": p.scored_at, "reasons": reasons}
