"""Fit (DESIGN §1): weighted buyer-persona criteria → 0–100 and a grade A–D, with a breakdown;
unknown values are listed; exclusion rules (competitor domains by default) grade D."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.config_file import default_config_text, load_config
from leadflow.domain.config import FitConfig, parse_config
from leadflow.domain.fit import grade_at_least, grade_for, persona_min_grade, score_fit
from leadflow.domain.model import Account, Contact, FitResult

CFG = load_config(None)
FIT = CFG.fit

ACME = Account(id=1, name="Acme", industry="software", employees=300, country="FR")
SHOP = Account(id=2, name="Corner shop", industry="retail", employees=40, country="FR")


def who(account: Account | None = None, **fields: Any) -> FitResult:
    c = Contact(id=1, stage="suspect", account_id=account.id if account else None, **fields)
    return score_fit(c, account, FIT)


def custom_fit(fit: dict[str, Any]) -> FitConfig:
    raw = yaml.safe_load(default_config_text())
    raw["fit"] = fit
    return parse_config(raw).fit


# ------------------------------------------------------------------ grades


@pytest.mark.parametrize(("score", "grade"), [
    (100, "A"), (75, "A"), (74.999, "B"), (50, "B"), (49.9, "C"), (25, "C"), (24.99, "D"),
    (0, "D"),
])
def test_grade_thresholds(score: float, grade: str) -> None:
    assert grade_for(score, FIT) == grade


def test_grade_thresholds_are_configurable() -> None:
    fit = custom_fit({"grades": {"A": 90, "B": 60, "C": 10},
                      "personas": CFG.raw["fit"]["personas"]})
    assert [grade_for(s, fit) for s in (95, 89, 60, 11, 9)] == ["A", "B", "B", "C", "D"]


def test_grade_at_least() -> None:
    assert grade_at_least("A", "B")
    assert grade_at_least("B", "B")
    assert not grade_at_least("C", "B")
    assert grade_at_least("D", "D")


# ------------------------------------------------------------------ personas


def test_a_perfect_it_leader() -> None:
    r = who(ACME, seniority="director", country="FR", email="cio@acme.example")
    assert (r.score, r.grade, r.persona) == (100.0, "A", "it_leader")
    assert r.unknown == []
    assert {p["label"]: p["points"] for p in r.breakdown} == {
        "Decision-level seniority": 30.0, "50-5000 employees": 25.0, "Target industry": 25.0,
        "Served country": 20.0}


def test_the_best_persona_wins() -> None:
    r = who(SHOP, seniority="manager", country="DE")
    assert (r.score, r.grade, r.persona) == (100.0, "A", "ops_manager")


def test_partial_fit_and_its_breakdown() -> None:
    r = who(ACME, seniority="intern", country="JP")
    # it_leader: employees 25 + industry 25; ops_manager: nothing (300 employees, intern, JP)
    assert (r.score, r.grade, r.persona) == (50.0, "B", "it_leader")
    assert sum(p["points"] for p in r.breakdown) == pytest.approx(r.score)
    met = {p["criterion"]: p["met"] for p in r.breakdown}
    assert met == {"contact.seniority": False, "account.employees": True,
                   "account.industry": True, "contact.country": False}


def test_matching_ignores_case_and_spaces() -> None:
    r = who(Account(id=3, name="X", industry=" Software ", employees=60), seniority="Director",
            country="fr")
    assert r.score == 100


def test_unknown_values_score_nothing_and_are_listed() -> None:
    r = who(None, seniority="vp", country="")
    assert r.persona == "it_leader"
    assert r.score == 30.0
    assert r.grade == "C"
    assert set(r.unknown) == {"account.employees", "account.industry", "contact.country"}
    assert [p["met"] for p in r.breakdown] == [True, None, None, None]


def test_a_non_numeric_size_fails_the_range_without_crashing() -> None:
    fit = custom_fit({"personas": [{"key": "p", "criteria": [
        {"field": "account.attributes.size", "between": [10, 100], "weight": 1}]}]})
    for size, met in (("many", False), ("50", True), (50, True), (101, False)):
        account = Account(id=1, name="A", attributes={"size": size})
        c = Contact(id=1, stage="suspect", account_id=1)
        r = score_fit(c, account, fit)
        assert r.breakdown[0]["met"] is met, size


def test_attributes_can_be_criteria() -> None:
    fit = custom_fit({"personas": [{"key": "dealer", "min_grade": "A", "criteria": [
        {"field": "contact.attributes.car_make", "in": ["Renault", "Peugeot"], "weight": 3},
        {"field": "account.attributes.sites", "between": [2, 50], "weight": 1}]}]})
    c = Contact(id=1, stage="suspect", attributes={"car_make": "renault"})
    r = score_fit(c, Account(id=1, name="Garage", attributes={"sites": 1}), fit)
    assert (r.score, r.grade) == (75.0, "A")
    assert persona_min_grade(r, fit) == "A"


def test_no_personas_means_grade_d() -> None:
    fit = custom_fit({"personas": []})
    r = score_fit(Contact(id=1, stage="suspect", seniority="director"), None, fit)
    assert (r.score, r.grade, r.persona) == (0.0, "D", None)


def test_persona_min_grade() -> None:
    assert persona_min_grade(who(ACME, seniority="director"), FIT) == "B"
    # without a persona nothing is good enough but an A
    assert persona_min_grade(FitResult(), FIT) == "A"


# ------------------------------------------------------------------ exclusions


@pytest.mark.parametrize("email", ["spy@rivalcrm.com", "someone@hubspot.com", "x@MAUTIC.ORG",
                                   "y@odoo.com"])
def test_competitors_are_excluded(email: str) -> None:
    r = who(ACME, seniority="director", country="FR", email=email)
    assert (r.score, r.grade, r.excluded_by) == (0.0, "D", "competitor")
    assert r.exclusion_reason == "Works for a competitor"
    assert r.breakdown[0]["excluded"] is True


def test_a_lookalike_domain_is_not_a_competitor() -> None:
    r = who(ACME, seniority="director", email="me@notrivalcrm.com")
    assert r.excluded_by is None


def test_exclusions_are_configurable() -> None:
    fit = custom_fit({"personas": CFG.raw["fit"]["personas"], "exclusions": [
        {"key": "students", "field": "contact.seniority", "in": ["student", "intern"],
         "reason": "Not a buyer"},
        {"key": "sanctioned", "field": "contact.country", "in": ["KP"]}]})
    c = Contact(id=1, stage="suspect", seniority="Intern", country="FR")
    r = score_fit(c, ACME, fit)
    assert (r.excluded_by, r.exclusion_reason) == ("students", "Not a buyer")
    r = score_fit(Contact(id=1, stage="suspect", country="KP"), ACME, fit)
    assert (r.excluded_by, r.exclusion_reason) == ("sanctioned", "sanctioned")
    assert score_fit(Contact(id=1, stage="suspect", country="FR"), ACME, fit).excluded_by is None


# ------------------------------------------------------------------ properties

accounts = st.one_of(st.none(), st.builds(
    Account, id=st.just(1), name=st.just("A"),
    industry=st.sampled_from([None, "software", "retail", "mining", ""]),
    employees=st.one_of(st.none(), st.integers(0, 10_000))))


@settings(max_examples=300, deadline=None)
@given(account=accounts,
       seniority=st.sampled_from([None, "director", "manager", "head", "intern", "VP"]),
       country=st.sampled_from([None, "FR", "us", "JP", ""]),
       email=st.sampled_from([None, "a@acme.example", "b@odoo.com"]))
def test_fit_is_a_bounded_explained_score(account: Account | None, seniority: str | None,
                                          country: str | None, email: str | None) -> None:
    r = who(account, seniority=seniority, country=country, email=email)
    assert 0 <= r.score <= 100
    assert r.grade == ("D" if r.excluded_by else grade_for(r.score, FIT))
    if r.excluded_by is None:
        assert sum(p["points"] for p in r.breakdown) == pytest.approx(r.score)
        assert r.persona in {p.key for p in FIT.personas}
        # the chosen persona is the best one
        for persona in FIT.personas:
            only = FitConfig(FIT.grade_thresholds, (persona,), ())
            c = Contact(id=1, stage="suspect", seniority=seniority, country=country,
                        email=email)
            assert score_fit(c, account, only).score <= r.score
