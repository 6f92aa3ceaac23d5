"""Temperature (DESIGN §1): hot, warm, cold and new for prospects; warm or cold for leads; and
``valid_until``, the next time the answer can change with the clock alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.config_file import load_config
from leadflow.domain.config import TemperatureConfig
from leadflow.domain.model import Contact, Qualification, SignalSeen
from leadflow.domain.temperature import TemperatureReading, temperature_of
from tests.conftest import T0

CFG = load_config(None)
TEMP = CFG.temperature
H = CFG.engagement.half_life_seconds
DAY = 86400.0


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def midnight(ts: float) -> float:
    return datetime.fromisoformat(day(ts)).replace(tzinfo=UTC).timestamp()


def seen(*times: float) -> SignalSeen:
    s = SignalSeen()
    for t in times:
        s.add(t)
    return s


def contact(*, answers: dict[str, Any] | None = None, source: str | None = None,
            **signals: SignalSeen) -> Contact:
    return Contact(id=1, stage="prospect", source=source, signals=dict(signals),
                   qualification=Qualification(answers=answers or {}))


def reading(c: Contact, role: str = "handoff", *, now: float = T0, engagement: float = 0.0,
            config: TemperatureConfig = TEMP) -> TemperatureReading:
    return temperature_of(c, role, now=now, config=config, engagement_now=engagement,
                          half_life_seconds=H)


# ------------------------------------------------------------------ prospects and opportunities


@pytest.mark.parametrize("role", ["handoff", "commit"])
def test_new_when_buying_intent_is_unknown(role: str) -> None:
    r = reading(contact(), role)
    assert (r.temperature, r.valid_until) == ("new", None)


def test_hot_when_the_timeline_is_within_30_days() -> None:
    r = reading(contact(answers={"timeline": day(T0 + 20 * DAY)}))
    assert (r.temperature, r.valid_until) == ("hot", None)


def test_hot_after_a_demo_request_in_the_last_7_days_until_it_is_8_days_old() -> None:
    demo = T0 - 2 * DAY
    r = reading(contact(demo_request=seen(demo)))
    assert r.temperature == "hot"
    assert r.valid_until == demo + 7 * DAY
    later = reading(contact(demo_request=seen(demo)), now=demo + 7 * DAY + 1)
    assert later.temperature == "new"


def test_a_pricing_page_view_is_intent_too() -> None:
    assert reading(contact(pricing=seen(T0 - DAY))).temperature == "hot"


def test_old_intent_is_not_hot() -> None:
    assert reading(contact(demo_request=seen(T0 - 8 * DAY))).temperature == "new"


def test_intent_then_a_near_timeline_stays_hot_for_good() -> None:
    c = contact(demo_request=seen(T0), answers={"timeline": day(T0 + 35 * DAY)})
    r = reading(c)
    # hot by intent for 7 days, by then the timeline is within 30 days: hot with no end
    assert (r.temperature, r.valid_until) == ("hot", None)


def test_intent_then_a_far_timeline_is_hot_until_the_intent_fades() -> None:
    c = contact(demo_request=seen(T0), answers={"timeline": day(T0 + 100 * DAY)})
    r = reading(c)
    assert (r.temperature, r.valid_until) == ("hot", T0 + 7 * DAY)
    assert reading(c, now=T0 + 8 * DAY).temperature == "warm"


def test_warm_when_the_timeline_is_within_6_months_until_it_turns_hot() -> None:
    timeline = T0 + 100 * DAY
    r = reading(contact(answers={"timeline": day(timeline)}))
    assert r.temperature == "warm"
    assert r.valid_until == midnight(timeline) - 30 * DAY


def test_cold_when_the_timeline_is_further_out_until_it_turns_warm() -> None:
    timeline = T0 + 300 * DAY
    r = reading(contact(answers={"timeline": day(timeline)}))
    assert r.temperature == "cold"
    assert r.valid_until == midnight(timeline) - 180 * DAY


def test_warm_when_held_back_by_budget_even_with_intent() -> None:
    c = contact(answers={"budget": "none", "timeline": day(T0 + 5 * DAY)},
                demo_request=seen(T0))
    r = reading(c)
    assert (r.temperature, r.valid_until) == ("warm", None)
    assert "budget" in r.reason


def test_warm_while_under_contract_with_another_vendor() -> None:
    until = T0 + 60 * DAY
    c = contact(answers={"contract_until": day(until), "timeline": day(T0 + 10 * DAY)},
                demo_request=seen(T0))
    r = reading(c)
    assert r.temperature == "warm"
    assert r.valid_until == midnight(until)
    assert "contract" in r.reason
    # once the contract ends, the timeline (now in the past) makes it hot
    assert reading(c, now=midnight(until) + 1).temperature == "hot"


def test_an_expired_contract_does_not_hold_anyone_back() -> None:
    c = contact(answers={"contract_until": day(T0 - 10 * DAY)})
    assert reading(c).temperature == "new"


def test_outbound_contacts_start_cold() -> None:
    r = reading(contact(source="outbound"))
    assert (r.temperature, r.valid_until) == ("cold", None)
    # ... until they show intent
    assert reading(contact(source="outbound", demo_request=seen(T0))).temperature == "hot"


def test_cold_sources_are_configurable() -> None:
    config = TemperatureConfig(cold_sources=("trade_fair",))
    assert reading(contact(source="trade_fair"), config=config).temperature == "cold"
    assert reading(contact(source="outbound"), config=config).temperature == "new"


def test_hot_window_is_configurable() -> None:
    config = TemperatureConfig(hot_timeline_days=60)
    c = contact(answers={"timeline": day(T0 + 50 * DAY)})
    assert reading(c).temperature == "warm"
    assert reading(c, config=config).temperature == "hot"


# ------------------------------------------------------------------ leads


def test_a_lead_is_cold_when_not_engaged_lately() -> None:
    r = reading(contact(), "interest")
    assert (r.temperature, r.valid_until) == ("cold", None)


def test_a_lead_with_two_content_items_in_30_days_is_warm() -> None:
    c = contact(content=seen(T0 - 20 * DAY, T0 - 5 * DAY))
    r = reading(c, "interest")
    # warm until the older of the two is 30 days old
    assert (r.temperature, r.valid_until) == ("warm", T0 + 10 * DAY)
    assert reading(c, "interest", now=T0 + 10 * DAY + 1).temperature == "cold"


def test_one_content_item_is_not_enough() -> None:
    assert reading(contact(content=seen(T0 - DAY)), "interest").temperature == "cold"


def test_two_items_but_one_too_old() -> None:
    c = contact(content=seen(T0 - 31 * DAY, T0 - DAY))
    assert reading(c, "interest").temperature == "cold"


def test_a_lead_who_attended_a_webinar_lately_is_warm() -> None:
    r = reading(contact(webinar=seen(T0 - 3 * DAY)), "interest")
    assert (r.temperature, r.valid_until) == ("warm", T0 + 27 * DAY)


def test_a_lead_with_enough_engagement_is_warm_until_it_decays_below() -> None:
    r = reading(contact(), "interest", engagement=50)  # 50 halves to 25 in one half-life
    assert r.temperature == "warm"
    assert r.valid_until == pytest.approx(T0 + H)
    assert reading(contact(), "interest", engagement=24.9).temperature == "cold"


def test_a_lead_is_warm_until_its_last_reason_expires() -> None:
    c = contact(webinar=seen(T0 - 25 * DAY), content=seen(T0 - 10 * DAY, T0 - 2 * DAY))
    r = reading(c, "interest", engagement=30)
    assert r.temperature == "warm"
    assert r.valid_until == T0 + 20 * DAY  # content outlasts the webinar and the engagement


@pytest.mark.parametrize("role", ["entry", "won", "excluded", "erased"])
def test_other_stages_have_no_temperature(role: str) -> None:
    r = reading(contact(demo_request=seen(T0)), role, engagement=100)
    assert (r.temperature, r.valid_until) == (None, None)


def test_queue_order_default() -> None:
    assert TEMP.queue_order == ("hot", "warm", "new", "cold")


# ------------------------------------------------------------------ valid_until, as a property

times = st.floats(T0 - 60 * DAY, T0)
maybe_date = st.one_of(st.none(), st.integers(-20, 400).map(lambda d: day(T0 + d * DAY)))


@settings(max_examples=300, deadline=None)
@given(
    role=st.sampled_from(["handoff", "commit", "interest"]),
    content=st.lists(times, max_size=3), webinar=st.lists(times, max_size=2),
    demo=st.lists(times, max_size=2), pricing=st.lists(times, max_size=2),
    timeline=maybe_date, contract=maybe_date,
    budget=st.sampled_from([None, "approved", "planned", "none"]),
    source=st.sampled_from([None, "outbound", "website"]),
    engagement=st.one_of(st.just(0.0), st.floats(0, 200)),
    probes=st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_the_temperature_holds_until_valid_until(
        role: str, content: list[float], webinar: list[float], demo: list[float],
        pricing: list[float], timeline: str | None, contract: str | None, budget: str | None,
        source: str | None, engagement: float, probes: list[float]) -> None:
    answers = {k: v for k, v in (("timeline", timeline), ("contract_until", contract),
                                 ("budget", budget)) if v is not None}
    signals = {name: seen(*ts) for name, ts in (("content", content), ("webinar", webinar),
                                                ("demo_request", demo), ("pricing", pricing))
               if ts}
    c = contact(answers=answers, source=source, **signals)

    def at(t: float) -> TemperatureReading:
        return reading(c, role, now=t, engagement=engagement * 2 ** (-(t - T0) / H))

    first = at(T0)
    assert first.temperature in ("hot", "warm", "new", "cold")
    if first.valid_until is None:
        for p in probes:
            assert at(T0 + p * 800 * DAY).temperature == first.temperature
        return
    assert first.valid_until > T0
    for p in probes:
        t = T0 + p * (first.valid_until - T0 - 1)
        assert at(t).temperature == first.temperature, (t, first)
    if role == "interest":
        assert at(first.valid_until + 1).temperature == "cold"
