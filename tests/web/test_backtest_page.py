"""The backtest pages: the form names each problem at its field (a candidate's at its line);
the replay runs in the background and its page shows, per rule, a chart and a table equal to
the service's figures; admins and marketers only, each their own result; French; one browser
visit."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from leadflow.adapters.config_file import default_config_text
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.bootstrap import App
from leadflow.domain.ports import NullProgress
from leadflow.domain.users import OPERATOR
from leadflow.entrypoints.web import routes_backtest
from leadflow.services.backtest import run_backtest
from leadflow.services.users import create_user
from tests.conftest import FakeClock
from tests.integration.test_backtest import candidate_text, make_history
from tests.web.conftest import PASSWORD, People, WebClient, screenshot


def _finished(client: WebClient, started: Any) -> Any:
    return client.finished(started, under="/analytics/backtest/")


def _row(html: str, kind: str, threshold: str) -> list[str]:
    sweep = html.split(f'id="sweep-{kind}"', 1)[1].split("</section>", 1)[0]
    row = re.search(rf'<tr data-threshold="{re.escape(threshold)}"[^>]*>(.*?)</tr>', sweep,
                    re.S)
    assert row, (kind, threshold)
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_a_marketer_runs_a_backtest(web: Any, app: App, people: People,
                                    clock: FakeClock) -> None:
    made = make_history(app, clock)
    client = web().login(people.marketer)
    assert '<a href="/analytics/backtest"' in client.get("/analytics").text
    form = client.get("/analytics/backtest").text
    assert "the current threshold (40)" in form
    assert "version: 1" in form  # the candidate starts as the configuration in force
    done = _finished(client, client.post("/analytics/backtest", {
        "mql": "10:50:20", "sql": "30, 90", "metric": "f1", "min_flagged": "1",
        "candidate": "in_force", "content": "ignored"}))
    html = done.text
    with app.engine.connect() as conn:
        expected = run_backtest(reads=SqlBacktestReads(conn), ctx=app.ctx, principal=OPERATOR,
                                progress=NullProgress(), mql_thresholds=[10, 30, 50],
                                sql_thresholds=[30, 90], min_flagged=1)
    assert f"Replayed {len(made.ids)} contacts, {len(made.bought)} of whom" in html
    assert "the configuration in force" in html
    assert html.count("<svg") == 2
    for sweep in expected.sweeps:
        assert [r.threshold for r in sweep.results] == (
            [10, 30, 40, 50] if sweep.kind == "mql" else [30, 60, 90])
        for r in sweep.results:
            cells = _row(html, sweep.kind, f"{r.threshold:g}")
            assert cells[:3] == [f"{r.threshold:g}", str(r.flagged), str(r.converted)]
        assert sweep.suggested is not None
        assert f'<tr data-threshold="{sweep.suggested.threshold:g}" class="suggested">' in html
    assert "current" in _row(html, "mql", "40")[-1]


def test_a_candidate_configuration_from_the_page(web: Any, app: App, people: People,
                                                 clock: FakeClock) -> None:
    make_history(app, clock, people=6)
    client = web().login(people.admin)
    client.get("/analytics/backtest")
    done = _finished(client, client.post("/analytics/backtest", {
        "mql": "15,30", "metric": "recall", "min_flagged": "1", "candidate": "edited",
        "content": candidate_text()}))
    assert "the candidate configuration" in done.text
    assert 'id="suggested-mql"' in done.text
    assert "Change it in the pipeline settings" in done.text  # an admin may


def test_each_problem_is_named_at_its_field(web: Any, app: App, people: People) -> None:
    client = web().login(people.marketer)
    client.get("/analytics/backtest")
    answer = client.post("/analytics/backtest", {
        "mql": "ten", "sql": "1:1000:1", "metric": "auc", "min_flagged": "0",
        "created_before": "June", "candidate": "edited",
        "content": "version: 1\nstages:\n  - key: suspect\n    role: nowhere\n"})
    assert answer.status_code == 422
    html = answer.text
    for name, says in (("mql", "ten is not a threshold. Write numbers"), ("sql", "at most 200"),
                       ("metric", "Choose a metric"), ("min_flagged", "1 or more"),
                       ("created_before", "like 2026-06-01"),
                       ("content", "has problems")):
        error = re.search(rf'<p class="error" id="e-{name}">(.*?)</p>', html, re.S)
        assert error, name
        assert says in error.group(1), (name, error.group(1))
    assert re.search(r'<span class="where">line \d+</span>', html)
    assert "role: nowhere" in html  # the text kept, to fix it
    assert 'value="ten"' in html
    # A candidate without an MQL milestone that tests engagement
    no_mql = default_config_text().replace("      engagement_at_least: 40\n",
                                           "      signal: demo_request\n", 1)
    answer = client.post("/analytics/backtest", {"candidate": "edited", "content": no_mql})
    assert answer.status_code == 422
    assert "has no engagement_at_least test" in answer.text


def test_who_may_run_one(web: Any, app: App, people: People, clock: FakeClock) -> None:
    make_history(app, clock, people=3)
    mine = web().login(people.marketer)
    mine.get("/analytics/backtest")
    started = mine.post("/analytics/backtest", {"candidate": "in_force"})
    done = _finished(mine, started)
    assert done.status_code == 200
    where = started.headers["location"]
    assert web().login(people.admin).get(where).status_code == 404  # each their own
    manager = web().login(people.manager)
    assert manager.get("/analytics/backtest").status_code == 403
    assert '<a href="/analytics/backtest"' not in manager.get("/analytics").text
    assert manager.get(where).status_code == 403


def test_in_french(web: Any, app: App, people: People, clock: FakeClock) -> None:
    make_history(app, clock, people=3)
    client = web().login(people.marketer)
    client.post("/language", {"lang": "fr", "next": "/analytics/backtest"})
    form = client.get("/analytics/backtest").text
    assert "Lancer sous la configuration en vigueur" in form
    done = _finished(client, client.post("/analytics/backtest", {"candidate": "in_force"}))
    assert "Seuil MQL" in done.text
    assert "Comment le lire" in done.text
    missing = client.get("/analytics/backtest/nothing-like-it")
    assert missing.status_code == 404
    assert "Il n&#39;y a rien ici." in missing.text
    assert 'lang="en">no such backtest' in missing.text  # the detail, in English, marked so


def test_in_the_browser(browse: Any, app: App, people: People, clock: FakeClock) -> None:
    make_history(app, clock)
    page = browse(people.marketer)
    page.goto("/analytics/backtest")
    page.fill("#f-mql", "10:80:10")
    page.fill("#f-min_flagged", "1")
    page.click("#run-backtest")
    page.wait_for_url(re.compile(r"/analytics/backtest/"))
    page.wait_for_selector("#sweep-mql", timeout=60_000)
    assert page.locator("#sweep-mql tbody tr").count() == 8
    assert page.locator("#sweep-mql tr.suggested").count() == 1
    assert page.locator("#sweep-mql svg").is_visible()
    screenshot(page, "backtest")
    page.goto("/analytics/backtest")
    page.click("#candidate summary")
    page.fill("#f-content", candidate_text())
    page.click("#run-candidate")
    page.wait_for_selector("#sweep-mql", timeout=60_000)
    assert "the candidate configuration" in page.locator("#backtest-summary").inner_text()


def test_one_at_a_time(web: Any, app: App, people: People, clock: FakeClock,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One running backtest per user, two in the process; the progress poll tells how far,
    not the figures."""
    make_history(app, clock, people=3)
    gate = threading.Event()

    def held(**kwargs: Any) -> Any:
        assert gate.wait(30)
        return run_backtest(**kwargs)
    monkeypatch.setattr(routes_backtest, "run_backtest", held)
    third = create_user(uow=app.uow(), ctx=app.ctx, email="mo@leadflow.test",
                        name="Mo Marketer", role="marketer", password=PASSWORD)
    clients = [web().login(who) for who in (people.marketer, people.admin, third)]
    for client in clients:
        client.get("/analytics/backtest")
    first = clients[0].post("/analytics/backtest", {"candidate": "in_force"})
    again = clients[0].post("/analytics/backtest", {"candidate": "in_force"})
    assert again.status_code == 303
    assert again.headers["location"] == first.headers["location"]  # the running one
    assert "still running" in clients[0].get(again.headers["location"]).text
    assert clients[1].post("/analytics/backtest", {"candidate": "in_force"}).status_code == 303
    busy = clients[2].post("/analytics/backtest", {"candidate": "in_force"})
    assert busy.status_code == 409
    assert 'id="backtest-busy"' in busy.text
    gate.set()
    done = _finished(clients[0], first)
    assert 'id="sweep-mql"' in done.text
    operation = first.headers["location"].rsplit("/", 1)[1]
    polled = clients[0].client.get(f"/progress/{operation}").json()
    assert polled["finished"]
    assert "result" not in polled
