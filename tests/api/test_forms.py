"""Landing pages, forms on other sites and progressive profiling, over HTTP on both databases.

What is checked is what a visitor, a marketer and the database see: the page's HTML, the
contact's consent, events, answers and queued email, and that refused input stores nothing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from leadflow.adapters.config_file import default_config_text, parse_config_text
from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.content import ContentItem
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.model import ConsentRecord
from leadflow.services import forms
from leadflow.services.api_keys import create_api_key
from leadflow.services.users import create_user
from tests.api.conftest import Keys, basic, bearer, count, counts, events_of, rows
from tests.conftest import T0, FakeClock

FORM = {"key": "crm-guide", "name": "CRM buyer's guide",
        "headline": "The CRM buyer's guide",
        "pitch": "Choosing a CRM is hard.\n\nThis guide lists the 12 questions to ask.",
        "item_key": "crm-guide",
        "fields": ["company", "title", "company_size", "timeline", "budget"],
        "max_fields": 2, "newsletter": True}


@pytest.fixture
def guide(app: App) -> ContentItem:
    """A premium white paper at the evaluation stage: what the form gates."""
    with app.uow() as uow:
        item = uow.content.add(ContentItem(
            key="crm-guide", title="The CRM buyer's guide (PDF)",
            url="https://acme.example/assets/crm-guide.pdf", maturity="evaluation",
            format="white_paper", premium=True, topics=("crm",)), T0)
        uow.commit()
    return item


@pytest.fixture
def form(api: TestClient, keys: Keys, guide: ContentItem) -> dict[str, Any]:
    made = api.post("/api/v1/forms", headers=bearer(keys.admin), json=FORM)
    assert made.status_code == 201, made.text
    return dict(made.json())


def page(api: TestClient, url: str = "/p/crm-guide") -> tuple[str, dict[str, str]]:
    """The page's HTML and its hidden fields."""
    answer = api.get(url)
    assert answer.status_code == 200, answer.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">',
                             answer.text))
    return answer.text, hidden


def asked(html: str) -> list[str]:
    """The names of the visible inputs and selects, in page order."""
    names = re.findall(r'<(?:input|select) id="f-[a-z_]+" (?:type="[a-z]+" )?name="([a-z_]+)"',
                       html)
    return names


def submit(api: TestClient, data: dict[str, str], url: str = "/p/crm-guide") -> Any:
    return api.post(url, data=data)


def contact_id_of(app: App, email: str) -> int | None:
    with app.engine.connect() as conn:
        found = conn.execute(select(t.contacts.c.id).where(t.contacts.c.email == email)
                             ).scalar()
    return None if found is None else int(found)


def mail(app: App) -> list[Any]:
    return rows(app, t.mail_messages)


def test_a_landing_page_shows_the_pitch_and_asks_at_most_n_unknown_fields(
        api: TestClient, form: dict[str, Any]) -> None:
    answer = api.get("/p/crm-guide")
    assert answer.status_code == 200
    html = answer.text
    assert "<h1>The CRM buyer&#39;s guide</h1>" in html
    assert "<p>Choosing a CRM is hard.</p>" in html
    assert "<p>This guide lists the 12 questions to ask.</p>" in html
    assert "The CRM buyer&#39;s guide (PDF)" in html
    # A stranger: the email, then the form's first two profiling fields, nothing more.
    assert asked(html) == ["email", "company", "title"]
    assert 'name="consent"' in html
    assert 'name="newsletter"' in html
    assert 'name="homepage"' in html  # the honeypot
    # Nothing from elsewhere, and no script may run at all.
    assert "<script" not in html
    assert "<link" not in html
    assert "src=" not in html
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert answer.headers["cache-control"] == "no-store"
    assert form["url"] == "http://127.0.0.1:8000/p/crm-guide"
    assert form["asks"] == FORM["fields"]
    assert form["asks_at_most"] == 2


