"""The prospecting plan on a real history — each test runs on SQLite and on PostgreSQL.

The history: 5 prospects handed off hot (1 became a customer), 3 handed off new (2 did),
2 handed off cold (none), 3 leads nobody owns (none). So 13 contacts reached the lead stage
and 10 the prospect stage (a jump passes every stage in between), 3 were won; with
min_history 3 the hot and new groups are large enough, the cold one is not.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from leadflow.adapters.db.sales_read_models import SqlSalesReads
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.config import parse_config
from leadflow.domain.errors import InvalidInput
from leadflow.domain.forecast import Plan, convert
from leadflow.domain.users import OPERATOR, Principal, User
from leadflow.services.activities import ActivityIn, log_activity
from leadflow.services.assignments import reassign
from leadflow.services.contacts import AccountIn, ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.opportunities import create_opportunity
from leadflow.services.plan import HistoricalRates, historical_rates, prospecting_plan
from leadflow.services.users import create_user
from tests.conftest import FakeClock

MIN_HISTORY = 3


@pytest.fixture
def app3(settings: Settings, clock: FakeClock) -> Iterator[App]:
    """The shipped pipeline with min_history 3."""
    raw = copy.deepcopy(App(settings, clock=clock).config.raw)
    raw["sales"]["min_history"] = MIN_HISTORY
    instance = App(settings, clock=clock, config=parse_config(raw))
    yield instance
    if "engine" in instance.__dict__:
        instance.engine.dispose()


@dataclass
class History:
    rita: User
    ids: dict[str, int]  # name → contact id
    deal_id: int


def person(app: App, clock: FakeClock, name: str, *events: EventIn | str,
           source: str | None = None, phone: str | None = None,
           consent: dict[str, bool] | None = None) -> int:
    """A good-fit contact with an account of its own, then its events."""
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email=f"{name}@example.com", first_name=name, seniority="director", country="FR",
        source=source, phone=phone, consent=consent or {},
        account=AccountIn(name=f"{name} Ltd", domain=f"{name}.example", industry="software",
                          employees=300, country="FR")))
    assert c.id is not None
    for e in events:
        clock.advance(60)
        event = EventIn(type=e, contact_id=c.id) if isinstance(e, str) else e
        event.contact_id = c.id
        record_event(uow=app.uow(), ctx=app.ctx, event=event)
    return c.id


def build_history(app: App, clock: FakeClock) -> History:
    rita = create_user(uow=app.uow(), ctx=app.ctx, email="rita@example.com", name="Rita",
                       role="sales_rep")
    premium = EventIn(type="content_download", premium=True)
    ids = {}
    for i in range(1, 6):
        ids[f"h{i}"] = person(app, clock, f"h{i}", "demo_request",
                              *(["deal_won"] if i == 1 else []),
                              phone="+33 1 23 45 67 89" if i == 3 else None)
    for i in range(1, 4):
        ids[f"n{i}"] = person(app, clock, f"n{i}", premium,
                              *(["deal_won"] if i <= 2 else []))
    ids["c1"] = person(app, clock, "c1", premium, source="outbound", phone="+33 6 00 00 00 01",
                       consent={"phone": False})
    ids["c2"] = person(app, clock, "c2", premium, source="outbound")
    for i in range(1, 4):
        ids[f"l{i}"] = person(app, clock, f"l{i}", "form_submitted")
    # The rep's judgement on h2: a deal in USD at the proposal stage.
    deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=ids["h2"],
                              name="h2 rollout", amount=8000, currency="USD",
                              expected_close=None, deal_stage="proposal", probability=None,
                              next_step=None, actor="rita", owner_id=None)
    # h3 answered the phone.
    log_activity(uow=app.uow(), ctx=app.ctx, contact_id=ids["h3"],
                 data=ActivityIn(kind="call", direction="outbound", outcome="connected"),
                 principal=Principal(name="rita", role="sales_rep", scope="write",
                                     user_id=rita.id))
    return History(rita=rita, ids=ids, deal_id=deal.id)


def rates_of(app: App) -> HistoricalRates:
    with app.engine.connect() as conn:
        return historical_rates(reads=SqlSalesReads(conn), ctx=app.ctx)


def plan_for(app: App, principal: Principal, **settings: float) -> Plan:
    args = {"target": 100_000.0, "capacity_accounts": 100, "budget": 10_000.0} | settings
    with app.engine.connect() as conn:
        return prospecting_plan(reads=SqlSalesReads(conn), ctx=app.ctx, principal=principal,
                                target=args["target"],
                                capacity_accounts=int(args["capacity_accounts"]),
                                budget=args["budget"])


def stages(app: App, ids: dict[str, int]) -> dict[str, tuple[str, str | None, int | None]]:
    with app.uow() as uow:
        return {name: (c.stage, c.temperature, c.owner_id) for name, cid in ids.items()
                if (c := uow.contacts.get(cid)) is not None}


def test_the_rates_come_from_history_by_stage_and_by_temperature_at_hand_off(
        app3: App, clock: FakeClock) -> None:
    h = build_history(app3, clock)
    seen = stages(app3, h.ids)
    assert [n for n, (stage, _, _) in seen.items() if stage == "customer"] == ["h1", "n1", "n2"]
    assert seen["h2"][0] == "opportunity"
    assert {seen[n][1] for n in ("h3", "h4", "h5")} == {"hot"}
    assert (seen["n3"][1], seen["c1"][1]) == ("new", "cold")
    rates = rates_of(app3)
    assert rates.stage_examples == {"suspect": 13, "lead": 13, "prospect": 10,
                                    "opportunity": 4, "customer": 3}
    assert rates.stage_rates["lead"] == pytest.approx(3 / 13)
    assert rates.stage_rates["prospect"] == pytest.approx(3 / 10)
    assert rates.stage_rates["opportunity"] == pytest.approx(3 / 4)
    assert rates.new_lead_conversion == pytest.approx(3 / 13)
    assert rates.temperature_examples == {"hot": 5, "new": 3, "cold": 2}
    assert rates.temperature_rates["hot"] == pytest.approx(1 / 5)
    assert rates.temperature_rates["new"] == pytest.approx(2 / 3)
    assert rates.temperature_rates["cold"] == 0.0
    # Enough hot and new examples; too few cold ones: the prospect stage's rate.
    assert rates.probability(stage="prospect", temperature="hot", handoff=True) == \
        pytest.approx(1 / 5)
    assert rates.probability(stage="prospect", temperature="cold", handoff=True) == \
        pytest.approx(3 / 10)
    assert rates.probability(stage="lead", temperature="cold", handoff=False) == \
        pytest.approx(3 / 13)


def test_the_plan_forecasts_probability_times_value_over_its_items(
        app3: App, clock: FakeClock) -> None:
    h = build_history(app3, clock)
    plan = plan_for(app3, OPERATOR)
    sales = app3.config.sales
    by_id = {cid: name for name, cid in h.ids.items()}
    expected_p = {"h2": 0.4, "h3": 1 / 5, "h4": 1 / 5, "h5": 1 / 5, "n3": 2 / 3,
                  "c1": 3 / 10, "c2": 3 / 10, "l1": 3 / 13, "l2": 3 / 13, "l3": 3 / 13}
    assert plan.skipped == ()
    items = {by_id[i.candidate.contact_id]: i for i in plan.items}
    assert set(items) == set(expected_p)  # customers are not in the pool
    for name, p in expected_p.items():
        assert items[name].candidate.probability == pytest.approx(p), name
    deal = items["h2"].candidate
    assert (deal.deal_value, deal.currency, deal.value_source, deal.probability_source) == (
        8000.0, "USD", "opportunity", "opportunity")
    assert {(i.candidate.value_source, i.candidate.probability_source, i.candidate.currency,
             i.candidate.deal_value) for n, i in items.items() if n != "h2"} == {
        ("average", "history", "EUR", sales.average_deal_value)}
    # Recomputed independently: Σ probability × value in the reporting currency.
    total = math.fsum(
        i.candidate.probability * convert(i.candidate.deal_value, i.candidate.currency,
                                          rates=sales.rates, reporting=sales.reporting_currency)
        for i in plan.items)
    assert plan.expected_volume == pytest.approx(total)
    assert items["h2"].value == pytest.approx(8000 * sales.rates["USD"])
    assert plan.shortfall == pytest.approx(100_000 - total)
    assert plan.new_leads_needed == math.ceil(plan.shortfall / (3 / 13 * 12_000))
    # Channels: the number, consent and the answered call decide.
    assert items["h3"].candidate.reached_by == ("phone",)
    assert items["h3"].channel == "both"
    assert (items["c1"].candidate.has_phone, items["c1"].candidate.phone_allowed) == (True,
                                                                                     False)
    assert items["c1"].channel == "email"
    assert plan.budget_used == pytest.approx(math.fsum(i.cost for i in plan.items))


def test_the_plan_keeps_within_capacity_and_budget(app3: App, clock: FakeClock) -> None:
    build_history(app3, clock)
    narrow = plan_for(app3, OPERATOR, capacity_accounts=3)
    assert narrow.accounts_used == 3
    assert len({i.candidate.account_key for i in narrow.items}) == 3
    assert {why for _, why in narrow.skipped} == {"over capacity"}
    assert len(narrow.items) + len(narrow.skipped) == 10
    poor = plan_for(app3, OPERATOR, budget=12)
    assert poor.budget_used <= 12
    assert poor.budget_used == pytest.approx(math.fsum(i.cost for i in poor.items))
    assert len(poor.items) == 2  # two emails at 5 each
    assert "over budget" in {why for _, why in poor.skipped}
    ranked = sorted((i.expected for i in plan_for(app3, OPERATOR).items), reverse=True)
    assert [i.expected for i in narrow.items] == pytest.approx(ranked[:3])
    with app3.engine.connect() as conn, pytest.raises(InvalidInput) as bad:
        prospecting_plan(reads=SqlSalesReads(conn), ctx=app3.ctx, principal=OPERATOR,
                         target=1, capacity_accounts=1, budget=1, limit_pool=0)
    assert bad.value.field == "limit_pool"
    with app3.engine.connect() as conn:
        top = prospecting_plan(reads=SqlSalesReads(conn), ctx=app3.ctx, principal=OPERATOR,
                               target=1, capacity_accounts=100, budget=1000, limit_pool=4)
    assert len(top.items) + len(top.skipped) == 4


def test_a_reps_plan_holds_only_their_contacts(app3: App, clock: FakeClock) -> None:
    h = build_history(app3, clock)
    sam = create_user(uow=app3.uow(), ctx=app3.ctx, email="sam@example.com", name="Sam",
                      role="sales_rep")
    for name in ("n3", "c1"):
        reassign(uow=app3.uow(), ctx=app3.ctx, contact_id=h.ids[name], owner=sam.id,
                 reason="Sam covers them", actor="manager")
    as_sam = Principal(name="sam", role="sales_rep", scope="write", user_id=sam.id)
    as_rita = Principal(name="rita", role="sales_rep", scope="write", user_id=h.rita.id)
    sams = plan_for(app3, as_sam)
    assert {i.candidate.contact_id for i in sams.items} == {h.ids["n3"], h.ids["c1"]}
    ritas = plan_for(app3, as_rita)
    assert {i.candidate.contact_id for i in ritas.items} == {
        h.ids[n] for n in ("h2", "h3", "h4", "h5", "c2")}  # not the leads nobody owns
    # The rates stay the team's history, whoever asks.
    assert {i.candidate.contact_id: i.candidate.probability for i in sams.items} == {
        h.ids["n3"]: pytest.approx(2 / 3), h.ids["c1"]: pytest.approx(3 / 10)}
