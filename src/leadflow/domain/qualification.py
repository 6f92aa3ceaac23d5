"""Qualification: BANT and the product's own prerequisites, as configured questions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from leadflow.domain.config import Question
from leadflow.domain.errors import InvalidInput
from leadflow.domain.model import Qualification

TRUE_WORDS = {"true", "yes", "y", "1", "oui"}
FALSE_WORDS = {"false", "no", "n", "0", "non"}


def parse_answer(question: Question, raw: Any) -> Any:
    """Normalise one answer or raise InvalidInput naming the question."""
    field = f"answers.{question.key}"
    if raw is None or raw == "":
        return None
    if question.type == "bool":
        word = str(raw).strip().lower()
        if isinstance(raw, bool):
            return raw
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise InvalidInput(f"expected yes or no, got {raw!r}", field=field)
    if question.type == "choice":
        word = str(raw).strip().lower()
        if word not in question.choices:
            raise InvalidInput(
                f"expected one of {', '.join(question.choices)}, got {raw!r}", field=field)
        return word
    if question.type == "date":
        if isinstance(raw, date):
            return raw.isoformat()
        try:
            return date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise InvalidInput(f"expected a date YYYY-MM-DD, got {raw!r}", field=field) from None
    if question.type == "number":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"expected a number, got {raw!r}", field=field) from None
    return str(raw)


def date_ts(iso: str) -> float:
    d = date.fromisoformat(iso)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def evaluate(
    questions: tuple[Question, ...],
    answers: dict[str, Any],
    *,
    now: float,
    account_role: str | None = None,
) -> Qualification:
    """Check answers against each question's passing values; the contact's account role
    stands in for an unanswered *authority*."""
    answers = dict(answers)
    if answers.get("authority") is None and account_role:
        answers["authority"] = account_role
    missing: list[str] = []
    failed: list[str] = []
    for q in questions:
        value = answers.get(q.key)
        if q.kind == "info":
            continue
        if value is None:
            if q.required:
                missing.append(q.key)
            continue
        ok = True
        if q.passing:
            ok = str(value).lower() in q.passing
        if q.type == "date" and q.within_days is not None:
            ok = ok and date_ts(str(value)) <= now + q.within_days * 86400.0
        if not ok:
            failed.append(q.key)
    return Qualification(answers=answers, passed=not missing and not failed, missing=missing,
                         failed=failed)
