"""The main journeys, in Chromium, as a marketer and as a sales rep: find a hot prospect,
qualify it, create an opportunity, win it, see the funnel change; and what must never work:
another rep's contact by URL, script in a name, a form without its CSRF token."""

from __future__ import annotations

import re
from typing import Any

from leadflow.bootstrap import App
from leadflow.domain.model import Contact
from leadflow.domain.users import User
from leadflow.services.assignments import reassign
from leadflow.services.events import EventIn, record_event
from tests.conftest import good_fit_contact
from tests.web.conftest import People


def _hot_prospect(app: App, owner: User, email: str, first_name: str, last_name: str) -> int:
    contact = good_fit_contact(app, email, first_name=first_name, last_name=last_name)
    assert contact.id is not None
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="demo_request", contact_id=contact.id))
    if _contact(app, contact.id).owner_id != owner.id:
        reassign(uow=app.uow(), ctx=app.ctx, contact_id=contact.id, owner=owner.id,
                 reason="test set-up", actor="test")
    got = _contact(app, contact.id)
    assert (got.stage, got.temperature, got.owner_id) == ("prospect", "hot", owner.id)
    return contact.id


def _contact(app: App, contact_id: int) -> Contact:
    with app.reader() as uow:
        found = uow.contacts.get(contact_id)
    assert found is not None
    return found


def _customers_reached(page: Any) -> int:
    page.goto("/")
    cell = page.locator('#funnel tr[data-stage="customer"] td').nth(2).inner_text()
    return int(re.sub(r"\D", "", cell) or 0)


def test_a_rep_wins_a_hot_prospect_and_marketing_sees_the_funnel_change(
        browse: Any, app: App, people: People) -> None:
    hugo = _hot_prospect(app, people.rep, "hugo@acme.example", "Hugo", "Hotline")
    marketer = browse(people.marketer)
    assert _customers_reached(marketer) == 0
    # Marketing finds the hot prospect in the contact list.
    marketer.goto("/contacts?stage=prospect&temperature=hot")
    assert marketer.locator(f'a[href="/contacts/{hugo}"]').count() >= 1

    rep = browse(people.rep)
    rep.click("text=My queue")
    first = rep.locator("#prospects a[href^='/contacts/']").first
    assert first.get_attribute("href") == f"/contacts/{hugo}"
    first.click()
    rep.wait_for_url(f"**/contacts/{hugo}")
    rep.click("#accept")
    rep.wait_for_load_state()
    # Qualify: BANT and the prerequisite, all passing.
    rep.select_option("#qualification-answers-budget", "approved")
    rep.select_option("#qualification-answers-authority", "decision_maker")
    rep.select_option("#qualification-answers-need", "yes")
    rep.fill("#qualification-answers-timeline", "2026-05-01")
    rep.select_option("#qualification-answers-has_crm_data", "yes")
    rep.click("#qualification-form button.primary")
    rep.wait_for_load_state()
    assert "qualified" in rep.locator("#qualification h2").inner_text().lower()
    assert _contact(app, hugo).qualification.passed
    # Create the opportunity, then win it on the board.
    rep.click("#new-opportunity summary")
    rep.fill("#opportunity-name", "Acme CRM rollout")
    rep.fill("#opportunity-amount", "24000")
    rep.click("#new-opportunity button.primary")
    rep.wait_for_load_state()
    assert _contact(app, hugo).stage == "opportunity"
    rep.goto("/opportunities")
    card = rep.locator("article.deal", has_text="Acme CRM rollout")
    rep.once("dialog", lambda dialog: dialog.accept())
    card.locator("button", has_text="Mark won").click()
    rep.wait_for_load_state()
    assert _contact(app, hugo).stage == "customer"

    assert _customers_reached(marketer) == 1


def test_a_rep_cannot_open_another_reps_contact_by_url(browse: Any, app: App,
                                                       people: People) -> None:
    theirs = _hot_prospect(app, people.other_rep, "olga@acme.example", "Olga", "Elsewhere")
    rep = browse(people.rep)
    answer = rep.goto(f"/contacts/{theirs}")
    assert answer.status in (403, 404)
    assert "Olga" not in rep.content()
    assert "olga@acme.example" not in rep.content()


def test_a_name_with_script_is_shown_as_text(browse: Any, app: App, people: People) -> None:
    evil = good_fit_contact(app, "evil@acme.example",
                            first_name="<script>window.pwned=1</script>",
                            last_name='<img src=x onerror="window.pwned=2">')
    marketer = browse(people.marketer)
    for path in (f"/contacts/{evil.id}", "/contacts?q=evil"):
        marketer.goto(path)
        assert marketer.evaluate("window.pwned") is None
        assert "<script>window.pwned=1</script>" in marketer.inner_text("main")


def test_a_form_without_its_csrf_token_is_refused(browse: Any, app: App,
                                                  people: People) -> None:
    hugo = _hot_prospect(app, people.rep, "hugo@acme.example", "Hugo", "Hotline")
    rep = browse(people.rep)
    rep.goto(f"/contacts/{hugo}")
    rep.click("#log-activity summary")
    form = rep.locator("#log-activity form")
    form.locator("textarea, input[type=text]").first.fill("a note nobody should save")
    form.evaluate("f => f.querySelector('input[name=csrf_token]').remove()")
    with rep.expect_navigation() as sent:
        form.locator("button.primary").click()
    assert sent.value.status == 403
    assert "reload the page" in rep.inner_text("main")
    with app.reader() as uow:
        assert not uow.activities.of_contact(hugo, 10)
