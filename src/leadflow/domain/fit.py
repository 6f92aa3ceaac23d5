"""Fit scoring: who a contact is, against weighted buyer-persona criteria, and exclusions."""

from __future__ import annotations

from typing import Any

from leadflow.domain.config import Criterion, FitConfig
from leadflow.domain.model import Account, Contact, FitResult

GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}


def grade_at_least(grade: str, minimum: str) -> bool:
    return GRADE_ORDER[grade] <= GRADE_ORDER[minimum]


def field_value(path: str, contact: Contact, account: Account | None) -> Any:
    owner, name = path.split(".", 1)
    target: Any = contact if owner == "contact" else account
    if target is None:
        return None
    if name.startswith("attributes."):
        return target.attributes.get(name.split(".", 1)[1])
    return getattr(target, name, None)


def _criterion_met(c: Criterion, value: Any) -> bool | None:
    """True/False, or None when the value is unknown."""
    if value is None or value == "":
        return None
    if c.values is not None:
        return str(value).strip().lower() in c.values
    assert c.between is not None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return c.between[0] <= number <= c.between[1]


def grade_for(score: float, config: FitConfig) -> str:
    for grade, threshold in config.grade_thresholds:
        if score >= threshold:
            return grade
    return "D"


def score_fit(contact: Contact, account: Account | None, config: FitConfig) -> FitResult:
    """Best persona's weighted score (0-100), its grade, and why; exclusions grade D."""
    for x in config.exclusions:
        value = field_value(x.field, contact, account)
        if value is not None and str(value).strip().lower() in x.values:
            return FitResult(
                score=0.0, grade="D", persona=None, excluded_by=x.key, exclusion_reason=x.reason,
                breakdown=[{"criterion": x.field, "label": x.reason, "points": 0.0,
                            "value": value, "excluded": True}],
            )
    best: FitResult | None = None
    for persona in config.personas:
        total = sum(c.weight for c in persona.criteria)
        points = 0.0
        parts: list[dict[str, Any]] = []
        unknown: list[str] = []
        for c in persona.criteria:
            value = field_value(c.field, contact, account)
            met = _criterion_met(c, value)
            gained = 100.0 * c.weight / total if met else 0.0
            points += gained
            if met is None:
                unknown.append(c.field)
            parts.append({"criterion": c.field, "label": c.label or c.field,
                          "points": round(gained, 6), "value": value, "met": met})
        score = round(points, 6)
        if best is None or score > best.score:
            best = FitResult(score=score, grade=grade_for(score, config), persona=persona.key,
                             breakdown=parts, unknown=unknown)
    return best or FitResult()


def persona_min_grade(result: FitResult, config: FitConfig) -> str:
    for p in config.personas:
        if p.key == result.persona:
            return p.min_grade
    return "A"
