"""The prospecting plan from the current pool: which leads, prospects and opportunities to work
this period within the team's capacity and budget, what they should bring against the target,
and how many new leads would close the gap (the maths is ``domain.forecast``).

Definitions:

- *Pool*: contacts in a stage of role interest, handoff or commit that the principal sees:
  admins and marketers every one (owned or not); a manager their team's, a rep their own, so
  leads nobody owns are planned by admins and marketers only.
- *Reached a stage*: a contact reached main stage S when any of its stage changes entered S or
  a later main stage (a jump passes every stage in between; a contact recycled since keeps
  what it reached).
- *Stage rate* of S: of the contacts that reached S, the share that reached the (first) won
  stage; 0 when nobody reached S yet. Every contact that reached S counts, including those
  still under way: the cumulative conversion of the funnel report.
- *Temperature rate* t: of the contacts handed off to sales with temperature t (the
  ``assigned`` audit entries record it; entries without one count nowhere), the share that
  reached the won stage.
- *Probability* of a contact (no predictive model is active yet, so it is historical,
  source "history"): a contact in a hand-off stage whose current temperature's group counts
  at least ``sales.min_history`` contacts gets the temperature rate, any other the rate of
  its own stage. A contact with open opportunities gets the reps' judgement instead (source
  "opportunity"): the deal's probability, or with several deals the value-weighted mean, so
  that probability × value is the sum over its deals.
- *Deal value*: the open deal's amount and currency (several: their sum in the reporting
  currency), value source "opportunity"; without one, ``sales.average_deal_value`` in the
  reporting currency, value source "average".
- *New-lead conversion*: the stage rate of the first interest stage.
- *Channels*: has_email / has_phone when the contact has an address / number; email_allowed /
  phone_allowed unless its consent for that channel is recorded as not granted; reached_by
  "email" after an inbound email, "phone" after a call that reached them (an outcome other
  than no answer, voicemail, wrong number, busy).
- ``limit_pool``: plan from the ``limit_pool`` contacts of highest engagement now only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import InvalidInput
from leadflow.domain.forecast import Candidate, Plan, PlanSettings, build_plan, convert
from leadflow.domain.users import Principal
from leadflow.services.context import Context

POOL_ROLES = ("interest", "handoff", "commit")
HANDOFF = "handoff"


class PlanReads(Protocol):
    """The read models a plan needs (adapters/db/sales_read_models)."""

    def reach_counts(self, config: LifecycleConfig) -> dict[int, int]:
        """{highest main-stage rank reached: contacts}."""
        ...

    def handoff_temperature_counts(self, config: LifecycleConfig
                                   ) -> dict[str, tuple[int, int]]:
        """{temperature at hand-off: (contacts, of which reached the won stage)}."""
        ...

    def plan_pool(self, config: LifecycleConfig, *, visible_owners: tuple[int, ...] | None,
                  roles: Sequence[str], now: float, limit: int | None
                  ) -> list[dict[str, Any]]:
        """The pool's contacts with their channels and open deals."""
        ...


@dataclass(frozen=True)
class HistoricalRates:
    """Conversion to the won stage, from history (see the module's definitions)."""

    stage_rates: dict[str, float]  # main stage key → stage rate
    stage_examples: dict[str, int]  # main stage key → contacts that reached it
    temperature_rates: dict[str, float]  # temperature at hand-off → rate
    temperature_examples: dict[str, int]  # temperature at hand-off → contacts
    new_lead_conversion: float
    min_history: int

    def probability(self, *, stage: str, temperature: str | None, handoff: bool) -> float:
        """A contact's historical probability of being won."""
        if handoff and temperature is not None and \
                self.temperature_examples.get(temperature, 0) >= self.min_history:
            return self.temperature_rates[temperature]
        return self.stage_rates.get(stage, 0.0)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def historical_rates(*, reads: PlanReads, ctx: Context) -> HistoricalRates:
    """The stage and hand-off temperature conversion rates to the won stage."""
    config = ctx.config
    counts = reads.reach_counts(config)
    won_rank = config.rank(config.first_stage("won").key)
    won = sum(n for r, n in counts.items() if r >= won_rank)
    examples = {s.key: sum(n for r, n in counts.items() if r >= i)
                for i, s in enumerate(config.main_stages)}
    rates = {key: _share(won, n) for key, n in examples.items()}
    temps = reads.handoff_temperature_counts(config)
    return HistoricalRates(
        stage_rates=rates, stage_examples=examples,
        temperature_rates={t: _share(w, n) for t, (n, w) in temps.items()},
        temperature_examples={t: n for t, (n, _) in temps.items()},
        new_lead_conversion=rates[config.first_stage("interest").key],
        min_history=config.sales.min_history)


