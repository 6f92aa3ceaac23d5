"""Progressive profiling (which fields a form asks) and the checks a submission goes through
before anything is written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.config_file import load_config
from leadflow.domain.errors import InvalidInput
from leadflow.domain.forms import Form, Known, fields_to_ask
from leadflow.domain.nurture_config import PROFILE_FIELDS
from leadflow.services.context import Context
from leadflow.services.forms import field_spec, parse_submission
from tests.conftest import FakeClock

DEFAULTS = ("company", "title", "company_size", "timeline", "budget")


def ask(fields: tuple[str, ...] = (), max_fields: int = 0, **known: Any) -> list[str]:
    return fields_to_ask(Form(key="f", name="F", fields=fields, max_fields=max_fields),
                         Known(known), default_fields=DEFAULTS, default_max=3)


def test_a_stranger_is_asked_the_first_n_fields() -> None:
    assert ask() == ["company", "title", "company_size"]
    assert ask(("phone", "country", "title"), 2) == ["phone", "country"]


def test_what_is_known_is_not_asked_again() -> None:
    assert ask(company="Acme", title="CTO") == ["company_size", "timeline", "budget"]
    assert ask(company="Acme", title="CTO", company_size=300, timeline="2026-09-01") == [
        "budget"]
    assert ask(**dict.fromkeys(DEFAULTS, "x")) == []


def test_empty_values_count_as_unknown_and_zero_as_known() -> None:
    assert ask(company="", title=None)[:2] == ["company", "title"]
    assert "company_size" not in ask(company_size=0)


def test_fields_outside_the_profile_are_never_asked() -> None:
    assert ask(("shoe_size", "title"), 5) == ["title"]


wanted_fields = st.lists(st.sampled_from((*PROFILE_FIELDS, "email", "favourite_colour")),
                         unique=True, max_size=14)
known_values = st.dictionaries(st.sampled_from(PROFILE_FIELDS),
                               st.one_of(st.none(), st.just(""),
                                         st.sampled_from(("Acme", "CTO", "2026-09-01")),
                                         st.integers(-5, 5)), max_size=len(PROFILE_FIELDS))


@settings(max_examples=300, deadline=None)
@given(fields=wanted_fields, max_fields=st.integers(0, 20), known=known_values)
def test_profiling_properties(fields: list[str], max_fields: int,
                              known: dict[str, Any]) -> None:
    form = Form(key="f", name="F", fields=tuple(fields), max_fields=max_fields)
    what = Known(known)
    asked = fields_to_ask(form, what, default_fields=DEFAULTS, default_max=3)
    limit = max_fields or 3
    wanted = fields or list(DEFAULTS)
    assert len(asked) <= limit  # never more than N
    assert not [name for name in asked if what.has(name)]  # never a known field
    assert set(asked) <= set(PROFILE_FIELDS)
    # Order kept: the first N still-unknown profile fields, in the form's order.
    unknown = [n for n in wanted if n in PROFILE_FIELDS and not what.has(n)]
    assert asked == unknown[:limit]


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(config=load_config(None), clock=FakeClock(), suppression_salt="s")


def test_a_submission_is_parsed_and_normalised(ctx: Context) -> None:
    parsed = parse_submission(ctx, {
        "email": " Ann@Acme.Example ", "first_name": " Ann ", "country": "fr",
        "company": "Acme", "company_size": "1 200", "industry": "", "budget": "Approved",
        "timeline": "2026-09-01", "consent": "yes", "newsletter": "", "submit": "Send",
        "utm_source": "ads"})
    assert parsed.email == "ann@acme.example"
    assert parsed.contact == {"first_name": "Ann", "country": "FR"}
    assert (parsed.company, parsed.company_size, parsed.industry) == ("Acme", 1200, None)
    assert parsed.answers == {"budget": "approved", "timeline": "2026-09-01"}
    assert (parsed.consent, parsed.newsletter) == (True, False)
    assert parsed.utm == {"utm_source": "ads", "utm_medium": None, "utm_campaign": None}


@pytest.mark.parametrize(("data", "field"), [
    ({"email": "ann@"}, "email"),
    ({"email": ["a@b.example"]}, "email"),
    ({"country": "France"}, "country"),
    ({"phone": "call me"}, "phone"),
    ({"company_size": "lots"}, "company_size"),
    ({"company_size": "0"}, "company_size"),
    ({"company_size": True}, "company_size"),
    ({"budget": "infinite"}, "budget"),
    ({"timeline": "next spring"}, "timeline"),
    ({"authority": "boss"}, "authority"),
    ({"consent": "maybe"}, "consent"),
    ({"newsletter": {"yes": 1}}, "newsletter"),
    ({"company": "x" * 301}, "company"),
    ({"title": "x" * 201}, "title"),
])
def test_each_bad_value_names_its_field(ctx: Context, data: dict[str, Any],
                                        field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_submission(ctx, data)
    assert caught.value.field == field


def test_choice_questions_become_selects(ctx: Context) -> None:
    budget = field_spec(ctx, "budget")
    assert (budget.input, budget.choices) == ("select", ("approved", "planned", "none"))
    assert field_spec(ctx, "timeline").input == "date"
    assert field_spec(ctx, "company_size").input == "number"
    assert field_spec(ctx, "country").max_length == 2