def test_a_submission_makes_a_lead_with_consent_an_event_and_one_asset_email(
        api: TestClient, app: App, keys: Keys, form: dict[str, Any]) -> None:
    _, hidden = page(api)
    data = {**hidden, "email": "Ann@Acme.example", "company": "Acme", "title": "CTO",
            "consent": "yes", "newsletter": "yes"}
    answer = submit(api, data)
    assert answer.status_code == 200, answer.text
    assert "It is on its way to your inbox:" in answer.text
    assert "The CRM buyer&#39;s guide (PDF)" in answer.text
    contact_id = contact_id_of(app, "ann@acme.example")
    assert contact_id is not None
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert shown["consent"] == {
        "email": {"granted": True, "source": "form:crm-guide", "at": T0},
        "newsletter": {"granted": True, "source": "form:crm-guide", "at": T0}}
    assert shown["title"] == "CTO"
    assert shown["account"]["name"] == "Acme"
    assert shown["stage"] == "lead"
    assert shown["source"] == "form"
    assert shown["engagement"]["score"] > 0
    assert {"form_submitted", "premium_download"} <= set(shown["engagement"]["breakdown"])
    events = events_of(app, contact_id)
    assert [(e.type, e.url) for e in events] == [
        ("form_submitted", "/p/crm-guide"), ("content_download", "/assets/crm-guide.pdf")]
    assert events[0].properties == {"form": "crm-guide", "item": "crm-guide"}
    [message] = mail(app)
    assert (message.contact_id, message.category, message.template, message.form_key,
            message.status) == (contact_id, "transactional", "asset", "crm-guide", "queued")
    assert message.item_id is not None

    # The same submission again (a reload of the thank-you page, a double click): nothing new.
    before = counts(app)
    again = submit(api, data)
    assert again.status_code == 200
    assert "It is on its way to your inbox:" in again.text
    assert counts(app) == before
    assert len(mail(app)) == 1
    # A new visit of the page is a new submission: a second copy, which the person asked for.
    _, hidden = page(api)
    assert submit(api, {**hidden, "email": "ann@acme.example"}).status_code == 200
    assert len(mail(app)) == 2
    assert len(events_of(app, contact_id)) == 4


def test_an_unticked_box_records_no_consent(api: TestClient, app: App, keys: Keys,
                                            form: dict[str, Any]) -> None:
    _, hidden = page(api)
    assert submit(api, {**hidden, "email": "bob@beta.example"}).status_code == 200
    contact_id = contact_id_of(app, "bob@beta.example")
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert shown["consent"] == {}
    # An unsubscribed person who fills the form and leaves the box alone stays unsubscribed.
    with app.uow() as uow:
        contact = uow.contacts.get(contact_id or 0)
        assert contact is not None
        contact.consent["email"] = ConsentRecord("email", False, "unsubscribe", T0)
        uow.contacts.save(contact)
        uow.commit()
    _, hidden = page(api)
    assert submit(api, {**hidden, "email": "bob@beta.example"}).status_code == 200
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert shown["consent"]["email"]["granted"] is False
    # Nor does a ticked box: anyone can type anyone's email into a public form.
    _, hidden = page(api)
    ticked = {**hidden, "email": "bob@beta.example", "consent": "yes", "newsletter": "yes"}
    assert submit(api, ticked).status_code == 200
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert shown["consent"]["email"] == {"granted": False, "source": "unsubscribe", "at": T0}
    assert "newsletter" not in shown["consent"]


def test_the_profile_link_asks_what_is_still_unknown(api: TestClient, app: App, keys: Keys,
                                                    form: dict[str, Any],
                                                    clock: FakeClock) -> None:
    _, hidden = page(api)
    assert submit(api, {**hidden, "email": "ann@acme.example", "company": "Acme",
                        "title": "CTO"}).status_code == 200
    contact_id = contact_id_of(app, "ann@acme.example")
    assert contact_id is not None
    link = LinkSigner(app.settings.signing_key, app.settings.public_url).profile(
        "crm-guide", contact_id)
    parts = urlsplit(link)
    second = f"{parts.path}?{parts.query}"
    html, hidden = page(api, second)
    # Company and title are known: the next two unknown fields, and no email to type again.
    assert asked(html) == ["company_size", "timeline"]
    assert hidden["t"] == parts.query.removeprefix("t=")
    clock.advance(3600)
    answer = submit(api, {**hidden, "company_size": "300", "timeline": "2026-05-01"})
    assert answer.status_code == 200, answer.text
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert shown["account"]["employees"] == 300
    assert shown["qualification"]["answers"] == {"timeline": "2026-05-01"}
    html, _ = page(api, second)
    assert asked(html) == ["budget"]
    assert forms.fields_for(uow=app.reader(), ctx=app.ctx, form_key="crm-guide",
                            contact_id=contact_id) == ["budget"]
    assert forms.fields_for(uow=app.reader(), ctx=app.ctx, form_key="crm-guide",
                            contact_id=None) == ["company", "title"]
    # A forged or foreign token names nobody: the page asks a stranger's questions.
    forged = second[:-3] + ("AAA" if not second.endswith("AAA") else "BBB")
    html, hidden = page(api, forged)
    assert asked(html) == ["email", "company", "title"]
    assert "t" not in hidden
    assert count(app, t.contacts) == 1


