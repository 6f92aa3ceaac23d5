"""Funnel analytics over a history made by the real services (each test on SQLite and on
PostgreSQL), through the service and the REST API.

The history (one rep, Rita, takes every hand-off):
- ann (source website, first campaign touch "spring", read the CRM guide): suspect → lead
  (a form) → prospect (a demo request) → opportunity → customer (deal won);
- bob (source fair, campaign "autumn"): suspect → prospect in one jump (a demo request), a
  deal lost: recycled to lead;
- cat (source website, read the guide): suspect → lead, then disqualified;
- dan (no source): suspect, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from leadflow.adapters.db.analytics_reads import SqlAnalyticsReads
from leadflow.bootstrap import App
from leadflow.domain.analytics import FunnelReport, SlaRow
from leadflow.domain.content import ContentItem
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import OPERATOR, Principal
from leadflow.entrypoints.api.app import create_app
from leadflow.services import analytics
from leadflow.services.api_keys import create_api_key
from leadflow.services.content import create_item
from leadflow.services.events import EventIn, record_event
from leadflow.services.followup import complete_task, create_task
from leadflow.services.moves import disqualify
from leadflow.services.opportunities import create_opportunity, lose_opportunity, win_opportunity
from leadflow.services.users import create_user
from tests.conftest import FakeClock, good_fit_contact

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass
class History:
    ids: dict[str, int]
    rita: int


def event(app: App, clock: FakeClock, cid: int, kind: str, wait: float = HOUR,
          **fields: object) -> None:
    clock.advance(wait)
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=cid,
                                                           **fields))  # type: ignore[arg-type]


def build(app: App, clock: FakeClock) -> History:
    rita = create_user(uow=app.uow(), ctx=app.ctx, email="rita@sales.example", name="Rita",
                       role="sales_rep").id
    create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
        key="crm-guide", title="CRM guide", url="/guides/crm", maturity="discovery",
        format="article"))
    ids = {}
    for name, source in (("ann", "website"), ("bob", "fair"), ("cat", "website"),
                         ("dan", None)):
        c = good_fit_contact(app, f"{name}@{name}.example", source=source)
        assert c.id is not None
        ids[name] = c.id
        clock.advance(DAY)
    ann, bob, cat = ids["ann"], ids["bob"], ids["cat"]
    event(app, clock, ann, "page_view", url="/guides/crm/", utm_campaign="spring")
    event(app, clock, ann, "form_submitted", wait=2 * DAY)  # a lead after 2 days (+ 3 days)
    event(app, clock, bob, "page_view", url="/pricing", utm_campaign="autumn")
    event(app, clock, bob, "demo_request", url="/demo")  # the jump
    event(app, clock, cat, "content_view", url="/guides/crm")
    event(app, clock, cat, "form_submitted")
    event(app, clock, ann, "demo_request", wait=4 * DAY)  # a prospect after 4 days as a lead
    clock.advance(DAY)
    won = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=ann, name="A",
                             amount=1000, currency="EUR")
    lost = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=bob, name="B",
                              amount=1000, currency="EUR")
    clock.advance(DAY)
    win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=won.id)
    lose_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=lost.id, reason="price",
                     then="nurture")
    disqualify(uow=app.uow(), ctx=app.ctx, contact_id=cat, reason="a student")
    return History(ids=ids, rita=rita)


def report(app: App, principal: Principal = OPERATOR, **args: str | None
           ) -> FunnelReport:
    with app.engine.connect() as conn:
        return analytics.funnel_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                       principal=principal, **args)


def test_the_funnel_of_a_small_history(app: App, clock: FakeClock) -> None:
    build(app, clock)
    r = report(app)
    total = analytics.funnel_summary(r)["total"]
    assert total["contacts"] == 4
    assert {k: v for k, v in total["current"].items() if v} == {
        "suspect": 1, "lead": 1, "customer": 1, "disqualified": 1}
    assert total["reached"] == {"suspect": 4, "lead": 3, "prospect": 2, "opportunity": 2,
                                "customer": 1}
    steps = {(s["from"], s["to"]): s for s in total["steps"]}
    # bob jumped suspect → prospect: strictly, he went suspect → lead → prospect.
    assert steps["suspect", "lead"]["strict"] == 3
    assert steps["lead", "prospect"]["strict"] == 2
    assert steps["lead", "prospect"]["cumulative_rate"] == pytest.approx(2 / 3)
    assert steps["opportunity", "customer"]["strict_rate"] == pytest.approx(1 / 2)
    assert total["prospects"] == {"reached": 2, "won": 1, "closing_rate": 0.5}
    assert total["opportunities"] == {"won": 1, "lost": 1, "open": 0, "closing_rate": 0.5}
    assert total["backward"] == {"recycles": 1, "disqualifications": 1, "other": 0,
                                 "recycled_contacts": 1, "disqualified_contacts": 1}


def test_breakdowns(app: App, clock: FakeClock) -> None:
    build(app, clock)
    by_source = {g.group: g for g in report(app, by="source").groups}
    assert {k: g.contacts for k, g in by_source.items()} == {"website": 2, "fair": 1,
                                                             None: 1}
    assert by_source["website"].reached == (2, 2, 1, 1, 1)
    campaign = {g.group: g.contacts for g in report(app, by="campaign").groups}
    assert campaign == {"spring": 1, "autumn": 1, None: 2}
    content = report(app, by="content")
    assert content.overlapping
    assert {g.group: g.contacts for g in content.groups} == {"discovery": 2, None: 2}
    assert content.total.contacts == 4
    guide = report(app, by="content", item="crm-guide")
    assert guide.item == "crm-guide"
    assert {g.group: g.deals_won for g in guide.groups} == {"consumed": 1, None: 0}
    weeks = report(app, by="cohort-week")
    assert sum(g.contacts for g in weeks.groups) == weeks.total.contacts == 4
    assert [g.group for g in weeks.groups] == sorted(g.group or "" for g in weeks.groups)
    assert [g.group for g in report(app, by="cohort-month").groups] == ["2026-03"]


def test_bad_breakdowns_are_refused_with_the_field(app: App) -> None:
    with pytest.raises(InvalidInput) as bad:
        report(app, by="colour")
    assert bad.value.field == "by"
    with pytest.raises(InvalidInput) as unknown:
        report(app, by="content", item="nothing-here")
    assert unknown.value.field == "item"
    with pytest.raises(InvalidInput):
        report(app, by="source", item="crm-guide")


def test_time_in_stage(app: App, clock: FakeClock) -> None:
    build(app, clock)
    with app.engine.connect() as conn:
        r = analytics.time_in_stage_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                           principal=OPERATOR, by="source")
    total = {s.stage: s for s in r.total}
    assert list(total) == [s.key for s in app.config.stages]
    # suspects left after 6 d 1 h (ann), 5 d 3 h (bob), 4 d 5 h (cat); dan is still one
    suspect = total["suspect"]
    assert (suspect.left, suspect.still_in) == (3, 1)
    assert (suspect.median, suspect.p90) == (5 * DAY + 3 * HOUR, 6 * DAY + HOUR)
    # leads: ann for 4 d 4 h, cat for 6 d until disqualified; bob, recycled, still one
    lead = total["lead"]
    assert (lead.left, lead.still_in) == (2, 1)
    assert (lead.median, lead.p90) == (4 * DAY + 4 * HOUR, 6 * DAY)
    assert (total["customer"].left, total["customer"].still_in) == (0, 1)
    assert total["customer"].median is None
    website = {s.stage: s for s in r.groups if s.group == "website"}
    assert website["lead"].left == 2


def test_sla_per_rep(app: App, clock: FakeClock) -> None:
    h = build(app, clock)
    sam = create_user(uow=app.uow(), ctx=app.ctx, email="sam@sales.example", name="Sam",
                      role="sales_rep").id

    def rows(principal: Principal = OPERATOR) -> list[SlaRow]:
        with app.engine.connect() as conn:
            return analytics.sla_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                        principal=principal).reps

    # ann's follow-up is overdue; bob's closed when his lost deal sent him back, days late.
    [rita] = rows()
    assert (rita.owner_id, rita.name) == (h.rita, "Rita")
    assert (rita.on_time, rita.late, rita.overdue, rita.pending) == (0, 1, 1, 0)
    with app.uow() as uow:
        [overdue] = uow.tasks.open_for(h.ids["ann"])
    complete_task(uow=app.uow(), ctx=app.ctx, task_id=overdue.id, outcome="called",
                  actor="rita")
    soon = create_task(uow=app.uow(), ctx=app.ctx, contact_id=h.ids["ann"], kind="call",
                       title=None, due_at=clock.now() + DAY, actor="rita")
    complete_task(uow=app.uow(), ctx=app.ctx, task_id=soon.id, outcome="done", actor="rita")
    create_task(uow=app.uow(), ctx=app.ctx, contact_id=h.ids["ann"], kind="call", title=None,
                due_at=clock.now() + DAY, actor="rita")
    [rita] = rows()
    assert (rita.on_time, rita.late, rita.overdue, rita.pending) == (1, 2, 0, 1)
    assert rita.compliance == pytest.approx(1 / 3)
    me = Principal(name="sam", role="sales_rep", scope="write", user_id=sam)
    assert rows(me) == []


@pytest.fixture
def api(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as client:
        yield client


def _key(app: App, user_id: int) -> dict[str, str]:
    token = create_api_key(uow=app.uow(), ctx=app.ctx, name="k", kind="secret",
                           scopes=["read"], user=user_id).token
    return {"Authorization": f"Bearer {token}"}


def test_the_rest_api(app: App, clock: FakeClock, api: TestClient) -> None:
    h = build(app, clock)
    boss = create_user(uow=app.uow(), ctx=app.ctx, email="boss@x.example", name="Boss",
                       role="marketer").id
    head = _key(app, boss)
    funnel = api.get("/api/v1/analytics/funnel?by=campaign", headers=head)
    assert funnel.status_code == 200, funnel.text
    body = funnel.json()
    assert body["total"]["contacts"] == 4
    assert {g["group"] for g in body["groups"]} == {"spring", "autumn", None}
    assert body["total"]["steps"][0]["from"] == "suspect"
    assert api.get("/api/v1/analytics/funnel?by=colour", headers=head).status_code == 422
    unknown = api.get("/api/v1/analytics/funnel?by=content&item=nope", headers=head)
    assert unknown.status_code == 422
    assert "nope" in unknown.text
    times = api.get("/api/v1/analytics/time-in-stage?by=cohort-week", headers=head).json()
    assert {r["stage"] for r in times["total"]} == {s.key for s in app.config.stages}
    sla = api.get("/api/v1/analytics/sla", headers=head).json()
    assert [r["owner_id"] for r in sla["reps"]] == [h.rita]
    # Rita sees the contacts she owns only: ann and bob were handed to her.
    mine = api.get("/api/v1/analytics/funnel", headers=_key(app, h.rita)).json()
    assert mine["total"]["contacts"] == 1  # bob went back to marketing: nobody owns him
    assert api.get("/api/v1/analytics/funnel").status_code == 401
