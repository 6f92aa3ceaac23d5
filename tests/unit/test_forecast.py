"""Prospecting plan: ranking, capacity counted in accounts, budget, the expected volume against
the target, new leads to close the shortfall, and the follow-up channel per contact."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.errors import InvalidInput
from leadflow.domain.forecast import (
    CHANNELS,
    Candidate,
    Plan,
    PlanSettings,
    build_plan,
    channel_for,
    convert,
)


def cand(contact_id: int, **fields: Any) -> Candidate:
    base: dict[str, Any] = {
        "name": f"Contact {contact_id}", "stage": "prospect", "temperature": "cold",
        "probability": 0.5, "probability_source": "model", "deal_value": 1000.0,
        "currency": "EUR", "value_source": "average", "account_key": f"contact:{contact_id}",
        "has_email": True,
    }
    return Candidate(contact_id=contact_id, **(base | fields))


def plan_of(pool: list[Candidate], **fields: Any) -> Plan:
    base: dict[str, Any] = {"target": 0.0, "capacity_accounts": 100, "budget": 1e6}
    return build_plan(pool, PlanSettings(**(base | fields)))


# ------------------------------------------------------------------ a worked example

RATES = {"EUR": 1.0, "USD": 1.25}
POOL = [
    cand(1, temperature="hot", has_phone=True, probability=0.5, deal_value=4000.0,
         account_key="acme"),
    cand(2, temperature="warm", has_phone=True, reached_by=("phone",), probability=0.25,
         deal_value=8000.0, currency="USD", value_source="opportunity"),
    cand(3, temperature="cold", has_phone=True, probability=0.2, deal_value=5000.0,
         account_key="acme"),
    cand(4, temperature="new", probability=0.1, deal_value=3000.0, account_key="globex"),
    cand(5, temperature="hot", has_email=False, probability=0.9, deal_value=9000.0,
         account_key="initech"),
]


def test_worked_example() -> None:
    plan = plan_of(POOL, target=10_000.0, capacity_accounts=2, budget=100.0, rates=RATES,
                   new_lead_conversion=0.25, average_deal_value=1600.0)

    assert [(i.candidate.contact_id, i.value, i.expected, i.channel, i.cost)
            for i in plan.items] == [
        (2, 10_000.0, 2500.0, "phone", 40.0),
        (1, 4000.0, 2000.0, "both", 45.0),
        (3, 5000.0, 1000.0, "email", 5.0),  # acme is already open: no capacity used
    ]
    assert plan.skipped == ((5, "no consented channel"), (4, "over capacity"))
    assert plan.accounts_used == 2
    assert plan.budget_used == 90.0
    assert plan.expected_volume == 5500.0
    assert plan.target == 10_000.0
    assert plan.shortfall == 4500.0
    assert plan.new_leads_needed == 12  # 4500 / (0.25 × 1600) = 11.25, rounded up
    assert plan.reporting_currency == "EUR"


def test_over_budget_is_skipped_and_a_cheaper_one_further_down_still_fits() -> None:
    plan = plan_of(POOL, capacity_accounts=3, budget=50.0, rates=RATES)

    assert [i.candidate.contact_id for i in plan.items] == [2, 3, 4]
    assert plan.skipped == ((5, "no consented channel"), (1, "over budget"))
    assert plan.budget_used == 50.0  # exactly the budget is allowed
    # acme was not opened by the skipped contact 1, so contact 3 opens it.
    assert plan.accounts_used == 3


def test_no_shortfall_needs_no_new_leads_even_without_a_conversion_history() -> None:
    plan = plan_of([cand(1, probability=1.0, deal_value=500.0)], target=500.0)
    assert (plan.shortfall, plan.new_leads_needed) == (0.0, 0)

    plan = plan_of([cand(1, probability=1.0, deal_value=500.0)], target=200.0)
    assert (plan.shortfall, plan.new_leads_needed) == (0.0, 0)


@pytest.mark.parametrize(("conversion", "average"), [(0.0, 1000.0), (0.3, 0.0), (0.0, 0.0)])
def test_new_leads_cannot_be_estimated_without_conversion_or_deal_value(
    conversion: float, average: float,
) -> None:
    plan = plan_of([], target=1000.0, new_lead_conversion=conversion, average_deal_value=average)
    assert plan.shortfall == 1000.0
    assert plan.new_leads_needed is None


def test_new_leads_exact_multiple_is_not_rounded_up() -> None:
    plan = plan_of([], target=1000.0, new_lead_conversion=0.5, average_deal_value=250.0)
    assert plan.new_leads_needed == 8


# ------------------------------------------------------------------ capacity and ranking


def test_capacity_counts_accounts_not_contacts() -> None:
    pool = [cand(i, account_key="acme") for i in range(1, 6)] + [cand(9, account_key="globex")]
    plan = plan_of(pool, capacity_accounts=1)
    assert [i.candidate.contact_id for i in plan.items] == [1, 2, 3, 4, 5]
    assert plan.skipped == ((9, "over capacity"),)
    assert plan.accounts_used == 1


def test_no_capacity_picks_nobody() -> None:
    plan = plan_of([cand(1), cand(2)], capacity_accounts=0)
    assert plan.items == ()
    assert plan.skipped == ((1, "over capacity"), (2, "over capacity"))
    assert (plan.accounts_used, plan.budget_used, plan.expected_volume) == (0, 0.0, 0.0)


def test_ranking_ties_break_on_score_then_contact_id() -> None:
    pool = [cand(7, score=1.0), cand(3, score=2.0), cand(5, score=2.0), cand(1, score=0.5),
            cand(9, probability=0.6)]
    expected_order = [9, 3, 5, 7, 1]
    for order in (pool, pool[::-1], sorted(pool, key=lambda c: c.name)):
        plan = plan_of(order)
        assert [i.candidate.contact_id for i in plan.items] == expected_order


def test_ranking_uses_the_value_in_the_reporting_currency() -> None:
    pool = [cand(1, deal_value=1000.0), cand(2, deal_value=900.0, currency="USD")]
    plan = plan_of(pool, rates={"EUR": 1.0, "USD": 1.5})
    assert [(i.candidate.contact_id, i.value) for i in plan.items] == [(2, 1350.0), (1, 1000.0)]


# ------------------------------------------------------------------ properties

CURRENCIES = ("EUR", "USD", "GBP")


@st.composite
def pools(draw: st.DrawFn) -> list[Candidate]:
    ids = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=25))
    pool = []
    for contact_id in ids:
        pool.append(cand(
            contact_id,
            temperature=draw(st.sampled_from(("hot", "warm", "new", "cold", None))),
            probability=draw(st.floats(0, 1)),
            deal_value=draw(st.one_of(st.floats(0, 1e7), st.sampled_from((0.0, 100.0, 1000.0)))),
            currency=draw(st.sampled_from(CURRENCIES)),
            account_key=draw(st.sampled_from(("a", "b", "c", "d", f"contact:{contact_id}"))),
            has_email=draw(st.booleans()), has_phone=draw(st.booleans()),
            email_allowed=draw(st.booleans()), phone_allowed=draw(st.booleans()),
            reached_by=tuple(draw(st.sets(st.sampled_from(("email", "phone"))))),
            score=draw(st.sampled_from((0.0, 1.0, 2.5))),
        ))
    return pool


plan_settings = st.builds(
    PlanSettings,
    target=st.floats(0, 1e8),
    capacity_accounts=st.integers(0, 6),
    budget=st.one_of(st.floats(0, 400), st.sampled_from((0.0, 45.0, 90.0))),
    rates=st.fixed_dictionaries({"EUR": st.just(1.0), "USD": st.floats(0.01, 100),
                                 "GBP": st.floats(0.01, 100)}),
    cost_per_channel=st.fixed_dictionaries({c: st.floats(0, 60) for c in CHANNELS}),
    new_lead_conversion=st.floats(0, 1),
    average_deal_value=st.floats(0, 1e6),
)


@given(pools(), plan_settings)
@settings(max_examples=300)
def test_plan_adds_up_and_keeps_within_capacity_and_budget(
    pool: list[Candidate], s: PlanSettings,
) -> None:
    plan = build_plan(pool, s)

    assert plan.expected_volume == math.fsum(i.expected for i in plan.items)
    for i in plan.items:
        c = i.candidate
        rate = s.rates[c.currency]
        assert i.value == convert(c.deal_value, c.currency, rates=s.rates, reporting="EUR")
        assert i.value == c.deal_value * rate
        assert i.expected == c.probability * i.value
        assert i.cost == s.cost_per_channel[i.channel]
        assert (i.channel, i.channel_reason) == channel_for(c)
    assert plan.shortfall == max(0.0, s.target - plan.expected_volume)
    assert plan.accounts_used == len({i.candidate.account_key for i in plan.items})
    assert plan.accounts_used <= s.capacity_accounts
    assert plan.budget_used == math.fsum(i.cost for i in plan.items)
    assert plan.budget_used <= s.budget

    picked = [i.candidate.contact_id for i in plan.items]
    skipped = [contact_id for contact_id, _ in plan.skipped]
    assert sorted(picked + skipped) == sorted(c.contact_id for c in pool)
    keys = [(-i.expected, -i.candidate.score, i.candidate.contact_id) for i in plan.items]
    assert keys == sorted(keys)


@given(pools(), plan_settings)
@settings(max_examples=200)
def test_every_skip_has_its_reason(pool: list[Candidate], s: PlanSettings) -> None:
    plan = build_plan(pool, s)
    by_id = {c.contact_id: c for c in pool}
    picked = {i.candidate.contact_id: i for i in plan.items}
    why = dict(plan.skipped)

    def rank(c: Candidate) -> tuple[float, float, int]:
        value = convert(c.deal_value, c.currency, rates=s.rates, reporting="EUR")
        return (-c.probability * value, -c.score, c.contact_id)

    accounts: set[str] = set()
    spent = Fraction(0)
    for c in sorted(by_id.values(), key=rank):
        channel = channel_for(c)
        new_account = c.account_key not in accounts
        if c.contact_id in picked:
            assert channel is not None
            assert not new_account or len(accounts) < s.capacity_accounts
            accounts.add(c.account_key)
            spent += Fraction(picked[c.contact_id].cost)
            assert spent <= Fraction(s.budget)
        elif why[c.contact_id] == "no consented channel":
            assert channel is None
        elif why[c.contact_id] == "over capacity":
            assert channel is not None
            assert new_account
            assert len(accounts) == s.capacity_accounts
        else:
            assert why[c.contact_id] == "over budget"
            assert channel is not None
            assert spent + Fraction(s.cost_per_channel[channel[0]]) > Fraction(s.budget)


@given(pools(), plan_settings, st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_the_plan_does_not_depend_on_the_pool_order(
    pool: list[Candidate], s: PlanSettings, rnd: Any,
) -> None:
    shuffled = list(pool)
    rnd.shuffle(shuffled)
    a, b = build_plan(pool, s), build_plan(shuffled, s)
    assert a.items == b.items
    assert sorted(a.skipped) == sorted(b.skipped)


# ------------------------------------------------------------------ channels


def contactable(**fields: Any) -> Candidate:
    return cand(1, **({"has_email": True, "has_phone": True} | fields))


@pytest.mark.parametrize(("fields", "channel", "reason"), [
    ({"temperature": "hot"}, "both", "hot: call and write"),
    ({"temperature": "hot", "email_allowed": False}, "phone",
     "hot: call only, no email consent"),
    ({"temperature": "hot", "has_email": False}, "phone", "hot: call only, no email address"),
    ({"temperature": "hot", "phone_allowed": False}, "email", "hot: email only, no call consent"),
    ({"temperature": "hot", "has_phone": False}, "email", "hot: email only, no phone number"),
    ({"temperature": "warm", "reached_by": ("phone",)}, "phone",
     "warm: answered the phone before"),
    ({"temperature": "warm", "reached_by": ("email",)}, "email",
     "warm: answered an email before"),
    ({"temperature": "warm", "reached_by": ("email", "phone")}, "phone",
     "warm: answered the phone before"),
    ({"temperature": "warm", "reached_by": ("email", "phone"), "phone_allowed": False}, "email",
     "warm: answered an email before"),
    ({"temperature": "warm", "reached_by": ("phone",), "phone_allowed": False}, "email",
     "warm: email only, no call consent"),
    ({"temperature": "warm", "reached_by": ("email",), "email_allowed": False}, "phone",
     "warm: call only, no email consent"),
    ({"temperature": "warm"}, "phone", "warm: call first"),
    ({"temperature": "cold"}, "email", "cold: email first"),
    ({"temperature": "cold", "phone_allowed": False}, "email", "cold: email only, no call consent"),
    ({"temperature": "cold", "email_allowed": False}, "phone", "cold: call only, no email consent"),
    ({"temperature": "new", "has_email": False}, "phone", "new: call only, no email address"),
    ({"temperature": "new"}, "email", "new: email first"),
    ({"temperature": None}, "email", "no temperature: email first"),
    ({"temperature": None, "has_email": False}, "phone",
     "no temperature: call only, no email address"),
])
def test_channel_per_temperature_and_consent(
    fields: dict[str, Any], channel: str, reason: str,
) -> None:
    assert channel_for(contactable(**fields)) == (channel, reason)


@pytest.mark.parametrize("temperature", ["hot", "warm", "new", "cold", None])
@pytest.mark.parametrize("fields", [
    {"has_email": False, "has_phone": False},
    {"email_allowed": False, "phone_allowed": False},
    {"has_email": False, "phone_allowed": False},
    {"email_allowed": False, "has_phone": False},
])
def test_no_usable_channel(temperature: str | None, fields: dict[str, Any]) -> None:
    assert channel_for(contactable(temperature=temperature, **fields)) is None


# ------------------------------------------------------------------ currencies and input errors


def test_convert() -> None:
    rates = {"EUR": 1.0, "USD": 0.5}
    assert convert(300.0, "USD", rates=rates, reporting="EUR") == 150.0
    assert convert(300.0, "EUR", rates=rates, reporting="EUR") == 300.0


def test_unknown_currency_is_named() -> None:
    with pytest.raises(InvalidInput, match="'GBP'") as raised:
        convert(10.0, "GBP", rates={"EUR": 1.0}, reporting="EUR")
    assert raised.value.field == "currency"

    with pytest.raises(InvalidInput, match="'CHF'") as raised:
        plan_of([cand(1), cand(2, currency="CHF")])
    assert raised.value.field == "currency"


@pytest.mark.parametrize(("fields", "field"), [
    ({"target": -1.0}, "target"),
    ({"target": math.nan}, "target"),
    ({"capacity_accounts": -1}, "capacity_accounts"),
    ({"budget": -0.01}, "budget"),
    ({"budget": math.inf}, "budget"),
    ({"rates": {"USD": 1.1}}, "rates"),
    ({"rates": {"EUR": 1.0, "USD": 0.0}}, "rates"),
    ({"reporting_currency": "USD"}, "rates"),
    ({"cost_per_channel": {"email": 5.0, "phone": 40.0}}, "cost_per_channel"),
    ({"cost_per_channel": {"email": -5.0, "phone": 40.0, "both": 45.0}}, "cost_per_channel"),
    ({"new_lead_conversion": 1.5}, "new_lead_conversion"),
    ({"average_deal_value": -1.0}, "average_deal_value"),
])
def test_invalid_settings_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_of([], **fields)
    assert raised.value.field == field


@pytest.mark.parametrize(("fields", "field"), [
    ({"probability": 1.01}, "probability"),
    ({"probability": -0.1}, "probability"),
    ({"probability": math.nan}, "probability"),
    ({"deal_value": -1.0}, "deal_value"),
    ({"deal_value": math.inf}, "deal_value"),
    ({"temperature": "lukewarm"}, "temperature"),
    ({"score": math.nan}, "score"),
])
def test_invalid_candidates_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match="contact 7") as raised:
        plan_of([cand(1), cand(7, **fields)])
    assert raised.value.field == field


def test_a_contact_twice_in_the_pool_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_of([cand(1), replace(cand(1), deal_value=5.0)])
    assert raised.value.field == "contact_id"


def test_a_converted_value_that_overflows_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_of([cand(1, deal_value=1e308, currency="USD")], rates={"EUR": 1.0, "USD": 10.0})
    assert raised.value.field == "deal_value"