def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
        api: TestClient, app: App, keys: Keys, form: dict[str, Any]) -> None:
    _, hidden = page(api)
    before = counts(app)
    answer = submit(api, {**hidden, "email": "ann@", "company": "Acme", "consent": "yes"})
    assert answer.status_code == 422
    html = answer.text
    assert re.search(r'<p class="error" id="e-email">not a valid email address', html)
    assert 'value="Acme"' in html  # what was typed stays
    assert f'name="submission" value="{hidden["submission"]}"' in html
    for field, value in (("company_size", "lots"), ("budget", "infinite")):
        wrong = submit(api, {**hidden, "email": "ann@acme.example", field: value})
        assert wrong.status_code == 422
        assert f'id="e-{field}"' in wrong.text
    missing = submit(api, {**hidden, "company": "Acme"})
    assert missing.status_code == 422
    assert 'id="e-email"' in missing.text
    over = api.post("/v1/forms/crm-guide", headers=basic(keys.public),
                    json={"email": "ann@acme.example", "country": "France"})
    assert over.status_code == 422
    assert over.json()["error"]["field"] == "country"
    assert counts(app) == before
    assert mail(app) == []


def test_user_strings_are_escaped_on_the_page(api: TestClient, app: App, keys: Keys,
                                              form: dict[str, Any]) -> None:
    api.patch("/api/v1/forms/crm-guide", headers=bearer(keys.admin),
              json={"fields": ["first_name", "company"], "pitch": "<b>bold</b> & <i>co</i>"})
    html, hidden = page(api)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt;" in html
    evil = "<script>alert(1)</script>"
    wrong = submit(api, {**hidden, "email": "nope", "first_name": evil})
    assert wrong.status_code == 422
    assert "<script>" not in wrong.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in wrong.text
    assert submit(api, {**hidden, "email": "eve@acme.example",
                        "first_name": evil}).status_code == 200
    contact_id = contact_id_of(app, "eve@acme.example")
    assert contact_id is not None
    link = urlsplit(LinkSigner(app.settings.signing_key, app.settings.public_url).profile(
        "crm-guide", contact_id))
    html, _ = page(api, f"{link.path}?{link.query}")
    assert "Welcome back, &lt;script&gt;alert(1)&lt;/script&gt;." in html
    assert "<script" not in html


