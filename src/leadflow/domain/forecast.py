"""Prospecting plan: which leads and prospects to work this period, and what that should bring.

Candidates are ranked by expected value (conversion probability × deal value in the reporting
currency), then by engagement score, then by contact id, and taken in that order while the
team's capacity (accounts opened) and budget (follow-up cost per channel) allow. A contact
whose account is already in the plan costs no capacity; one that does not fit is skipped with
the reason and the walk goes on, so a cheaper candidate further down may still fit.

The plan forecasts the expected volume (``math.fsum`` of the picked items' expected values),
the shortfall against the target, and how many new leads would close it at the historical
new-lead conversion rate and average deal value.

Follow-up channel per contact, among the usable ones (an address or number, and consent):
hot → phone and email; warm → the channel that answered before (phone first), else phone;
new, cold or no temperature → email, else phone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from leadflow.domain.errors import InvalidInput

CHANNELS = ("phone", "email", "both")
TEMPERATURES = ("hot", "warm", "new", "cold", None)


@dataclass(frozen=True)
class Candidate:
    contact_id: int
    name: str
    stage: str
    temperature: str | None
    probability: float
    probability_source: str
    deal_value: float
    currency: str
    value_source: str
    account_key: str
    has_email: bool = False
    has_phone: bool = False
    email_allowed: bool = True
    phone_allowed: bool = True
    reached_by: tuple[str, ...] = ()
    score: float = 0.0


@dataclass(frozen=True)
class PlanSettings:
    target: float
    capacity_accounts: int
    budget: float
    reporting_currency: str = "EUR"
    rates: Mapping[str, float] = field(default_factory=lambda: {"EUR": 1.0})
    cost_per_channel: Mapping[str, float] = field(
        default_factory=lambda: {"email": 5.0, "phone": 40.0, "both": 45.0})
    new_lead_conversion: float = 0.0
    average_deal_value: float = 0.0


@dataclass(frozen=True)
class PlanItem:
    candidate: Candidate
    value: float
    expected: float
    channel: str
    channel_reason: str
    cost: float


@dataclass(frozen=True)
class Plan:
    items: tuple[PlanItem, ...]
    skipped: tuple[tuple[int, str], ...]
    expected_volume: float
    target: float
    shortfall: float
    accounts_used: int
    budget_used: float
    new_leads_needed: int | None
    reporting_currency: str


def convert(amount: float, currency: str, *, rates: Mapping[str, float], reporting: str) -> float:
    """``amount`` of ``currency`` in the reporting currency; ``rates[c]`` is what 1 c is worth."""
    if currency == reporting:
        return amount
    rate = rates.get(currency)
    if rate is None:
        raise InvalidInput(f"no exchange rate from {currency!r} to {reporting!r}",
                           field="currency")
    if not (math.isfinite(rate) and rate > 0):
        raise InvalidInput(f"exchange rate for {currency!r} must be a number > 0, not {rate!r}",
                           field="rates")
    return amount * rate


def _why_no_phone(c: Candidate) -> str:
    return "no call consent" if c.has_phone else "no phone number"


def _why_no_email(c: Candidate) -> str:
    return "no email consent" if c.has_email else "no email address"


def channel_for(c: Candidate) -> tuple[str, str] | None:
    """(channel, reason) to follow ``c`` up on, or None when no channel may be used."""
    if c.temperature not in TEMPERATURES:
        raise InvalidInput(f"contact {c.contact_id}: unknown temperature {c.temperature!r}",
                           field="temperature")
    phone = c.has_phone and c.phone_allowed
    email = c.has_email and c.email_allowed
    if not (phone or email):
        return None
    label = c.temperature or "no temperature"
    if c.temperature == "hot":
        if phone and email:
            return "both", "hot: call and write"
        if phone:
            return "phone", f"hot: call only, {_why_no_email(c)}"
        return "email", f"hot: email only, {_why_no_phone(c)}"
    if c.temperature == "warm":
        if phone and "phone" in c.reached_by:
            return "phone", "warm: answered the phone before"
        if email and "email" in c.reached_by:
            return "email", "warm: answered an email before"
        if phone:
            return "phone", "warm: call first" if email else f"warm: call only, {_why_no_email(c)}"
        return "email", f"warm: email only, {_why_no_phone(c)}"
    if email:
        return "email", (f"{label}: email first" if phone
                         else f"{label}: email only, {_why_no_phone(c)}")
    return "phone", f"{label}: call only, {_why_no_email(c)}"


def _nonnegative(value: float, name: str) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise InvalidInput(f"{name} must be a finite number >= 0, not {value!r}", field=name)


def _check_settings(s: PlanSettings) -> None:
    _nonnegative(s.target, "target")
    if s.capacity_accounts < 0:
        raise InvalidInput(f"capacity_accounts must be >= 0, not {s.capacity_accounts!r}",
                           field="capacity_accounts")
    _nonnegative(s.budget, "budget")
    if s.rates.get(s.reporting_currency) != 1.0:
        raise InvalidInput(f"rates must give the reporting currency {s.reporting_currency!r} "
                           "a rate of 1", field="rates")
    for currency, rate in s.rates.items():
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidInput(f"exchange rate for {currency!r} must be a number > 0, "
                               f"not {rate!r}", field="rates")
    for channel in CHANNELS:
        cost = s.cost_per_channel.get(channel)
        if cost is None or not (math.isfinite(cost) and cost >= 0):
            raise InvalidInput(f"cost_per_channel[{channel!r}] must be a finite number >= 0, "
                               f"not {cost!r}", field="cost_per_channel")
    if not 0 <= s.new_lead_conversion <= 1:
        raise InvalidInput(f"new_lead_conversion must be within [0, 1], not "
                           f"{s.new_lead_conversion!r}", field="new_lead_conversion")
    _nonnegative(s.average_deal_value, "average_deal_value")


def _check_candidate(c: Candidate) -> None:
    if not 0 <= c.probability <= 1:
        raise InvalidInput(f"contact {c.contact_id}: probability must be within [0, 1], not "
                           f"{c.probability!r}", field="probability")
    if not (math.isfinite(c.deal_value) and c.deal_value >= 0):
        raise InvalidInput(f"contact {c.contact_id}: deal_value must be a finite number >= 0, "
                           f"not {c.deal_value!r}", field="deal_value")
    if not math.isfinite(c.score):
        raise InvalidInput(f"contact {c.contact_id}: score must be finite, not {c.score!r}",
                           field="score")


def _new_leads_needed(shortfall: float, s: PlanSettings) -> int | None:
    if shortfall == 0:
        return 0
    per_lead = s.new_lead_conversion * s.average_deal_value
    if per_lead == 0:
        return None
    leads = shortfall / per_lead
    # per_lead can be so small (yet > 0) that the quotient overflows: no estimate either.
    return math.ceil(leads) if math.isfinite(leads) else None


def build_plan(candidates: Sequence[Candidate], settings: PlanSettings) -> Plan:
    _check_settings(settings)
    seen: set[int] = set()
    ranked: list[tuple[float, float, Candidate]] = []
    for c in candidates:
        _check_candidate(c)
        if c.contact_id in seen:
            raise InvalidInput(f"contact {c.contact_id} is in the pool twice", field="contact_id")
        seen.add(c.contact_id)
        value = convert(c.deal_value, c.currency, rates=settings.rates,
                        reporting=settings.reporting_currency)
        if not math.isfinite(value):
            raise InvalidInput(f"contact {c.contact_id}: deal_value {c.deal_value!r} "
                               f"{c.currency} is too large", field="deal_value")
        ranked.append((value, c.probability * value, c))
    ranked.sort(key=lambda r: (-r[1], -r[2].score, r[2].contact_id))

    items: list[PlanItem] = []
    skipped: list[tuple[int, str]] = []
    accounts: set[str] = set()
    # Exact, so that the budget check and budget_used (its rounding) never disagree.
    spent = Fraction(0)
    for value, expected, c in ranked:
        channel = channel_for(c)
        if channel is None:
            skipped.append((c.contact_id, "no consented channel"))
            continue
        if c.account_key not in accounts and len(accounts) >= settings.capacity_accounts:
            skipped.append((c.contact_id, "over capacity"))
            continue
        cost = settings.cost_per_channel[channel[0]]
        if spent + Fraction(cost) > Fraction(settings.budget):
            skipped.append((c.contact_id, "over budget"))
            continue
        spent += Fraction(cost)
        accounts.add(c.account_key)
        items.append(PlanItem(candidate=c, value=value, expected=expected, channel=channel[0],
                              channel_reason=channel[1], cost=cost))

    volume = math.fsum(i.expected for i in items)
    shortfall = max(0.0, settings.target - volume)
    return Plan(
        items=tuple(items),
        skipped=tuple(skipped),
        expected_volume=volume,
        target=settings.target,
        shortfall=shortfall,
        accounts_used=len(accounts),
        budget_used=float(spent),
        new_leads_needed=_new_leads_needed(shortfall, settings),
        reporting_currency=settings.reporting_currency,
    )
