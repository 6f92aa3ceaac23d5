"""The dashboard: funnel, entries over time, hot prospects and overdue follow-ups — of what
the viewer may see."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select, update

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.demo.install import install_demo
from leadflow.domain.ports import NullProgress
from leadflow.services.followup import create_task
from leadflow.services.moves import move_stage
from tests.conftest import FakeClock, good_fit_contact
from tests.web.conftest import People, screenshot


def _row(html: str, stage: str) -> list[str]:
    row = re.search(rf'<tr data-stage="{stage}">(.*?)</tr>', html, re.S)
    assert row, stage
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def _prospect(app: App, email: str, owner_id: int) -> int:
    contact = good_fit_contact(app, email)
    assert contact.id is not None
    move_stage(uow=app.uow(), ctx=app.ctx, contact_id=contact.id, to_stage="prospect",
               reason="asked for a demo", actor="test")
    with app.engine.begin() as conn:
        conn.execute(update(t.contacts).where(t.contacts.c.id == contact.id)
                     .values(owner_id=owner_id))
    return contact.id


def test_the_funnel_counts_every_contact_for_a_marketer(web: Any, app: App,
                                                       people: People) -> None:
    for i in range(3):
        good_fit_contact(app, f"lead{i}@acme.example")
    _prospect(app, "pia@acme.example", people.rep.id)
    html = web().login(people.marketer).get("/").text
    with app.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t.contacts)).scalar_one()
    assert total == 4
    _, now_count, reached, conversion = _row(html, "prospect")
    assert (now_count, reached) == ("1", "1")
    assert conversion.endswith("%")
    assert "<svg" in html
    assert "Reached each stage" in html
    assert "pia@acme.example" in html  # a hot-prospect candidate, listed for marketing


def test_a_rep_sees_the_funnel_and_prospects_of_their_own_contacts(
        web: Any, app: App, people: People) -> None:
    _prospect(app, "mine@acme.example", people.rep.id)
    _prospect(app, "theirs@acme.example", people.other_rep.id)
    html = web().login(people.rep).get("/").text
    assert _row(html, "prospect")[1] == "1"
    assert "mine@acme.example" in html
    assert "theirs@acme.example" not in html
    assert "your contacts" in html


def test_overdue_follow_ups_are_listed_most_late_first(web: Any, app: App, people: People,
                                                      clock: FakeClock) -> None:
    contact = _prospect(app, "late@acme.example", people.rep.id)
    create_task(uow=app.uow(), ctx=app.ctx, contact_id=contact, kind="call",
                title="Call about pricing", due_at=clock.now() + 3600, owner_id=people.rep.id,
                actor="test")
    html = web().login(people.manager).get("/").text
    assert "Call about pricing" not in html.split('id="overdue"')[1]
    clock.advance(2 * 86400)
    html = web().login(people.manager).get("/").text
    overdue = html.split('id="overdue"')[1]
    assert "Call about pricing" in overdue
    assert "ago" in overdue
    other = web().login(people.other_rep).get("/").text
    assert "Call about pricing" not in other


def test_the_dashboard_reads_in_french(web: Any, app: App, people: People) -> None:
    client = web().login(people.marketer)
    client.post("/language", {"lang": "fr", "next": "/"})
    html = client.get("/").text
    assert "Entonnoir" in html
    assert "Relances en retard" in html


def test_dashboard_in_a_browser_on_a_laptop_and_a_phone(browse: Any, app: App,
                                                        people: People) -> None:
    install_demo(app, contacts=400, seed=7, progress=NullProgress())
    page = browse(people.admin)
    assert page.locator("#funnel svg").count() == 1
    assert page.locator("#entries svg").count() == 1
    screenshot(page, "dashboard")
    phone = browse(people.admin, viewport={"width": 390, "height": 844})
    assert not phone.locator("#nav").is_visible()
    phone.click(".menu-toggle")
    assert phone.locator("#nav").is_visible()
    with app.engine.connect() as conn:
        prospect = conn.execute(select(t.contacts.c.id).where(
            t.contacts.c.stage == "prospect")).scalars().first()
    # Nothing wider than the phone's screen but what scrolls inside its own box (the board's
    # cards, whose hidden labels are absolute, and the pipeline's tables once widened pages).
    for path in ("/", f"/contacts/{prospect}", "/opportunities", "/settings/pipeline"):
        phone.goto(path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, (path, width)