def test_forms_on_other_sites_need_the_write_key_and_answer_cors(
        api: TestClient, app: App, keys: Keys, form: dict[str, Any]) -> None:
    body = {"email": "cid@gamma.example", "company": "Gamma", "consent": True,
            "submission_id": "site-1"}
    origin = {"Origin": "https://www.gamma.example"}
    refused = api.post("/v1/forms/crm-guide", json=body, headers=origin)
    assert refused.status_code == 401
    assert refused.json()["error"]["field"] == "authorization"
    assert count(app, t.contacts) == 0
    preflight = api.options("/v1/forms/crm-guide", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    answer = api.post("/v1/forms/crm-guide", json=body, headers={**origin, **basic(keys.public)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] in ("*", origin["Origin"])
    assert answer.json() == {"ok": True, "form": "crm-guide", "asset": "emailed",
                             "message": "It is on its way to your inbox: "
                                        "The CRM buyer's guide (PDF)"}
    contact_id = contact_id_of(app, "cid@gamma.example")
    assert contact_id is not None
    assert [e.type for e in events_of(app, contact_id)] == ["form_submitted",
                                                           "content_download"]
    # A retry with the same submission id queues no second email.
    assert api.post("/v1/forms/crm-guide", json=body,
                    headers=basic(keys.public)).status_code == 200
    assert len(mail(app)) == 1
    # A plain HTML form posts url-encoded, with the key as a field.
    encoded = api.post("/v1/forms/crm-guide", data={
        "writeKey": keys.public, "email": "dan@delta.example", "company_size": "40"})
    assert encoded.status_code == 200, encoded.text
    assert contact_id_of(app, "dan@delta.example") is not None
    assert len(mail(app)) == 2
    unknown = api.post("/v1/forms/nope", json=body, headers=basic(keys.public))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "key"


def test_an_erased_person_never_comes_back(api: TestClient, app: App, keys: Keys,
                                          form: dict[str, Any]) -> None:
    _, hidden = page(api)
    assert submit(api, {**hidden, "email": "ann@acme.example", "anonymous_id": "v-9",
                        "consent": "yes"}).status_code == 200
    contact_id = contact_id_of(app, "ann@acme.example")
    erased = api.post(f"/api/v1/contacts/{contact_id}/erase", headers=bearer(keys.admin),
                      json={"reason": "asked to be forgotten"})
    assert erased.status_code == 204, erased.text
    before = {**counts(app), "mail": len(mail(app))}
    _, hidden = page(api)
    again = submit(api, {**hidden, "email": "ANN@Acme.Example", "company": "Acme",
                         "consent": "yes"})
    # Answered like anyone else (the page must not tell who asked to be forgotten)...
    assert again.status_code == 200
    assert "It is on its way to your inbox:" in again.text
    # ...and nothing is stored: no contact, no event, no email.
    assert {**counts(app), "mail": len(mail(app))} == before
    assert contact_id_of(app, "ann@acme.example") is None
    by_visitor = submit(api, {**hidden, "email": "new@acme.example", "anonymous_id": "v-9"})
    assert by_visitor.status_code == 200
    assert {**counts(app), "mail": len(mail(app))} == before
    other_site = api.post("/v1/forms/crm-guide", headers=basic(keys.public),
                          json={"email": " Ann@ACME.example "})
    assert other_site.status_code == 200
    assert other_site.json()["asset"] == "emailed"
    assert {**counts(app), "mail": len(mail(app))} == before


def test_a_visitor_s_anonymous_history_joins_the_contact(api: TestClient, app: App,
                                                        keys: Keys,
                                                        form: dict[str, Any]) -> None:
    viewed = api.post("/v1/page", headers=basic(keys.public),
                      json={"anonymousId": "v-1", "name": "Pricing",
                            "properties": {"url": "https://acme.example/pricing"}})
    assert viewed.status_code == 200, viewed.text
    _html, hidden = page(api, "/p/crm-guide?aid=v-1&utm_source=ads")
    assert hidden["anonymous_id"] == "v-1"
    assert hidden["utm_source"] == "ads"
    assert submit(api, {**hidden, "email": "fay@acme.example"}).status_code == 200
    assert count(app, t.contacts) == 1
    contact_id = contact_id_of(app, "fay@acme.example")
    assert contact_id is not None
    events = events_of(app, contact_id)
    assert [e.type for e in events] == ["page_view", "form_submitted", "content_download"]
    assert events[1].utm_source == "ads"
    shown = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.admin)).json()
    assert {"kind": "anonymous_id", "value": "v-1"} in shown["identities"]


def test_the_honeypot_and_the_rate_limit(api: TestClient, app: App,
                                         form: dict[str, Any]) -> None:
    _, hidden = page(api)
    bot = submit(api, {**hidden, "email": "bot@spam.example", "homepage": "http://spam"})
    assert bot.status_code == 200
    assert "It is on its way" in bot.text
    assert count(app, t.contacts) == 0
    statuses = [submit(api, {**hidden, "email": "x@", "consent": "yes"}).status_code
                for _ in range(12)]
    assert statuses[:9] == [422] * 9  # the bot's post took one of the ten
    assert statuses[-1] == 429
    slow = submit(api, {**hidden, "email": "x@"})
    assert slow.status_code == 429
    assert int(slow.headers["retry-after"]) >= 1


def test_unknown_and_inactive_forms_are_a_404_page(api: TestClient, app: App, keys: Keys,
                                                   form: dict[str, Any]) -> None:
    missing = api.get("/p/nope")
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    _, hidden = page(api)
    off = api.patch("/api/v1/forms/crm-guide", headers=bearer(keys.admin),
                    json={"active": False})
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert api.get("/p/crm-guide").status_code == 404
    posted = submit(api, {**hidden, "email": "ann@acme.example"})
    assert posted.status_code == 404
    assert "Page not found" in posted.text
    assert count(app, t.contacts) == 0