def _deal_terms(deals: list[dict[str, Any]], ctx: Context) -> tuple[float, float, str]:
    """(probability, value, currency) of a contact's open deals taken together."""
    if len(deals) == 1:
        d = deals[0]
        return float(d["probability"]), float(d["amount"]), str(d["currency"])
    sales = ctx.config.sales
    values = [convert(float(d["amount"]), str(d["currency"]), rates=sales.rates,
                      reporting=sales.reporting_currency) for d in deals]
    total = math.fsum(values)
    expected = math.fsum(float(d["probability"]) * v for d, v in zip(deals, values, strict=True))
    probability = expected / total if total > 0 else max(float(d["probability"]) for d in deals)
    return min(1.0, probability), total, sales.reporting_currency


def candidate_for(row: dict[str, Any], rates: HistoricalRates, ctx: Context) -> Candidate:
    """A pool row as a plan candidate: its probability, deal value and channels."""
    sales = ctx.config.sales
    deals: list[dict[str, Any]] = row["open_deals"]
    if deals:
        probability, value, currency = _deal_terms(deals, ctx)
        probability_source = value_source = "opportunity"
    else:
        probability = rates.probability(
            stage=row["stage"], temperature=row["temperature"],
            handoff=ctx.config.role_of(row["stage"]) == HANDOFF)
        probability_source = "history"
        value, currency, value_source = (sales.average_deal_value, sales.reporting_currency,
                                         "average")
    account = row["account_id"]
    return Candidate(
        contact_id=row["id"], name=row["name"], stage=row["stage"],
        temperature=row["temperature"], probability=probability,
        probability_source=probability_source, deal_value=value, currency=currency,
        value_source=value_source,
        account_key=f"account:{account}" if account is not None else f"contact:{row['id']}",
        has_email=row["has_email"], has_phone=row["has_phone"],
        email_allowed=row["email_allowed"], phone_allowed=row["phone_allowed"],
        reached_by=tuple(row["reached_by"]), score=float(row["engagement"]))


def prospecting_plan(
    *, reads: PlanReads, ctx: Context, principal: Principal, target: float,
    capacity_accounts: int, budget: float, limit_pool: int | None = None,
) -> Plan:
    """The plan for the principal's pool against ``target`` (reporting currency) within
    ``capacity_accounts`` accounts opened and ``budget`` spent on follow-up."""
    if limit_pool is not None and (isinstance(limit_pool, bool) or limit_pool < 1):
        raise InvalidInput(f"limit_pool must be at least 1, not {limit_pool!r}",
                           field="limit_pool")
    sales = ctx.config.sales
    rates = historical_rates(reads=reads, ctx=ctx)
    rows = reads.plan_pool(ctx.config, visible_owners=principal.visible_owners,
                           roles=POOL_ROLES, now=ctx.clock.now(), limit=limit_pool)
    settings = PlanSettings(
        target=target, capacity_accounts=capacity_accounts, budget=budget,
        reporting_currency=sales.reporting_currency, rates=sales.rates,
        cost_per_channel=sales.channel_costs, new_lead_conversion=rates.new_lead_conversion,
        average_deal_value=sales.average_deal_value)
    return build_plan([candidate_for(r, rates, ctx) for r in rows], settings)


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan as plain data (what the API answers and the CLI prints)."""
    return {
        "target": plan.target, "expected_volume": plan.expected_volume,
        "shortfall": plan.shortfall, "new_leads_needed": plan.new_leads_needed,
        "accounts_used": plan.accounts_used, "budget_used": plan.budget_used,
        "reporting_currency": plan.reporting_currency,
        "items": [{"contact_id": i.candidate.contact_id, "name": i.candidate.name,
                   "stage": i.candidate.stage, "temperature": i.candidate.temperature,
                   "probability": i.candidate.probability,
                   "probability_source": i.candidate.probability_source,
                   "value": i.value, "value_source": i.candidate.value_source,
                   "expected": i.expected, "channel": i.channel,
                   "channel_reason": i.channel_reason, "cost": i.cost} for i in plan.items],
        "skipped": [{"contact_id": cid, "why": why} for cid, why in plan.skipped],
    }
