"""Qualification (DESIGN §1): BANT plus the product's own prerequisites, as configured
questions with passing answers; the contact's role in its account stands for authority."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from leadflow.adapters.config_file import default_config_text, load_config
from leadflow.domain.config import parse_config
from leadflow.domain.errors import InvalidInput
from leadflow.domain.qualification import evaluate, parse_answer
from tests.conftest import T0

CFG = load_config(None)
QUESTIONS = CFG.questions
Q = {q.key: q for q in QUESTIONS}
DAY = 86400.0

PASSING = {"budget": "approved", "authority": "decision_maker", "need": True,
           "timeline": "2026-09-01", "has_crm_data": True}


def check(answers: dict[str, Any], *, role: str | None = None) -> Any:
    parsed = {k: parse_answer(Q[k], v) for k, v in answers.items()}
    return evaluate(QUESTIONS, parsed, now=T0, account_role=role)


def test_bant_and_prerequisites_pass() -> None:
    r = check(PASSING)
    assert (r.passed, r.missing, r.failed) == (True, [], [])


@pytest.mark.parametrize(("key", "value"), [
    ("budget", "none"),
    ("authority", "user"),
    ("authority", "gatekeeper"),
    ("need", "no"),
    ("timeline", "2027-06-01"),  # beyond 365 days
    ("has_crm_data", False),
])
def test_a_failing_answer_fails(key: str, value: Any) -> None:
    r = check({**PASSING, key: value})
    assert (r.passed, r.failed, r.missing) == (False, [key], [])


@pytest.mark.parametrize("value", ["planned", "APPROVED"])
def test_other_passing_answers(value: str) -> None:
    assert check({**PASSING, "budget": value}).passed


@pytest.mark.parametrize("key", ["budget", "authority", "need", "timeline", "has_crm_data"])
def test_a_missing_answer_fails(key: str) -> None:
    answers = {k: v for k, v in PASSING.items() if k != key}
    r = check(answers)
    assert (r.passed, r.missing, r.failed) == (False, [key], [])


def test_an_empty_answer_is_missing() -> None:
    r = check({**PASSING, "need": ""})
    assert r.missing == ["need"]


def test_nothing_answered_lists_everything_missing() -> None:
    r = check({})
    assert r.missing == ["budget", "authority", "need", "timeline", "has_crm_data"]
    assert not r.passed


def test_info_questions_are_never_required() -> None:
    assert Q["contract_until"].kind == "info"
    assert check({**PASSING, "contract_until": "2026-12-31"}).passed
    assert check(PASSING).passed


def test_timeline_within_a_year() -> None:
    assert check({**PASSING, "timeline": date(2027, 3, 1).isoformat()}).passed  # < 365 days
    assert not check({**PASSING, "timeline": "2027-03-03"}).passed


# ------------------------------------------------------------------ authority from the account


@pytest.mark.parametrize(("role", "passed"), [("decision_maker", True), ("influencer", True),
                                              ("user", False), ("gatekeeper", False)])
def test_authority_comes_from_the_account_role(role: str, passed: bool) -> None:
    answers = {k: v for k, v in PASSING.items() if k != "authority"}
    r = check(answers, role=role)
    assert r.passed is passed
    assert r.failed == ([] if passed else ["authority"])


def test_an_explicit_authority_answer_wins_over_the_account_role() -> None:
    assert not check({**PASSING, "authority": "user"}, role="decision_maker").passed
    assert check(PASSING, role="user").passed


def test_without_answer_or_role_authority_is_missing() -> None:
    answers = {k: v for k, v in PASSING.items() if k != "authority"}
    assert check(answers).missing == ["authority"]


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize(("raw", "value"), [
    (True, True), ("yes", True), ("Oui", True), ("1", True), (" y ", True),
    (False, False), ("no", False), ("NON", False), ("0", False),
])
def test_yes_no_answers(raw: Any, value: bool) -> None:
    assert parse_answer(Q["need"], raw) is value


@pytest.mark.parametrize(("key", "raw", "fragment"), [
    ("need", "maybe", "yes or no"),
    ("budget", "some", "approved, planned, none"),
    ("timeline", "next spring", "YYYY-MM-DD"),
    ("timeline", "2026-02-30", "YYYY-MM-DD"),
])
def test_invalid_answers_name_the_question(key: str, raw: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_answer(Q[key], raw)
    assert info.value.field == f"answers.{key}"
    assert fragment in info.value.message


def test_answers_are_normalised() -> None:
    assert parse_answer(Q["budget"], " Planned ") == "planned"
    assert parse_answer(Q["timeline"], date(2026, 5, 1)) == "2026-05-01"
    assert parse_answer(Q["timeline"], " 2026-05-01 ") == "2026-05-01"
    assert parse_answer(Q["budget"], None) is None
    assert parse_answer(Q["budget"], "") is None


def test_product_prerequisites_are_configurable() -> None:
    raw = yaml.safe_load(default_config_text())
    raw["qualification"]["questions"] = [
        {"key": "car_make", "label": "Car make", "type": "choice",
         "choices": ["renault", "peugeot", "tesla"], "pass": ["renault", "peugeot"]},
        {"key": "seats", "label": "Seats needed", "type": "number"},
        {"key": "notes", "label": "Notes", "kind": "info", "type": "text"},
    ]
    questions = parse_config(raw).questions
    qs = {q.key: q for q in questions}
    assert parse_answer(qs["seats"], "12") == 12.0
    with pytest.raises(InvalidInput):
        parse_answer(qs["seats"], "a dozen")
    ok = evaluate(questions, {"car_make": "renault", "seats": 3.0}, now=T0)
    assert ok.passed
    bad = evaluate(questions, {"car_make": "tesla", "seats": 3.0}, now=T0)
    assert (bad.passed, bad.failed) == (False, ["car_make"])
    missing = evaluate(questions, {"car_make": "peugeot"}, now=T0)
    assert (missing.passed, missing.missing) == (False, ["seats"])
