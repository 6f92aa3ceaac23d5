"""The sales part of the lifecycle configuration (its ``sales:`` section): working hours and
holidays, follow-up SLAs by temperature, reminders, escalation and the breach policy, deal
stages, lost reasons, currencies and what the prospecting plan assumes.

Durations here are working time: ``4h`` is four working hours, ``2d`` two working days (of the
configured length), ``1w`` as many working days as a week has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from leadflow.domain.config_parsing import (
    Problems,
    mapping,
    number,
    sequence,
    strings,
    under,
    unknown_keys,
    valid_key,
)
from leadflow.domain.errors import InvalidInput
from leadflow.domain.working_time import WorkingCalendar

TEMPERATURE_KEYS = ("hot", "warm", "new", "cold")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOST_NEXT = ("nurture", "disqualify")
WORK_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(h|d|w)$")
CLOCK_RE = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class WorkDuration:
    amount: float
    unit: str  # h | d | w

    def seconds(self, calendar: WorkingCalendar) -> float:
        if self.unit == "h":
            return self.amount * 3600.0
        days = self.amount * (len(calendar.days) if self.unit == "w" else 1)
        return calendar.working_days(days)

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


@dataclass(frozen=True)
class DealStage:
    key: str
    name: str
    probability: float  # 0..1, the default for deals entering this stage


@dataclass(frozen=True)
class SalesConfig:
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    follow_up: dict[str, WorkDuration] = field(default_factory=lambda: {
        "hot": WorkDuration(4, "h"), "warm": WorkDuration(2, "d"),
        "new": WorkDuration(5, "d"), "cold": WorkDuration(5, "d")})
    reminder_before: WorkDuration = WorkDuration(1, "h")
    escalate_after: WorkDuration = WorkDuration(0, "h")
    recycle_after: WorkDuration | None = None  # a breach this long recycles (a policy)
    cadence: WorkDuration = WorkDuration(3, "d")  # the next follow-up after one is done
    deal_stages: tuple[DealStage, ...] = (
        DealStage("discovery", "Discovery", 0.1), DealStage("proposal", "Proposal", 0.4),
        DealStage("negotiation", "Negotiation", 0.7))
    lost_reasons: tuple[str, ...] = ("price", "competitor", "no_budget", "no_decision",
                                     "timing", "not_a_fit")
    lost_next: str = "nurture"  # where a lost deal sends its contact unless told otherwise
    reporting_currency: str = "EUR"
    rates: dict[str, float] = field(default_factory=lambda: {"EUR": 1.0})
    average_deal_value: float = 10_000.0  # in the reporting currency
    channel_costs: dict[str, float] = field(default_factory=lambda: {
        "email": 5.0, "phone": 40.0, "both": 45.0})
    min_history: int = 20  # fewer examples than this: a wider conversion rate is used

    def sla_seconds(self, temperature: str | None) -> float:
        return self.follow_up[temperature or "new"].seconds(self.calendar)

    def follow_up_due(self, at: float, temperature: str | None) -> float:
        """When a hand-off's first follow-up is due: the temperature's SLA after ``at``."""
        return self.calendar.add(at, self.sla_seconds(temperature))

    def cadence_due(self, at: float) -> float:
        """When the next follow-up is due after one was done (or a task with no date)."""
        return self.calendar.add(at, self.cadence.seconds(self.calendar))

    def deal_stage(self, key: str) -> DealStage:
        for s in self.deal_stages:
            if s.key == key:
                return s
        raise InvalidInput(f"unknown deal stage {key!r} (known: "
                           f"{', '.join(s.key for s in self.deal_stages)})", field="deal_stage")

    def lost_reason(self, value: str) -> str:
        reason = (value or "").strip()
        if reason not in self.lost_reasons:
            raise InvalidInput(f"unknown lost reason {reason!r} (configured: "
                               f"{', '.join(self.lost_reasons)})", field="lost_reason")
        return reason


def _work_duration(value: Any, location: str, problems: Problems) -> WorkDuration:
    m = WORK_DURATION_RE.match(str(value).strip()) if isinstance(value, str | int) else None
    if m is None:
        problems.add(location, f"expected working time like '4h', '2d' or '1w', got {value!r}")
        return WorkDuration(1, "d")
    return WorkDuration(float(m.group(1)), m.group(2))


def _clock(value: Any, location: str, problems: Problems, default: float) -> float:
    m = CLOCK_RE.match(str(value).strip()) if isinstance(value, str) else None
    if m is None:
        problems.add(location, f"expected a time like '09:00', got {value!r}")
        return default
    return int(m.group(1)) + int(m.group(2)) / 60


def _calendar(data: dict[str, Any], problems: Problems) -> WorkingCalendar:
    base = WorkingCalendar()
    hours = mapping(data.get("working_hours", {}), "sales.working_hours", problems) or {}
    here = "sales.working_hours"
    unknown_keys(hours, ("timezone", "days", "start", "end"), here, problems)
    days = base.days
    if "days" in hours:
        names = strings(hours["days"], under(here, "days"), problems)
        bad = [d for d in names if d not in WEEKDAYS]
        if bad:
            problems.add(under(here, "days"), f"unknown day(s) {', '.join(bad)} "
                                            f"(use {', '.join(WEEKDAYS)})")
        days = tuple(sorted({WEEKDAYS.index(d) for d in names if d in WEEKDAYS}))
    holidays: set[date] = set()
    for i, raw in enumerate(sequence(data.get("holidays", []), "sales.holidays", problems)):
        try:
            holidays.add(date.fromisoformat(str(raw)))
        except ValueError:
            problems.add(under("sales.holidays", i),
                         f"expected a date like 2026-12-25, got {raw!r}")
    try:
        return WorkingCalendar(
            timezone=str(hours.get("timezone", base.timezone)), days=days,
            start_hour=_clock(hours.get("start", "09:00"), under(here, "start"), problems, 9.0),
            end_hour=_clock(hours.get("end", "17:00"), under(here, "end"), problems, 17.0),
            holidays=frozenset(holidays))
    except InvalidInput as exc:
        problems.add(under(here, exc.field or ""), exc.message)
        return base


def _deal_stages(value: Any, problems: Problems) -> tuple[DealStage, ...]:
    out: list[DealStage] = []
    for i, raw in enumerate(sequence(value, "sales.deal_stages", problems)):
        here = under("sales.deal_stages", i)
        d = mapping(raw, here, problems) or {}
        unknown_keys(d, ("key", "name", "probability"), here, problems)
        key = valid_key(d.get("key"), under(here, "key"), problems)
        p = number(d.get("probability"), under(here, "probability"), problems)
        if not 0 <= p <= 1:
            problems.add(under(here, "probability"), f"must be between 0 and 1, got {p:g}")
        out.append(DealStage(key, str(d.get("name") or key.replace("_", " ").title()), p))
    if not out:
        problems.add("sales.deal_stages", "needs at least one deal stage")
    if len({s.key for s in out}) != len(out):
        problems.add("sales.deal_stages", "deal stage keys must be unique")
    return tuple(out)


def _currency(data: dict[str, Any], problems: Problems) -> tuple[str, dict[str, float]]:
    here = "sales.currency"
    cur = mapping(data.get("currency", {}), here, problems) or {}
    unknown_keys(cur, ("reporting", "rates"), here, problems)
    reporting = str(cur.get("reporting", "EUR"))
    if not CURRENCY_RE.match(reporting):
        problems.add(under(here, "reporting"), f"expected an ISO code like EUR, got {reporting!r}")
    rates: dict[str, float] = {}
    raw_rates = mapping(cur.get("rates", {reporting: 1}), under(here, "rates"), problems) or {}
    for code, rate in raw_rates.items():
        where = under(under(here, "rates"), str(code))
        if not CURRENCY_RE.match(str(code)):
            problems.add(where, "expected an ISO currency code like USD")
        rates[str(code)] = number(rate, where, problems, positive=True, default=1.0)
    if rates.get(reporting) not in (None, 1.0):
        problems.add(under(here, "rates"), f"the reporting currency {reporting} must have rate 1")
    rates[reporting] = 1.0
    return reporting, rates


SALES_KEYS = ("working_hours", "holidays", "follow_up", "reminder_before", "escalate_after",
              "recycle_after", "cadence", "deal_stages", "lost_reasons", "lost_next",
              "currency", "average_deal_value", "channel_costs", "min_history")


def parse_sales(data: Any, problems: Problems) -> SalesConfig:
    """The ``sales:`` section; every key is optional."""
    defaults = SalesConfig()
    s = mapping(data if data is not None else {}, "sales", problems) or {}
    unknown_keys(s, SALES_KEYS, "sales", problems)
    follow_up = dict(defaults.follow_up)
    fu = mapping(s.get("follow_up", {}), "sales.follow_up", problems) or {}
    unknown_keys(fu, TEMPERATURE_KEYS, "sales.follow_up", problems)
    for temp, raw in fu.items():
        if temp in TEMPERATURE_KEYS:
            follow_up[temp] = _work_duration(raw, under("sales.follow_up", temp), problems)

    def duration(name: str, default: WorkDuration) -> WorkDuration:
        return _work_duration(s[name], under("sales", name), problems) if name in s else default

    recycle = s.get("recycle_after")
    reporting, rates = _currency(s, problems)
    lost_next = str(s.get("lost_next", defaults.lost_next))
    if lost_next not in LOST_NEXT:
        problems.add("sales.lost_next", f"must be one of {', '.join(LOST_NEXT)}")
    costs = dict(defaults.channel_costs)
    raw_costs = mapping(s.get("channel_costs", {}), "sales.channel_costs", problems) or {}
    unknown_keys(raw_costs, tuple(costs), "sales.channel_costs", problems)
    for name, raw in raw_costs.items():
        costs[str(name)] = number(raw, under("sales.channel_costs", str(name)), problems)
    lost = strings(s["lost_reasons"], "sales.lost_reasons", problems) if "lost_reasons" in s \
        else defaults.lost_reasons
    if not lost:
        problems.add("sales.lost_reasons", "needs at least one reason")
    return SalesConfig(
        calendar=_calendar(s, problems), follow_up=follow_up,
        reminder_before=duration("reminder_before", defaults.reminder_before),
        escalate_after=duration("escalate_after", defaults.escalate_after),
        recycle_after=None if recycle is None else _work_duration(
            recycle, "sales.recycle_after", problems),
        cadence=duration("cadence", defaults.cadence),
        deal_stages=_deal_stages(s["deal_stages"], problems) if "deal_stages" in s
        else defaults.deal_stages,
        lost_reasons=lost, lost_next=lost_next, reporting_currency=reporting, rates=rates,
        average_deal_value=number(s.get("average_deal_value", defaults.average_deal_value),
                                  "sales.average_deal_value", problems),
        channel_costs=costs,
        min_history=int(number(s.get("min_history", defaults.min_history), "sales.min_history",
                               problems, positive=True, default=20)),
    )
