"""The contact list page: filters kept in the URL, sorting, pages, rights (a rep sees only
their contacts in the list, in segments and in exports), bad filter values shown next to
their field, saved segments, the CSV export, and importing a CSV file with its progress."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from typing import Any

import pytest

from leadflow.adapters.csv_mapping import load_mapping
from leadflow.adapters.db import read_models
from leadflow.adapters.db.read_models import SORTS, ContactFilters, list_contacts
from leadflow.bootstrap import App
from leadflow.domain.users import User
from leadflow.entrypoints.web import routes_contacts
from leadflow.entrypoints.web.i18n import catalog
from leadflow.services.contacts import AccountIn, ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.segments import PROBLEM_TEXTS
from tests.web.conftest import People, screenshot

ROW = re.compile(r'<tr data-id="(\d+)">')


def contact(app: App, email: str, *, owner: User | None = None, events: tuple[str, ...] = (),
            good_fit: bool = False, **fields: Any) -> int:
    """A contact; ``good_fit``: a director at a 300-person software company in France
    (fit grade A); each event of ``events`` is recorded for it."""
    if good_fit:
        domain = email.split("@")[1]
        fields.update(seniority="director", country="FR", account=AccountIn(
            name=domain, domain=domain, industry="software", employees=300, country="FR"))
    made = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email=email, **fields),
                          owner_id=owner.id if owner else None)
    assert made.id is not None
    for kind in events:
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=made.id))
    return made.id


def crowd(app: App, people: People) -> dict[str, int]:
    """Five contacts:
    ann  — the rep's hot prospect, grade A, engagement 40 (demo + form), MQL;
    otto — the other rep's hot prospect, grade A, engagement 30;
    dee  — a cold lead, grade A, engagement 18, unowned;
    cy   — a cold lead, grade D, engagement 10, source webinar, unowned;
    bob  — a suspect, grade D, engagement 2, source website, unowned."""
    return {
        "ann": contact(app, "ann@acme.example", owner=people.rep, good_fit=True,
                       events=("demo_request", "form_submitted"), first_name="Ann",
                       last_name="Archer"),
        "otto": contact(app, "oz@otto.example", owner=people.other_rep, good_fit=True,
                        events=("demo_request",), first_name="Oz", last_name="Zimmer"),
        "dee": contact(app, "dee@dunn.example", good_fit=True,
                       events=("form_submitted", "content_download"), first_name="Dee",
                       last_name="Dunn"),
        "cy": contact(app, "cy@cole.example", events=("form_submitted",), first_name="Cy",
                      last_name="Cole", source="webinar"),
        "bob": contact(app, "bob@baker.example", events=("page_view", "page_view"),
                       first_name="Bob", last_name="Baker", source="website"),
    }


def listed(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [int(x) for x in ROW.findall(answer.text)]


def test_filters_and_sorting_return_the_right_contacts(web: Any, app: App,
                                                       people: People) -> None:
    ids = crowd(app, people)
    client = web().login(people.marketer)
    by_score = [ids[k] for k in ("ann", "otto", "dee", "cy", "bob")]
    page = client.get("/contacts")
    assert listed(page) == by_score
    assert '<strong id="total">5 contacts</strong>' in page.text
    assert f'<a href="/contacts/{ids["ann"]}">Ann Archer</a>' in page.text
    cases = {
        "stage=prospect": ["ann", "otto"],
        "stage=lead,suspect": ["dee", "cy", "bob"],
        "stage=lead&stage=suspect": ["dee", "cy", "bob"],
        "temperature=cold": ["dee", "cy"],
        "grade=A": ["ann", "otto", "dee"],
        "grade=B%2B&stage=lead": ["dee"],
        "min_score=15": ["ann", "otto", "dee"],
        "max_score=15": ["cy", "bob"],
        "min_score=5&max_score=20": ["dee", "cy"],
        "milestone=mql": ["ann"],
        f"owner={people.other_rep.id}": ["otto"],
        "source=Website": ["bob"],
        "q=ARCH": ["ann"],  # the start of a name or email, in any case
        "q=ann": ["ann"],
        "q=oz%40": ["otto"],
        "q=cy+c": ["cy"],  # every word starts the email or a name
        "q=cy+d": [],
        "q=rcher": [],
        "q=nobody": [],
        "sort=name": ["ann", "bob", "cy", "dee", "otto"],
        "sort=-score": ["bob", "cy", "dee", "otto", "ann"],
        "sort=-score&grade=A": ["dee", "otto", "ann"],
    }
    for query, names in cases.items():
        assert listed(client.get(f"/contacts?{query}")) == [ids[n] for n in names], query
    # The filters stay in the form, the column links and the export link.
    page = client.get("/contacts?stage=lead&q=dunn&sort=name")
    assert 'name="q" type="search" value="dunn"' in page.text
    assert '<option value="lead" selected>' in page.text
    assert 'href="/contacts/export.csv?q=dunn&amp;stage=lead&amp;sort=name"' in page.text
    assert 'href="?q=dunn&amp;stage=lead&amp;sort=fit"' in page.text
    # Engagement toggles between highest and lowest first.
    assert 'href="?q=dunn&amp;stage=lead"' in page.text
    assert 'href="?sort=-score"' in client.get("/contacts").text
    assert 'href="?"' in client.get("/contacts?sort=-score").text
    nothing = client.get("/contacts?q=nobody")
    assert "No contact matches these filters." in nothing.text


def test_pages_keep_the_filters(web: Any, app: App, people: People,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    ids = crowd(app, people)
    monkeypatch.setattr(routes_contacts, "PAGE", 2)
    client = web().login(people.admin)
    first = client.get("/contacts?grade=A")
    assert listed(first) == [ids["ann"], ids["otto"]]
    assert "1–2 of 3" in first.text
    assert 'rel="next" href="?grade=A&amp;offset=2"' in first.text
    second = client.get("/contacts?grade=A&offset=2")
    assert listed(second) == [ids["dee"]]
    assert 'rel="prev" href="?grade=A"' in second.text
    assert 'rel="next"' not in second.text
    assert listed(client.get("/contacts?offset=zzz")) == [ids["ann"], ids["otto"]]


def test_a_rep_sees_only_their_own_contacts(web: Any, app: App, people: People) -> None:
    ids = crowd(app, people)
    rep = web().login(people.rep)
    page = rep.get("/contacts")
    assert listed(page) == [ids["ann"]]
    assert "your contacts" in page.text
    assert 'name="owner"' not in page.text  # nobody else to choose
    assert listed(rep.get("/contacts?stage=prospect")) == [ids["ann"]]
    assert listed(rep.get("/contacts?q=oz")) == []
    other = rep.get(f"/contacts?owner={people.other_rep.id}")
    assert other.status_code == 422
    assert "Choose an owner from the list." in other.text
    assert str(ids["otto"]) not in ROW.findall(other.text)
    manager = web().login(people.manager)  # team west: the rep and the manager
    assert listed(manager.get("/contacts")) == [ids["ann"]]
    lines = rep.get("/contacts/export.csv").text.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(ids["ann"])]


def test_a_bad_filter_value_is_shown_next_to_its_field(web: Any, app: App,
                                                       people: People) -> None:
    crowd(app, people)
    client = web().login(people.marketer)
    answer = client.get("/contacts?min_score=lots&stage=nowhere&grade=Z&q=ann")
    assert answer.status_code == 422
    assert "Traceback" not in answer.text
    assert ROW.findall(answer.text) == []  # no list from half the filters
    assert "Correct the filters marked in red to see the contacts." in answer.text
    assert re.search(r'id="f-min_score" name="min_score" type="text" value="lots" '
                     r'aria-invalid="true"', answer.text)
    assert '<p class="error" id="e-min_score">Enter a number of 0 or more.</p>' in answer.text
    assert '<p class="error" id="e-stage">Unknown stage &#39;nowhere&#39;.</p>' in answer.text
    assert 'id="e-grade">Grades are A, B, C and D' in answer.text
    assert 'id="e-q"' not in answer.text
    reversed_range = client.get("/contacts?min_score=20&max_score=10")
    assert reversed_range.status_code == 422
    assert 'id="e-max_score">The minimum is above the maximum.' in reversed_range.text
    assert client.get("/contacts?sort=shoe_size").status_code == 422
    assert client.get("/contacts/export.csv?temperature=tepid").status_code == 422
    french = web().login(people.marketer)
    french.post("/language", {"lang": "fr", "next": "/contacts"})
    answer = french.get("/contacts?min_score=-1")
    assert answer.status_code == 422
    assert "Saisissez un nombre supérieur ou égal à 0." in answer.text


def test_every_filter_message_has_a_french_translation() -> None:
    french = catalog("fr")
    assert [text for text in PROBLEM_TEXTS if text not in french] == []


def test_segments_are_saved_listed_opened_and_deleted(web: Any, app: App,
                                                      people: People) -> None:
    ids = crowd(app, people)
    mia = web().login(people.marketer)
    saved = mia.post("/contacts/segments", {"name": "  Good fits ", "grade": "A",
                                            "sort": "name"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/contacts?grade=A&sort=name"
    page = mia.get(saved.headers["location"])
    assert "Segment “Good fits” saved." in page.text
    assert listed(page) == [ids["ann"], ids["dee"], ids["otto"]]
    segment = re.search(r'<a href="/contacts/segments/(\d+)">Good fits</a>', page.text)
    assert segment is not None
    good_fits = segment.group(1)
    assert '<small class="segment-open">· Good fits</small>' in page.text
    assert 'data-confirm="Delete the segment “Good fits”?"' in page.text
    shared = mia.post("/contacts/segments", {"name": "Prospects", "stage": "prospect",
                                             "shared": "on"})
    assert shared.status_code == 303
    mia.get("/contacts")
    # Refused names are shown next to the name field; nothing is saved.
    again = mia.post("/contacts/segments", {"name": "good fits", "grade": "A"})
    assert again.status_code == 303  # names differ in case: another segment
    taken = mia.post("/contacts/segments", {"name": "Good fits", "stage": "lead"})
    assert taken.status_code == 422
    assert '<p class="error" id="e-name">You have a segment of that name already.</p>' \
        in taken.text
    assert mia.post("/contacts/segments", {"name": " ", "stage": "lead"}).status_code == 422
    bad = mia.post("/contacts/segments", {"name": "Broken", "min_score": "x"})
    assert bad.status_code == 422
    assert 'id="e-min_score"' in bad.text
    assert "Broken" not in mia.get("/contacts").text

    opened = mia.get(f"/contacts/segments/{good_fits}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == "/contacts?grade=A&sort=name"

    # The rep sees the shared segment, not the private one, and only their contacts in it.
    rita = web().login(people.rep)
    page = rita.get("/contacts")
    assert "Prospects" in page.text
    assert "Good fits" not in page.text
    prospects = re.search(r'<a href="/contacts/segments/(\d+)">Prospects</a>', page.text)
    assert prospects is not None
    opened = rita.get(f"/contacts/segments/{prospects.group(1)}", follow_redirects=False)
    assert listed(rita.get(opened.headers["location"])) == [ids["ann"]]
    assert rita.get(f"/contacts/segments/{good_fits}").status_code == 404
    assert rita.post(f"/contacts/segments/{good_fits}/delete").status_code == 404
    assert rita.post(f"/contacts/segments/{prospects.group(1)}/delete").status_code == 403
    assert rita.get("/contacts/segments/zzz").status_code == 404

    gone = mia.post(f"/contacts/segments/{good_fits}/delete")
    assert gone.status_code == 303
    page = mia.get("/contacts")
    assert "Segment “Good fits” deleted." in page.text
    assert ">Good fits</a>" not in page.text
    assert ">good fits</a>" in page.text
    assert mia.get(f"/contacts/segments/{good_fits}").status_code == 404


def test_the_export_streams_the_listed_rows_with_formulas_made_harmless(
        web: Any, app: App, people: People) -> None:
    ids = crowd(app, people)
    evil = contact(app, "eve@evil.example", first_name="=HYPERLINK(\"http://x\")",
                   last_name="Evans", source="+cmd")
    contact(app, "-at@evil.example", first_name="@SUM(A1)", source="-2+3")
    client = web().login(people.admin)
    answer = client.get("/contacts/export.csv?grade=A&sort=name")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="contacts-')
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["id", "email", "name", "stage", "temperature", "grade", "fit",
                       "engagement", "owner", "source", "created", "last_activity"]
    assert [int(r[0]) for r in rows[1:]] == [ids["ann"], ids["dee"], ids["otto"]]
    ann = dict(zip(rows[0], rows[1], strict=True))
    assert ann["email"] == "ann@acme.example"
    assert ann["stage"] == "prospect"
    assert ann["temperature"] == "hot"
    assert ann["grade"] == "A"
    assert ann["engagement"] == "40.0"
    assert ann["owner"] == people.rep.email
    assert ann["created"] == "2026-03-02T09:00:00Z"
    everything = list(csv.reader(io.StringIO(client.get("/contacts/export.csv?sort=id").text)))
    assert len(everything) == 1 + 7
    cells = {row[0]: row for row in everything[1:]}
    assert cells[str(evil)][2] == "'=HYPERLINK(\"http://x\") Evans"
    assert cells[str(evil)][9] == "'+cmd"
    other = everything[-1]
    assert other[1] == "'-at@evil.example"
    assert other[2] == "'@SUM(A1)"
    assert other[9] == "'-2+3"


def _x_education_csv(rows: list[dict[str, str]]) -> bytes:
    columns = list(load_mapping("x_education").columns())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue().encode()


def test_an_import_shows_its_progress_then_each_rejected_rows_line(
        web: Any, app: App, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    go = threading.Event()
    real = routes_contacts.import_contacts

    def held(**kwargs: Any) -> Any:
        assert go.wait(10)
        return real(**kwargs)
    monkeypatch.setattr(routes_contacts, "import_contacts", held)
    data = _x_education_csv([
        {"Prospect ID": "p-1", "Do Not Email": "No", "TotalVisits": "3"},     # line 2
        {"Prospect ID": "p-2", "Do Not Email": "No", "TotalVisits": "lots"},  # line 3: bad
        {"Prospect ID": "p-3", "Do Not Email": "Yes", "TotalVisits": "0"},    # line 4
    ])
    client = web().login(people.marketer)
    form = client.get("/contacts/import")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    started = client.post("/contacts/import", {"mapping": "x_education"},
                          files={"file": ("leads.csv", data, "text/csv")})
    assert started.status_code == 303
    target = started.headers["location"]
    operation = target.rsplit("/", 1)[1]
    waiting = client.get(target)
    assert waiting.status_code == 200
    assert f'data-progress-url="/progress/{operation}"' in waiting.text
    assert "<progress" in waiting.text
    go.set()
    deadline = time.monotonic() + 30
    while True:
        state = client.client.get(f"/progress/{operation}").json()
        if state["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["finished"]
    assert state["error"] is None
    assert (state["done"], state["total"]) == (3, 3)
    assert state["redirect"] == target
    result = client.get(target)
    assert "Import finished" in result.text
    assert '<td class="num" id="imported">2</td>' in result.text
    assert '<td class="num" id="rejected">1</td>' in result.text
    assert re.search(r'<tr><td class="num">3</td><td>TotalVisits</td><td>[^<]+</td></tr>',
                     result.text)
    # The imported contacts are in the list.
    assert len(listed(client.get("/contacts?stage=lead"))) == 2
    # Someone else cannot see this import.
    assert web().login(people.admin).get(target).status_code == 404


def test_an_unusable_upload_is_refused_next_to_its_field(web: Any, app: App,
                                                         people: People) -> None:
    client = web().login(people.admin)
    client.get("/contacts/import")
    no_mapping = client.post("/contacts/import", {"mapping": ""},
                             files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")})
    assert no_mapping.status_code == 422
    assert 'id="e-mapping">Choose a mapping from the list.' in no_mapping.text
    no_file = client.post("/contacts/import", {"mapping": "x_education"},
                          files={"file": ("", b"", "text/csv")})
    assert no_file.status_code == 422
    assert 'id="e-file">Choose a CSV file.' in no_file.text
    wrong = client.post("/contacts/import", {"mapping": "x_education"},
                        files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")})
    assert wrong.status_code == 422
    assert 'id="e-file">This file cannot be imported with this mapping: a.csv' not in \
        wrong.text  # the stored file's name is not the user's
    assert "the header lacks mapped column(s)" in wrong.text
    olist = client.post("/contacts/import", {"mapping": "olist"},
                        files={"file": ("mql.csv", b"mql_id\nx\n", "text/csv")})
    assert olist.status_code == 422
    assert 'id="e-join_file">This mapping joins a second file' in olist.text


def test_only_admins_and_marketers_import(web: Any, people: People) -> None:
    rep = web().login(people.rep)
    assert rep.get("/contacts/import").status_code == 403
    assert rep.post("/contacts/import", {"mapping": "x_education"}).status_code == 403
    assert "/contacts/import" not in rep.get("/contacts").text
    manager = web().login(people.manager)
    assert manager.get("/contacts/import").status_code == 403


def test_the_list_on_a_phone(browse: Any, app: App, people: People) -> None:
    crowd(app, people)
    page = browse(people.marketer, viewport={"width": 390, "height": 844})
    page.goto("/contacts")
    page.select_option("#f-grade", "A")
    page.click("#filters button.primary")
    page.wait_for_url("**/contacts?*grade=A*")
    assert page.locator("tr[data-id]").count() == 3
    # The page itself does not scroll sideways: the wide table scrolls in its box.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.fill("#f-name", "Good fits")
    page.click("#save-segment button")
    page.wait_for_selector("text=Segment “Good fits” saved.")
    screenshot(page, "contacts-phone")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#segments button.link")
    page.wait_for_selector("text=Segment “Good fits” deleted.")
    assert page.locator("#segments li").count() == 0


def test_every_way_to_a_page_gives_the_same_rows(app: App, people: People,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A page is looked for in windows of the sort's order before the filters' indexes: with
    windows too small to hold it, or none, the rows are the same."""
    ids = crowd(app, people)
    contact(app, "nina@nameless.example", events=("page_view",))  # no name, source or owner
    contact(app, "quinn@quiet.example", first_name="Quinn")  # no last name, never active
    max_id = contact(app, "max@acme.example", owner=people.rep, good_fit=True,
                     events=("demo_request",), first_name="max", last_name="MILLER")
    filters = [ContactFilters(), ContactFilters(grade=["A"]),
               ContactFilters(stage=["lead", "suspect"]), ContactFilters(min_score=5),
               ContactFilters(max_score=15, temperature=["cold"]),
               ContactFilters(starts_with="m"), ContactFilters(starts_with="MIL max"),
               ContactFilters(visible_owners=(people.rep.id,)),
               ContactFilters(owner_id=people.other_rep.id, min_score=1)]

    def pages() -> list[Any]:
        out = []
        with app.engine.connect() as conn:
            for f in filters:
                for sort in SORTS:
                    for offset in (0, 2, 5):
                        rows, total = list_contacts(conn, app.config, f, now=app.clock.now(),
                                                    sort=sort, limit=2, offset=offset,
                                                    count_limit=4)
                        out.append(([r["id"] for r in rows], total))
        return out
    monkeypatch.setattr(read_models, "FEW", 0)
    monkeypatch.setattr(read_models, "WINDOW_PER_ROW", 1)
    monkeypatch.setattr(read_models, "WINDOWS", ())
    plain = pages()
    for windows in ((2,), (3, 5), (50,)):
        monkeypatch.setattr(read_models, "WINDOWS", windows)
        assert pages() == plain, windows
    with app.engine.connect() as conn:
        rows, total = list_contacts(conn, app.config, ContactFilters(starts_with="mil"),
                                    now=app.clock.now())
    assert [r["email"] for r in rows] == ["max@acme.example"]
    assert total == 1
    with app.engine.connect() as conn:  # each sort against the same order made here
        every = list_contacts(conn, app.config, ContactFilters(), now=app.clock.now(),
                              sort="id", limit=100)[0]
        for sort, key in {
            "score": lambda r: (-r["engagement"], r["id"]),
            "-score": lambda r: (r["engagement"], r["id"]),
            "fit": lambda r: (-r["fit_score"], -r["id"]),
            "created": lambda r: (-r["created_at"], -r["id"]),
            "last_activity": lambda r: (r["last_event_at"] is None,
                                        -(r["last_event_at"] or 0), -r["id"]),
            "name": lambda r: (r["last_name"] is None, r["last_name"] or "",
                               r["first_name"] is None, r["first_name"] or "", r["id"]),
        }.items():
            for r in every:
                r["first_name"], _, r["last_name"] = (r["name"] or "").partition(" ")
                r["first_name"] = r["first_name"] or None
                r["last_name"] = r["last_name"] or None
            got = list_contacts(conn, app.config, ContactFilters(), now=app.clock.now(),
                                sort=sort, limit=100)[0]
            assert [r["id"] for r in got] == [r["id"] for r in sorted(every, key=key)], sort
    with app.engine.connect() as conn:  # an owner's contacts, by the owned copy of the rank
        mine = [list_contacts(conn, app.config, ContactFilters(visible_owners=(people.rep.id,)),
                              now=app.clock.now(), sort=sort)[0] for sort in ("score", "-score")]
    assert [r["id"] for r in mine[0]] == [ids["ann"], max_id]
    assert [r["id"] for r in mine[1]] == [max_id, ids["ann"]]


def test_the_list_fits_a_laptop(browse: Any, app: App, people: People) -> None:
    """At 1280 px every column shows without scrolling the table; the segments go under it."""
    crowd(app, people)
    page = browse(people.marketer)  # 1280 × 900
    page.goto("/contacts")
    assert page.locator("tr[data-id]").count() > 3
    assert page.evaluate("(() => { const w = document.querySelector('.contacts-table')"
                         ".closest('.table-wrap'); return w.scrollWidth <= w.clientWidth + 1 })()")
    table = page.locator(".contacts-table").bounding_box()
    segments = page.locator("#segments").bounding_box()
    assert table is not None
    assert segments is not None
    assert segments["y"] > table["y"] + table["height"]
