"""Attribution over a history made by the real services (SQLite and PostgreSQL), through the
service, the REST API and the CLI.

The funnel tests' history (tests/integration/test_analytics.py) — ann, source website, read
the CRM guide from campaign "spring", became a customer with a 1000 EUR deal won; bob's deal
was lost; cat was disqualified — and eve (no source), who came from an "ads" link of
campaign "summer", then read the guide, then got an open 500 USD deal.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from leadflow.adapters.db.attribution_reads import SqlAttributionReads
from leadflow.bootstrap import App
from leadflow.domain.attribution import AttributionReport
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import OPERATOR, Principal
from leadflow.entrypoints.api.app import create_app
from leadflow.services.assignments import reassign
from leadflow.services.attribution import attribution_report
from leadflow.services.opportunities import create_opportunity
from leadflow.services.users import create_user
from tests.conftest import FakeClock, good_fit_contact
from tests.integration.test_analytics import DAY, History, _key, build, event


def history(app: App, clock: FakeClock) -> History:
    h = build(app, clock)
    eve = good_fit_contact(app, "eve@eve.example").id
    assert eve is not None
    h.ids["eve"] = eve
    event(app, clock, eve, "page_view", url="/pricing", utm_source="ads",
          utm_campaign="summer")
    event(app, clock, eve, "content_view", url="/guides/crm")
    clock.advance(DAY)
    create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=eve, name="E",
                       amount=500, currency="USD")
    event(app, clock, eve, "page_view", url="/after", utm_source="late")  # after: no credit
    return h


def credit(app: App, model: str, by: str, principal: Principal = OPERATOR
           ) -> AttributionReport:
    with app.engine.connect() as conn:
        return attribution_report(reads=SqlAttributionReads(conn), ctx=app.ctx,
                                  principal=principal, model=model, by=by)


def groups(r: AttributionReport) -> dict[str | None, tuple[float, dict[str, float]]]:
    return {g.group: (g.customers, g.pipeline) for g in r.groups}


def test_the_models_on_a_small_history(app: App, clock: FakeClock) -> None:
    history(app, clock)
    first = credit(app, "first", "source")
    assert (first.customers, first.pipeline) == (1, {"EUR": 1000.0, "USD": 500.0})
    # ann's first touch: her own source, at her creation (no event carried one)
    assert groups(first) == {"website": (1.0, {"EUR": 1000.0}), "ads": (0.0, {"USD": 500.0})}
    last = groups(credit(app, "last", "campaign"))
    assert last == {"spring": (1.0, {"EUR": 1000.0}), None: (0.0, {"USD": 500.0})}
    assert groups(credit(app, "last", "content")) == {
        "crm-guide": (1.0, {"EUR": 1000.0, "USD": 500.0})}
    linear = credit(app, "linear", "campaign")
    found = groups(linear)
    assert found["spring"] == (pytest.approx(0.5), {"EUR": pytest.approx(500.0)})
    assert found["summer"][1] == {"USD": pytest.approx(250.0)}
    assert sum(g.customers for g in linear.groups) == pytest.approx(1.0)
    assert sum(g.pipeline.get("USD", 0) for g in linear.groups) == pytest.approx(500.0)
    with pytest.raises(InvalidInput) as bad:
        credit(app, "middle", "source")
    assert bad.value.field == "model"
    with pytest.raises(InvalidInput) as bad:
        credit(app, "first", "colour")
    assert bad.value.field == "by"


def test_a_rep_sees_only_their_own(app: App, clock: FakeClock) -> None:
    h = history(app, clock)
    sam = create_user(uow=app.uow(), ctx=app.ctx, email="sam@sales.example", name="Sam",
                      role="sales_rep").id
    reassign(uow=app.uow(), ctx=app.ctx, contact_id=h.ids["eve"], owner=sam,
             reason="territory", actor="test")
    rita = Principal(name="rita", role="sales_rep", scope="write", user_id=h.rita)
    mine = credit(app, "linear", "source", rita)
    assert (mine.customers, mine.pipeline) == (1, {"EUR": 1000.0})  # ann's, not eve's deal
    theirs = credit(app, "first", "source", Principal(name="sam", role="sales_rep",
                                                      scope="write", user_id=sam))
    assert (theirs.customers, theirs.pipeline) == (0, {"USD": 500.0})
    assert [g.group for g in theirs.groups] == ["ads"]
    with TestClient(create_app(app)) as api:
        body = api.get("/api/v1/analytics/attribution?model=linear&by=content",
                       headers=_key(app, h.rita)).json()
        assert body["customers"] == 1
        assert body["pipeline"] == {"EUR": 1000.0}
        everything = api.get("/api/v1/analytics/attribution?model=first&by=source",
                             headers=_key(app, create_user(
                                 uow=app.uow(), ctx=app.ctx, email="m@x.example", name="M",
                                 role="marketer").id)).json()
        assert everything["pipeline"] == {"EUR": 1000.0, "USD": 500.0}
        assert api.get("/api/v1/analytics/attribution?model=middle",
                       headers=_key(app, h.rita)).status_code == 422
