"""The analytics pages: the funnel by a breakdown (chart and table), time in stage, SLA per
rep — for admins, marketers and managers (their team's), never for reps; a bad breakdown in
the address is a message next to its field; French; one browser visit."""

from __future__ import annotations

import re
from typing import Any

import pytest

from leadflow.bootstrap import App
from leadflow.domain.content import ContentItem
from leadflow.domain.users import User
from leadflow.entrypoints.web import routes_analytics
from leadflow.services.assignments import reassign
from leadflow.services.content import create_item
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import disqualify
from tests.conftest import FakeClock, good_fit_contact
from tests.web.conftest import People

DAY = 86400.0


def _owned_prospect(app: App, email: str, owner: User, source: str) -> int:
    c = good_fit_contact(app, email, source=source)
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
        type="page_view", contact_id=c.id, url="/guides/crm", utm_campaign="spring"))
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request",
                                                           contact_id=c.id))
    with app.reader() as uow:
        contact = uow.contacts.get(c.id)
    assert contact is not None
    assert contact.stage == "prospect"
    if contact.owner_id != owner.id:
        reassign(uow=app.uow(), ctx=app.ctx, contact_id=c.id, owner=owner.id, reason="test",
                 actor="test")
    return c.id


def _history(app: App, people: People, clock: FakeClock) -> None:
    """ann (website) and bob (fair) became prospects, owned by the rep of team west and the
    rep of team east; cat (website) a suspect, disqualified; all of them created today."""
    create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
        key="crm-guide", title="The CRM guide", url="/guides/crm", maturity="discovery",
        format="article"))
    _owned_prospect(app, "ann@ann.example", people.rep, "website")
    _owned_prospect(app, "bob@bob.example", people.other_rep, "fair")
    cat = good_fit_contact(app, "cat@cat.example", source="website")
    assert cat.id is not None
    disqualify(uow=app.uow(), ctx=app.ctx, contact_id=cat.id, reason="a competitor")
    clock.advance(3 * DAY)  # the follow-ups are overdue now