def test_marketers_manage_forms_and_every_mistake_names_its_field(
        api: TestClient, app: App, keys: Keys, guide: ContentItem) -> None:
    marketer = create_user(uow=app.uow(), ctx=app.ctx, email="mo@acme.example", name="Mo",
                           role="marketer")
    mo = bearer(create_api_key(uow=app.uow(), ctx=app.ctx, name="mo", kind="secret",
                               scopes=["write"], user=marketer.id).token)
    made = api.post("/api/v1/forms", headers=mo, json={
        "key": "webinar", "name": "Webinar sign-up", "language": "fr"})
    assert made.status_code == 201, made.text
    assert made.json()["asks"] == ["company", "title", "company_size", "timeline", "budget"]
    assert made.json()["asks_at_most"] == 3  # the configuration's profiling defaults
    html = api.get("/p/webinar").text
    assert '<html lang="fr">' in html
    assert "Entreprise" in html
    assert "Envoyer" in html
    for body, field, status in (
            ({"key": "Bad Key", "name": "x"}, "key", 422),
            ({"key": "ok", "name": "x", "fields": ["shoe_size"]}, "fields", 422),
            ({"key": "ok", "name": "x", "fields": ["title", "title"]}, "fields", 422),
            ({"key": "ok", "name": "x", "item_key": "nope"}, "item_key", 404),
            ({"key": "ok", "name": "x", "language": "french"}, "language", 422),
            ({"key": "ok", "name": " "}, "name", 422),
            ({"key": "webinar", "name": "again"}, "key", 409)):
        wrong = api.post("/api/v1/forms", headers=mo, json=body)
        assert wrong.status_code == status, (body, wrong.text)
        assert wrong.json()["error"]["field"] == field
    listed = api.get("/api/v1/forms", headers=mo).json()
    assert [f["key"] for f in listed] == ["webinar"]
    changed = api.patch("/api/v1/forms/webinar", headers=mo,
                        json={"item_key": "crm-guide", "max_fields": 1})
    assert changed.status_code == 200
    assert (changed.json()["item_key"], changed.json()["asks_at_most"]) == ("crm-guide", 1)
    assert api.get("/api/v1/forms/webinar", headers=mo).json()["name"] == "Webinar sign-up"
    assert api.get("/api/v1/forms/nope", headers=mo).status_code == 404
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.forms)).scalar_one() == 1


def test_a_form_s_autoresponder_is_queued_with_the_asset(settings: Settings,
                                                         clock: FakeClock) -> None:
    raw = yaml.safe_load(default_config_text())
    raw["nurture"]["autoresponders"].append({
        "key": "after_guide", "when": {"form_submitted": "crm-guide"},
        "send": {"maturity": "evaluation"}})
    app = App(settings, clock=clock, config=parse_config_text(yaml.safe_dump(raw),
                                                              source="test"))
    try:
        with app.uow() as uow:
            for key, premium in (("crm-guide", True), ("crm-checklist", False)):
                uow.content.add(ContentItem(key=key, title=key, url=f"/{key}",
                                            maturity="evaluation", format="white_paper",
                                            premium=premium), T0)
            uow.commit()
        forms.create_form(uow=app.uow(), ctx=app.ctx, data=forms.FormIn(
            key="crm-guide", name="Guide", item_key="crm-guide"))
        done = forms.submit(uow=app.uow(), ctx=app.ctx, form_key="crm-guide",
                            data={"email": "ann@acme.example"}, anonymous_id=None,
                            profile_token_contact=None, at=T0, submission_id="s-1")
        assert done.asset_queued
        with app.engine.connect() as conn:
            queued = conn.execute(
                select(t.mail_messages.c.category, t.content_items.c.key)
                .join(t.content_items, t.content_items.c.id == t.mail_messages.c.item_id)
                .order_by(t.mail_messages.c.id)).all()
        assert [tuple(r) for r in queued] == [("transactional", "crm-guide"),
                                              ("marketing", "crm-checklist")]
        replay = forms.submit(uow=app.uow(), ctx=app.ctx, form_key="crm-guide",
                              data={"email": "ANN@acme.example"}, anonymous_id=None,
                              profile_token_contact=None, at=T0, submission_id="s-1")
        assert replay.duplicate
        assert not replay.asset_queued
        assert count(app, t.mail_messages) == 2
    finally:
        app.engine.dispose()
