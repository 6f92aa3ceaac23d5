"""The marketing pages: content library, nurture tracks and the newsletter, forms.

Data is made with the services; the pages are read and posted through the web TestClient as
a marketer (admins see the same), on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import html
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from leadflow.adapters.db import library_reads
from leadflow.bootstrap import App
from leadflow.domain.content import MATURITIES, ContentItem
from leadflow.domain.forms import FIELD_LABELS
from leadflow.domain.mail_policy import MARKETING, SENT
from leadflow.domain.model import ConsentRecord
from leadflow.domain.nurture import AUDIENCE_ROLES
from leadflow.domain.sales import TASK_KINDS
from leadflow.entrypoints.web import routes_library
from leadflow.entrypoints.web.routes_library import FORMAT_NAMES
from leadflow.services import content, forms, nurture
from leadflow.services.api_keys import create_api_key
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.mail_queue import queue_mail
from tests.web.conftest import People

WEB = Path(__file__).resolve().parents[2] / "src" / "leadflow" / "entrypoints" / "web"
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "leadflow" / "templates" / "web"

LIBRARY = [
    ContentItem(key="scoring-basics", title="What is lead scoring?", url="/guides/scoring",
                maturity="discovery", format="article", topics=("scoring",)),
    ContentItem(key="funnel-basics", title="Funnel basics", url="/guides/funnel",
                maturity="discovery", format="article", topics=("funnel",)),
    ContentItem(key="crm-comparison", title="CRM comparison", url="/wp/crm-comparison",
                maturity="evaluation", format="white_paper", premium=True, topics=("crm",)),
    ContentItem(key="pricing", title="Pricing and plans", url="/pricing",
                maturity="decision", format="pricing"),
    ContentItem(key="guide-fr", title="Le guide du scoring", url="/fr/guide",
                maturity="discovery", format="article", language="fr"),
    ContentItem(key="news-1", title="Newsletter #1: the funnel issue", url="/news/1",
                maturity="discovery", format="newsletter_issue"),
]


def library(app: App) -> dict[str, ContentItem]:
    return {i.key: content.create_item(uow=app.uow(), ctx=app.ctx, item=i) for i in LIBRARY}


def lead(app: App, email: str, **fields: Any) -> int:
    """A lead nobody owns: in the marketing track of the shipped configuration."""
    made = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email=email, **fields))
    assert made.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="form_submitted",
                                                           contact_id=made.id))
    return made.id


def error_of(page: str, name: str) -> str:
    """The message shown under a field of a re-rendered form."""
    found = re.search(rf'<p class="error" id="e-{name}">(.*?)</p>', page, re.S)
    assert found, f"no error under {name!r}"
    return html.unescape(found.group(1))


def items(app: App, **filters: Any) -> list[str]:
    page = content.list_items(uow=app.reader(), include_archived=True, **filters)
    return [i.key for i in page.items]


# -- the content library ---------------------------------------------------------------------

def test_empty_states_say_what_to_do(web: Any, people: People) -> None:
    client = web().login(people.marketer)
    assert "No content yet — add an item or import a CSV" in client.get("/content").text
    assert "No form yet — add one" in client.get("/forms").text
    assert "No newsletter issue in the library." in client.get("/nurture").text


def test_the_library_lists_filters_and_counts_what_the_services_made(
        app: App, web: Any, people: People) -> None:
    made = library(app)
    content.archive_item(uow=app.uow(), ctx=app.ctx, key="funnel-basics")
    reader = lead(app, "rea@example.com")
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
        type="page_view", contact_id=reader, url="https://site.example/guides/scoring/?x=1"))
    with app.uow() as uow:
        sent = queue_mail(uow, contact_id=reader, category=MARKETING, template="content",
                          dedupe_key="test:1", priority=30, at=app.clock.now(),
                          item=made["scoring-basics"])
        assert sent is not None
        uow.mail.finish(sent, status=SENT, at=app.clock.now())
        uow.commit()
    client = web().login(people.marketer)
    page = client.get("/content").text
    for item in LIBRARY:
        if item.key != "funnel-basics":
            assert item.title in page
    assert "Funnel basics" not in page  # archived: out of the list
    row = re.search(r'<tr data-key="scoring-basics">.*?</tr>', page, re.S)
    assert row is not None
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row.group(0))] == \
        [1, 1, 0, 0]  # consumed by, sent, opened, clicked
    decision = client.get("/content?maturity=decision").text
    assert "Pricing and plans" in decision
    assert "CRM comparison" not in decision
    assert "Le guide du scoring" in client.get("/content?language=fr").text
    assert "CRM comparison" in client.get("/content?topic=crm").text
    searched = client.get("/content?q=pricing").text
    assert "Pricing and plans" in searched
    assert "What is lead scoring?" not in searched
    assert "Funnel basics" in client.get("/content?archived=1").text
    assert "No item matches these filters." in client.get("/content?q=nothing-like-it").text


def test_adding_an_item_with_a_bad_value_shows_the_message_by_the_field_and_writes_nothing(
        app: App, web: Any, people: People) -> None:
    client = web().login(people.marketer)
    client.get("/content/new")
    good = {"key": "crm-guide", "title": "The CRM guide", "url": "/guides/crm",
            "maturity": "evaluation", "format": "white_paper", "premium": "1",
            "topics": "crm, sales", "language": "en", "summary": "All of it."}
    bad = client.post("/content/new", {**good, "url": "not a url"})
    assert bad.status_code == 422
    assert "http(s) URL" in error_of(bad.text, "url")
    assert 'value="The CRM guide"' in bad.text  # what was typed stays
    assert items(app) == []
    assert "two-letter" in error_of(client.post("/content/new", {**good, "language": "eng"}).text,
                                    "language")
    done = client.post("/content/new", good)
    assert done.status_code == 303
    assert done.headers["location"] == "/content"
    item = content.get_item(uow=app.reader(), key="crm-guide")
    assert (item.premium, item.topics, item.maturity) == (True, ("crm", "sales"), "evaluation")
    assert "“The CRM guide” is in the library." in client.get("/content").text
    again = client.post("/content/new", {**good, "title": "Another"})
    assert again.status_code == 422
    assert "exists" in error_of(again.text, "key")
    assert content.get_item(uow=app.reader(), key="crm-guide").title == "The CRM guide"


def test_editing_an_item_checks_each_field_and_archive_takes_it_out_of_the_list(
        app: App, web: Any, people: People) -> None:
    library(app)
    client = web().login(people.marketer)
    form = client.get("/content/pricing/edit").text
    assert 'value="Pricing and plans"' in form
    assert "Consumed by" in form
    posted = {"title": "Plans and prices", "url": "/pricing", "maturity": "someday",
              "format": "pricing", "topics": "", "language": "en", "summary": ""}
    bad = client.post("/content/pricing/edit", posted)
    assert bad.status_code == 422
    assert "maturity is one of" in error_of(bad.text, "maturity")
    assert content.get_item(uow=app.reader(), key="pricing").title == "Pricing and plans"
    assert client.post("/content/pricing/edit", {**posted, "title": "", "maturity": "decision"}
                       ).status_code == 422
    done = client.post("/content/pricing/edit", {**posted, "maturity": "decision",
                                                  "premium": "1"})
    assert done.status_code == 303
    item = content.get_item(uow=app.reader(), key="pricing")
    assert (item.title, item.premium) == ("Plans and prices", True)
    client.get("/content")
    archived = client.post("/content/pricing/archive", {"next": "/content?maturity=decision"})
    assert archived.headers["location"] == "/content?maturity=decision"
    assert content.get_item(uow=app.reader(), key="pricing").archived
    page = client.get("/content").text
    assert "is archived" in page
    assert "Plans and prices</a>" not in page
    client.post("/content/pricing/restore", {})
    assert not content.get_item(uow=app.reader(), key="pricing").archived
    assert client.get("/content/no-such-item/edit").status_code == 404


def test_a_csv_import_names_each_bad_line_while_the_good_rows_import(
        app: App, web: Any, people: People) -> None:
    client = web().login(people.marketer)
    assert "key,title,url,maturity,format" in client.get("/content/import").text
    csv = ("key,title,url,maturity,format,premium,topics,language\n"
           "crm-guide,The CRM guide,/guides/crm,discovery,article,no,crm;sales,en\n"
           "bad-one,Bad maturity,/bad,someday,article,no,,en\n"
           "pricing,Pricing,/pricing,decision,pricing,yes,,en\n")
    answer = client.post("/content/import", files={"file": ("library.csv", csv.encode(),
                                                            "text/csv")})
    assert answer.status_code == 200
    bad = re.search(r'<table class="compact" id="bad-rows">(.*?)</table>', answer.text, re.S)
    assert bad is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", bad.group(1))
    assert cells[:2] == ["3", "maturity"]
    assert len(cells) == 3
    assert sorted(items(app)) == ["crm-guide", "pricing"]
    header = client.post("/content/import", files={"file": ("x.csv", b"name,title\nx,y\n",
                                                            "text/csv")})
    assert header.status_code == 422
    assert "unknown column 'name'" in error_of(header.text, "file")
    not_text = client.post("/content/import", files={"file": ("x.csv", b"\xff\xfe\x00",
                                                              "text/csv")})
    assert not_text.status_code == 422
    assert "UTF-8" in error_of(not_text.text, "file")
    assert client.post("/content/import", {}).status_code == 422
    assert sorted(items(app)) == ["crm-guide", "pricing"]


def test_item_usage_counts_each_contact_once_and_the_emails_by_status(app: App) -> None:
    made = library(app)
    first, second = lead(app, "a@example.com"), lead(app, "b@example.com")
    for contact_id, url in ((first, "/guides/scoring"), (first, "/guides/scoring/"),
                            (second, "/guides/scoring?utm_source=x"), (second, "/pricing")):
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
            type="content_view", contact_id=contact_id, url=url))
    with app.uow() as uow:
        for n, contact_id in enumerate((first, second)):
            queue_mail(uow, contact_id=contact_id, category=MARKETING, template="content",
                       dedupe_key=f"test:{n}", priority=30, at=app.clock.now(),
                       item=made["pricing"])
        uow.commit()
    ids = [(made[k].id or 0, made[k].path) for k in ("scoring-basics", "pricing", "news-1")]
    with app.engine.connect() as conn:
        usage = library_reads.item_usage(conn, items=ids)
    scoring, pricing, news = (usage[i] for i, _ in ids)
    assert scoring["consumers"] == 2
    assert scoring["sent"] == 0
    assert (pricing["consumers"], pricing["queued"], pricing["sent"]) == (1, 2, 0)
    assert news == {"consumers": 0, "sent": 0, "opened": 0, "clicked": 0, "queued": 0}


def test_a_count_over_its_time_budget_is_left_out_and_the_connection_goes_on(
        app: App) -> None:
    slow = text("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                "WHERE n < 100000000) SELECT count(*) FROM r")
    with app.engine.connect() as conn:
        started = time.monotonic()
        assert library_reads._counted(conn, lambda: conn.execute(slow).scalar(), 0.05) is None
        assert time.monotonic() - started < 5
        assert library_reads._counted(conn, lambda: conn.execute(text("SELECT 2")).scalar(),
                                      5) == 2
        assert conn.execute(text("SELECT 3")).scalar() == 3


# -- nurture ---------------------------------------------------------------------------------

def test_the_nurture_page_shows_each_track_its_steps_members_and_email(
        app: App, web: Any, people: People) -> None:
    made = library(app)
    ann = lead(app, "ann@example.com", first_name="Ann", last_name="Lee")
    nurture.define_track(uow=app.uow(), ctx=app.ctx, definition={
        "key": "sales_push", "name": "Sales push", "audience": "sales",
        "stages": ["handoff"], "steps": [
            {"send": {"item": "crm-comparison"}}, {"wait": "1w"},
            {"if": {"temperature": ["hot", "warm"]}, "else": "skip"},
            {"task": {"kind": "call", "title": "Call them", "due": "2d"}}]})
    nurture.tick(uow=app.uow, ctx=app.ctx)
    client = web().login(people.marketer)
    page = html.unescape(client.get("/nurture").text)
    assert "New leads - discovery, then evaluation" in page
    for words in ("Email the next best discovery content they have not seen", "Wait 4 days",
                  "Go on only if engagement is at least 15; otherwise stop",
                  "Email “CRM comparison”, from the owner", "Wait 1 week",
                  "Run the next step only if they are hot or warm",
                  "Task for the owner: call “Call them”, due in 2 days",
                  "defined through the API", "Lead (interest)",
                  "at most 3 marketing emails per contact every 30 days",
                  "purchased_list"):
        assert words in page, words
    track = re.search(r'<article class="track" data-track="lead_discovery">.*?</article>',
                      page, re.S)
    assert track is not None
    assert re.search(r"Active members</th><td class=\"num\">1<", track.group(0))
    detail = html.unescape(client.get("/nurture/tracks/lead_discovery").text)
    assert f'<a href="/contacts/{ann}">Ann Lee</a>' in detail
    assert "2 of 8 done" in detail  # sent the first email, waiting 4 days
    emails = detail[detail.index('id="emails"'):]
    assert made["scoring-basics"].title in emails or made["funnel-basics"].title in emails
    assert "queued" in emails
    assert "No member yet." in client.get("/nurture/tracks/sales_push").text
    assert client.get("/nurture/tracks/no_such_track").status_code == 404
    assert client.get("/nurture/tracks/lead_discovery?status=done").status_code == 200
    assert client.get("/nurture/tracks/lead_discovery?status=bogus").status_code == 422


def test_members_are_paginated(app: App, web: Any, people: People,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_library, "MEMBERS_PAGE", 2)
    for n in range(3):
        lead(app, f"m{n}@example.com")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    client = web().login(people.marketer)
    first = client.get("/nurture/tracks/lead_discovery").text
    assert len(re.findall(r"<tr data-contact=", first)) == 2
    assert "1–2 of 3" in first
    second = client.get("/nurture/tracks/lead_discovery?offset=2").text
    assert len(re.findall(r"<tr data-contact=", second)) == 1
    assert 'rel="prev"' in second


def wait_for_pass(client: Any, location: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        page: str = client.get(location).text
        if "The pass is over." in page or "The pass failed" in page:
            return page
        assert time.monotonic() < deadline, "the nurture pass did not finish"
        time.sleep(0.05)


def test_a_pass_run_from_the_page_queues_the_due_steps(app: App, web: Any,
                                                       people: People) -> None:
    library(app)
    cid = lead(app, "lea@example.com")
    client = web().login(people.marketer)
    client.get("/nurture")
    started = client.post("/nurture/run", {})
    assert started.status_code == 303
    assert started.headers["location"].startswith("/nurture/runs/")
    page = wait_for_pass(client, started.headers["location"])
    assert re.search(r'<td class="num" id="queued">1</td>', page), page
    with app.reader() as uow:
        [member] = uow.enrollments.of_contact(cid)
    assert (member.track_key, member.status) == ("lead_discovery", "active")
    other = web().login(people.admin)  # a pass is its starter's to follow
    assert other.get(started.headers["location"]).status_code == 404


def test_a_newsletter_issue_is_confirmed_then_queued_for_subscribers(
        app: App, web: Any, people: People) -> None:
    library(app)
    subscriber = lead(app, "sub@example.com")
    lead(app, "not-subscribed@example.com")
    with app.uow() as uow:
        contact = uow.contacts.get(subscriber)
        assert contact is not None
        contact.consent["newsletter"] = ConsentRecord("newsletter", True, "form:news", 0.0)
        uow.contacts.save(contact)
        uow.commit()
    client = web().login(people.marketer)
    assert "Newsletter #1: the funnel issue (news-1)" in client.get("/nurture").text
    confirm = client.get("/nurture/newsletter?item=news-1")
    assert confirm.status_code == 200
    assert "Send “Newsletter #1" in html.unescape(confirm.text)
    wrong = client.get("/nurture/newsletter?item=pricing")
    assert wrong.status_code == 422
    assert "not a newsletter issue" in error_of(wrong.text, "item")
    refused = client.post("/nurture/newsletter", {"item": "pricing"})
    assert refused.status_code == 422
    sent = client.post("/nurture/newsletter", {"item": "news-1"})
    assert sent.status_code == 303
    assert "is queued for 1 subscribers" in html.unescape(client.get("/nurture").text)
    with app.reader() as uow:
        assert len(uow.mail.of_contact(subscriber, 10)) == 1


# -- forms -----------------------------------------------------------------------------------

def test_forms_list_their_page_gated_item_fields_and_submissions(
        app: App, web: Any, people: People) -> None:
    library(app)
    forms.create_form(uow=app.uow(), ctx=app.ctx, data=forms.FormIn(
        key="crm-wp", name="CRM white paper", headline="Get the CRM comparison",
        item_key="crm-comparison", fields=["company", "title"], max_fields=2,
        consent_label="Email me <b>news</b>"))
    forms.submit(uow=app.uow(), ctx=app.ctx, form_key="crm-wp",
                 data={"email": "zoe@example.com", "company": "Zed"}, anonymous_id=None,
                 profile_token_contact=None, at=app.clock.now(), submission_id="s1")
    client = web().login(people.marketer)
    page = client.get("/forms").text
    row = re.search(r'<tr data-key="crm-wp">.*?</tr>', page, re.S)
    assert row is not None
    for words in ("CRM white paper", "Get the CRM comparison", "CRM comparison", "Company",
                  "Job title", "at most 2 at a time", "http://127.0.0.1:8000/p/crm-wp"):
        assert words in row.group(0), words
    assert re.search(r'<td class="num">1</td>', row.group(0))
    edit = client.get("/forms/crm-wp/edit").text
    assert '<strong id="submissions">1</strong>' in edit
    snippet = html.unescape(re.search(r'<pre class="snippet" id="snippet"><code>(.*?)</code>',
                                      edit, re.S).group(1))  # type: ignore[union-attr]
    assert 'action="http://127.0.0.1:8000/v1/forms/crm-wp"' in snippet
    assert 'name="company"' in snippet
    assert 'name="title"' in snippet
    assert "Email me &lt;b&gt;news&lt;/b&gt;" in snippet  # the label is text, in the snippet too
    assert "<b>news</b>" not in edit


def test_adding_and_editing_a_form_shows_each_problem_by_its_field(
        app: App, web: Any, people: People) -> None:
    library(app)
    client = web().login(people.marketer)
    assert 'name="consent_label"' in client.get("/forms/new").text
    good = {"key": "demo", "name": "Demo request", "headline": "Book a demo", "pitch": "",
            "item_key": "", "fields": "company, timeline", "max_fields": "0",
            "consent_label": "Email me", "language": "en", "active": "1"}
    for field, value, words in (("key", "Not A Key", "lower-case"),
                                ("fields", "company, shoe_size", "unknown field"),
                                ("item_key", "no-such-item", "no content item"),
                                ("max_fields", "many", "whole number"),
                                ("name", "", "needs a name")):
        bad = client.post("/forms/new", {**good, field: value})
        assert bad.status_code == 422, field
        assert words in error_of(bad.text, field), field
    assert forms.list_forms(uow=app.reader()) == []
    made = client.post("/forms/new", good)
    assert made.status_code == 303
    assert made.headers["location"] == "/forms/demo/edit"
    saved = forms.get_form(uow=app.reader(), key="demo")
    assert (saved.fields, saved.active, saved.newsletter) == (("company", "timeline"), True,
                                                              False)
    again = client.post("/forms/new", good)
    assert again.status_code == 422
    assert "exists" in error_of(again.text, "key")
    client.get("/forms/demo/edit")
    bad = client.post("/forms/demo/edit", {**good, "language": "english"})
    assert bad.status_code == 422
    assert "two-letter" in error_of(bad.text, "language")
    assert forms.get_form(uow=app.reader(), key="demo").language == "en"
    done = client.post("/forms/demo/edit", {**good, "item_key": "crm-comparison",
                                            "newsletter": "1", "active": ""})
    assert done.status_code == 303
    saved = forms.get_form(uow=app.reader(), key="demo")
    assert (saved.item_key, saved.newsletter, saved.active) == ("crm-comparison", True, False)
    assert "offline" in client.get("/forms").text
    assert client.get("/forms/nope/edit").status_code == 404


# -- who may --------------------------------------------------------------------------------

def test_only_admins_and_marketers_use_the_marketing_pages(app: App, web: Any,
                                                         people: People) -> None:
    library(app)
    forms.create_form(uow=app.uow(), ctx=app.ctx, data=forms.FormIn(key="f", name="F"))
    pages = ("/content", "/content/new", "/content/import", "/content/pricing/edit",
             "/nurture", "/nurture/tracks/lead_discovery", "/nurture/newsletter?item=news-1",
             "/forms", "/forms/new", "/forms/f/edit")
    for user in (people.rep, people.manager):
        client = web().login(user)
        for path in pages:
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert "Only admins and marketers use the marketing pages." in answer.text
        for path, data in (("/content/new", {"key": "x"}), ("/content/pricing/archive", {}),
                           ("/nurture/run", {}), ("/nurture/newsletter", {"item": "news-1"}),
                           ("/forms/new", {"key": "g", "name": "G"})):
            assert client.post(path, data).status_code == 403, path
        nav = client.get("/").text
        assert 'href="/content"' not in nav
        assert 'href="/nurture"' not in nav
    assert not content.get_item(uow=app.reader(), key="pricing").archived
    assert len(forms.list_forms(uow=app.reader())) == 1
    admin = web().login(people.admin)
    for path in pages:
        assert admin.get(path).status_code == 200, path


# -- French -----------------------------------------------------------------------------------

def _literals_in_python(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else ""
            if name == "_":
                found.add(node.args[0].value)
    return found


def test_every_text_of_these_pages_has_a_french_translation() -> None:
    catalog: dict[str, str] = {}
    for name in ("common.yaml", "library.yaml"):  # not another area's catalog: it may change
        path = WEB / "locales" / "fr" / name
        catalog.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    literal = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
    texts: set[str] = set()
    for pattern in ("content*.html", "nurture*.html", "forms*.html"):
        for path in TEMPLATES.glob(pattern):
            texts |= {a or b for a, b in literal.findall(path.read_text(encoding="utf-8"))}
    texts |= _literals_in_python(WEB / "routes_library.py")
    # Texts the pages translate from a variable.
    texts |= set(MATURITIES) | set(FORMAT_NAMES.values()) | set(FIELD_LABELS.values())
    texts |= {r for roles in AUDIENCE_ROLES.values() for r in roles}
    texts |= {k.replace("_", " ") for k in TASK_KINDS}
    texts |= {"1 week", "{n} weeks", "1 day", "{n} days", "1 hour", "{n} hours", "1 minute",
              "{n} minutes", "Only admins and marketers use the marketing pages.",
              "There is no such track.", "Pick a newsletter issue.",
              "There is no such item in the library.", "This item is not a newsletter issue.",
              "This issue is archived.", "status is active, done or left",
              "There is no such nurture pass (it may have run in another process)."}
    missing = sorted(t for t in texts if t not in catalog)
    assert not missing, missing


# -- in a browser -----------------------------------------------------------------------------

def test_in_a_browser_a_pass_shows_its_result_and_archiving_asks_first(
        app: App, people: People, browse: Any) -> None:
    library(app)
    lead(app, "lea@example.com")
    page = browse(people.marketer)
    page.goto("/nurture")
    page.click("text=Run a pass now")
    page.wait_for_selector("#result")  # the page followed the pass to its end
    assert page.inner_text("#queued") == "1"
    page.goto("/content")
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()
    page.on("dialog", answer)
    row = page.locator('tr[data-key="pricing"]')
    row.locator("text=Archive").click()
    assert not content.get_item(uow=app.reader(), key="pricing").archived  # said no
    row.locator("text=Archive").click()
    page.wait_for_selector(".flash")
    assert asked[0].startswith("Archive “Pricing and plans”?")
    assert content.get_item(uow=app.reader(), key="pricing").archived


def test_the_embed_snippet_posts_the_form_from_another_page(
        app: App, people: People, web: Any, browse: Any, live: Any) -> None:
    """What a marketer pastes into another site: run in a page of no origin of ours, it
    posts to /v1/forms/<key> with a public write key and shows the answer."""
    library(app)
    forms.create_form(uow=app.uow(), ctx=app.ctx, data=forms.FormIn(
        key="crm-wp", name="CRM white paper", item_key="crm-comparison",
        fields=["company"], newsletter=True))
    key = create_api_key(uow=app.uow(), ctx=app.ctx, name="site", kind="public").token
    edit = web().login(people.marketer).get("/forms/crm-wp/edit").text
    found = re.search(r'<pre class="snippet" id="snippet"><code>(.*?)</code>', edit, re.S)
    assert found is not None
    snippet = html.unescape(found.group(1)).replace("lfw_YOUR_PUBLIC_WRITE_KEY", key)
    snippet = snippet.replace(app.settings.public_url, live.url)  # served on its own port
    page = browse(None)
    page.set_content(f"<!doctype html><html><body>{snippet}</body></html>")
    page.fill('input[name="email"]', "zoe@example.com")
    page.fill('input[name="company"]', "Zed Ltd")
    page.check('input[name="consent"]')
    page.click("button[type=submit]")
    page.wait_for_function(
        "document.querySelector('.leadflow-answer').textContent.length > 0")
    assert "CRM comparison" in page.inner_text(".leadflow-answer")
    with app.reader() as uow:
        contact = uow.contacts.get_by_email("zoe@example.com")
    assert contact is not None
    assert contact.consent["email"].granted