def _cells(html: str, attr: str, value: str) -> list[str]:
    row = re.search(rf'<tr {attr}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert row, (attr, value)
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_a_marketer_sees_the_funnel_and_its_breakdowns(web: Any, app: App, people: People,
                                                       clock: FakeClock) -> None:
    _history(app, people, clock)
    client = web().login(people.marketer)
    html = client.get("/analytics").text
    assert "<svg" in html
    assert "3 contacts" in html
    # stage, now, ever reached, strict, cumulative: both prospects jumped from suspect,
    # passing lead; cat was disqualified a suspect
    assert _cells(html, "data-stage", "lead") == ["Lead", "0", "2", "66.7\u00a0%",
                                                  "66.7\u00a0%"]
    assert _cells(html, "data-stage", "prospect") == ["Prospect", "2", "2", "100.0\u00a0%",
                                                      "100.0\u00a0%"]
    assert _cells(html, "data-stage", "disqualified")[1] == "1"
    assert "0 recycles, 1 disqualifications, 0 other" in html
    by_source = client.get("/analytics?by=source").text
    assert _cells(by_source, "data-group", "website")[:2] == ["website", "2"]
    assert _cells(by_source, "data-group", "fair")[:2] == ["fair", "1"]
    assert "Cumulative conversion by group" in by_source
    weeks = client.get("/analytics?by=cohort-week").text
    assert "Week of 2026-03-02" in weeks
    guide = client.get("/analytics?by=content&item=crm-guide").text
    assert _cells(guide, "data-group", "consumed")[:2] == ["Consumed crm-guide", "2"]
    assert "Did not consume it" in guide
    maturity = client.get("/analytics?by=content").text
    assert "discovery" in maturity
    assert "several maturities" in maturity


def test_a_bad_breakdown_is_a_message_next_to_its_field(web: Any, app: App,
                                                        people: People) -> None:
    client = web().login(people.admin)
    bad = client.get("/analytics?by=colour")
    assert bad.status_code == 422
    assert re.search(r'id="e-by">Choose a breakdown from the list\.', bad.text)
    item = client.get("/analytics/time-in-stage?by=source&item=crm-guide")
    assert item.status_code == 422
    assert 'id="e-item"' in item.text
    assert "Traceback" not in bad.text + item.text


def test_time_in_stage_and_sla(web: Any, app: App, people: People, clock: FakeClock) -> None:
    _history(app, people, clock)
    client = web().login(people.admin)
    times = client.get("/analytics/time-in-stage").text
    assert "<svg" in times
    suspect = _cells(times, "data-stage", "suspect")
    assert suspect[1:3] == ["3", "0"]  # every suspect left (two prospects, one disqualified)
    assert _cells(times, "data-stage", "prospect")[1:3] == ["0", "2"]
    by_source = client.get("/analytics/time-in-stage?by=source").text
    assert "<h2>website</h2>" in by_source
    sla = client.get("/analytics/sla").text
    assert "<svg" in sla
    rita = _cells(sla, "data-owner", str(people.rep.id))
    assert rita[0] == "Rita Rep"
    assert rita[3] == "1"  # ann's follow-up: open and overdue
    assert rita[5] == "0.0\u00a0%"


def test_a_manager_sees_their_team_and_a_rep_nothing(web: Any, app: App, people: People,
                                                     clock: FakeClock) -> None:
    _history(app, people, clock)
    manager = web().login(people.manager)
    html = manager.get("/analytics").text
    assert "your team" in html
    assert "1 contacts" in html  # ann only: bob is team east's, cat nobody's
    sla = manager.get("/analytics/sla").text
    assert f'data-owner="{people.rep.id}"' in sla
    assert f'data-owner="{people.other_rep.id}"' not in sla
    rep = web().login(people.rep)
    for path in ("/analytics", "/analytics/time-in-stage", "/analytics/sla"):
        assert rep.get(path).status_code == 403, path
    assert "/analytics" not in rep.get("/").text  # not in the rep's menu


def test_the_pages_read_in_french(web: Any, app: App, people: People,
                                  clock: FakeClock) -> None:
    _history(app, people, clock)
    client = web().login(people.marketer)
    client.post("/language", {"lang": "fr", "next": "/analytics"})
    html = client.get("/analytics?by=source").text
    assert "Répartir par" in html
    assert "Conversion cumulée par groupe" in html
    assert "66,7\u00a0%" in html
    assert "Temps par étape" in client.get("/analytics/time-in-stage").text
    assert "Respect du SLA" in client.get("/analytics/sla").text


def test_choosing_a_breakdown_in_a_browser(browse: Any, app: App, people: People,
                                           clock: FakeClock) -> None:
    _history(app, people, clock)
    page = browse(people.marketer)
    page.click("nav#nav >> text=Analytics")
    assert page.locator("#funnel svg").count() == 1
    page.select_option("#f-by", "source")
    page.click("#breakdown button.primary")
    page.wait_for_url("**/analytics?by=source*")
    assert page.locator("#groups tbody tr").count() == 2
    assert page.locator("#funnel svg").count() == 1
    page.click("text=SLA per rep")
    assert page.locator("#reps tbody tr").count() == 2


def test_slow_figures_are_kept_a_while_and_say_so(web: Any, app: App, people: People,
                                                  clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """On a large install the figures of a view are kept five minutes (here: whatever time
    they take); the page says as of when."""
    monkeypatch.setattr(routes_analytics, "SLOW_SECONDS", -1.0)
    _history(app, people, clock)
    client = web().login(people.marketer)
    first = client.get("/analytics").text
    assert 'id="as-of"' not in first
    assert "3 contacts" in first
    good_fit_contact(app, "dan@dan.example")
    kept = client.get("/analytics").text
    assert 'id="as-of"' in kept
    assert "3 contacts" in kept  # as of the first view
    assert "4 contacts" in client.get("/analytics?by=source").text  # another view: now
