"""Temperature: how urgent a prospect or lead is, and until when that answer holds.

Prospects and opportunities (roles handoff, commit):
- a blocker (budget 'none', or a contract with another vendor still running) makes them warm;
- otherwise hot when the timeline falls within the hot window or a demo/pricing request is recent;
- warm when the timeline falls within the warm window;
- cold when the timeline is further out, or they came from outbound prospecting;
- new when buying intent is unknown.
Leads (role interest) are warm when engaged lately (content, a webinar or enough engagement),
else cold. Other stages carry no temperature.

``valid_until`` is the next time the answer could change with the clock alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from leadflow.domain.config import TemperatureConfig
from leadflow.domain.model import Contact
from leadflow.domain.qualification import date_ts

DAY = 86400.0


@dataclass(frozen=True)
class Reason:
    """Why, as a text with named values: pages translate ``text`` and fill it in."""

    text: str
    values: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.text.format(**dict(self.values))


def _why(text: str, **values: object) -> Reason:
    return Reason(text, tuple((k, v if isinstance(v, str) else format(v, "g"))
                              for k, v in values.items()))


# Every reason's text, for the translation catalogs (a test checks each has its French).
REASON_TEXTS = (
    "no temperature at this stage", "held back by budget ({budget})",
    "under contract until {day}", "demo or pricing request in the last {days} days",
    "timeline {day} within {days} days", "timeline {day} is further out",
    "found by {source} prospecting", "buying intent not known yet",
    "{n} content items lately", "attended a webinar lately",
    "engagement {score} >= {threshold}", "not engaged lately",
)


@dataclass(frozen=True)
class TemperatureReading:
    temperature: str | None
    valid_until: float | None
    reasons: tuple[Reason, ...]

    @property
    def reason(self) -> str:
        return "; ".join(str(r) for r in self.reasons)


def _latest(contact: Contact, names: tuple[str, ...]) -> float | None:
    times = [s.latest for n in names if (s := contact.signals.get(n)) and s.latest is not None]
    return max(times) if times else None


def _earliest_future(now: float, *times: float | None) -> float | None:
    future = [t for t in times if t is not None and t > now]
    return min(future) if future else None


def temperature_of(
    contact: Contact, role: str, *, now: float, config: TemperatureConfig,
    engagement_now: float, half_life_seconds: float,
) -> TemperatureReading:
    if role in ("handoff", "commit"):
        return _prospect(contact, now=now, config=config)
    if role == "interest":
        return _lead(contact, now=now, config=config, engagement_now=engagement_now,
                     half_life_seconds=half_life_seconds)
    return TemperatureReading(None, None, (_why("no temperature at this stage"),))


def _prospect(contact: Contact, *, now: float, config: TemperatureConfig) -> TemperatureReading:
    answers = contact.qualification.answers
    contract = answers.get("contract_until")
    contract_ts = date_ts(contract) if contract else None
    timeline = answers.get("timeline")
    timeline_ts = date_ts(timeline) if timeline else None
    budget = answers.get("budget")
    intent = _latest(contact, config.intent_signals)
    intent_until = intent + config.hot_intent_days * DAY if intent is not None else None
    hot_from = timeline_ts - config.hot_timeline_days * DAY if timeline_ts is not None else None
    warm_from = timeline_ts - config.warm_timeline_days * DAY if timeline_ts is not None else None

    if budget is not None and str(budget) in config.blocker_budget_values:
        return TemperatureReading("warm", None,
                                  (_why("held back by budget ({budget})", budget=str(budget)),))
    if contract_ts is not None and contract_ts > now:
        return TemperatureReading("warm", contract_ts,
                                  (_why("under contract until {day}", day=str(contract)),))
    if intent_until is not None and intent_until > now:
        later = None if hot_from is None or hot_from > intent_until else hot_from
        return TemperatureReading("hot", None if later else intent_until, (_why(
            "demo or pricing request in the last {days} days", days=config.hot_intent_days),))
    if hot_from is not None and hot_from <= now:
        return TemperatureReading("hot", None, (_why(
            "timeline {day} within {days} days", day=str(timeline),
            days=config.hot_timeline_days),))
    if warm_from is not None and warm_from <= now:
        return TemperatureReading("warm", hot_from, (_why(
            "timeline {day} within {days} days", day=str(timeline),
            days=config.warm_timeline_days),))
    if timeline_ts is not None:
        return TemperatureReading("cold", warm_from,
                                  (_why("timeline {day} is further out", day=str(timeline)),))
    if contact.source in config.cold_sources:
        return TemperatureReading("cold", None, (_why("found by {source} prospecting",
                                                      source=str(contact.source)),))
    return TemperatureReading("new", None, (_why("buying intent not known yet"),))


def _lead(
    contact: Contact, *, now: float, config: TemperatureConfig, engagement_now: float,
    half_life_seconds: float,
) -> TemperatureReading:
    window = config.lead_window_days * DAY
    expiries: list[float] = []
    reasons: list[Reason] = []
    content = contact.signals.get(config.lead_content_signal)
    if content and len(content.last) >= config.lead_min_content:
        nth = content.last[config.lead_min_content - 1]
        if nth + window > now:
            expiries.append(nth + window)
            reasons.append(_why("{n} content items lately", n=config.lead_min_content))
    webinar = _latest(contact, (config.lead_webinar_signal,))
    if webinar is not None and webinar + window > now:
        expiries.append(webinar + window)
        reasons.append(_why("attended a webinar lately"))
    threshold = config.lead_warm_engagement
    if engagement_now >= threshold > 0:
        # S(now) * 2^(-dt/h) falls to the threshold after dt = h * log2(S/threshold).
        expiries.append(now + half_life_seconds * math.log2(engagement_now / threshold))
        reasons.append(_why("engagement {score} >= {threshold}",
                            score=f"{engagement_now:.0f}", threshold=threshold))
    if expiries:
        return TemperatureReading("warm", max(expiries), tuple(reasons))
    return TemperatureReading("cold", None, (_why("not engaged lately"),))
