"""Settings pages (admins only): the lifecycle configuration edited, checked, saved and applied,
a full rescore with its progress, users, API keys shown once, webhooks and their deliveries."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from sqlalchemy import select

from leadflow.adapters.config_file import default_config_text
from leadflow.adapters.db import tables
from leadflow.bootstrap import App
from leadflow.domain.ports import HttpReply
from leadflow.entrypoints.web import routes_settings
from leadflow.services.api_keys import list_api_keys
from leadflow.services.events import EventIn, record_event
from leadflow.services.pipeline_config import text_digest
from leadflow.services.rescore import rescore_all
from leadflow.services.users import get_user
from leadflow.services.webhooks import deliver, list_webhooks, relay
from tests.conftest import FakeClock, good_fit_contact
from tests.web.conftest import People, screenshot

PAGES = ("/settings", "/settings/pipeline", "/settings/users", "/settings/keys",
         "/settings/webhooks", "/settings/users/1")
POSTS = ("/settings/pipeline", "/settings/rescore", "/settings/users", "/settings/users/1",
         "/settings/users/1/password", "/settings/keys", "/settings/keys/1/revoke",
         "/settings/webhooks", "/settings/webhooks/1/delete",
         "/settings/webhooks/deliveries/1/redeliver")


def _edited(old: str, new: str, text: str | None = None) -> str:
    text = text if text is not None else default_config_text()
    assert old in text, old
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _save(client: Any, content: str, action: str = "save") -> Any:
    page = client.get("/settings/pipeline")
    base = re.search(r'name="base" value="([0-9a-f]*)"', page.text)
    assert base is not None
    return client.post("/settings/pipeline", {"content": content, "base": base.group(1),
                                              "action": action})


def test_only_admins_see_settings(web: Any, app: App, people: People) -> None:
    for user in (people.marketer, people.manager, people.rep):
        client = web().login(user)
        for path in PAGES:
            assert client.get(path).status_code == 403, (user.role, path)
        for path in POSTS:
            answer = client.post(path, {"content": "version: 2", "name": "x",
                                        "email": "x@leadflow.test", "password": "x" * 12})
            assert answer.status_code == 403, (user.role, path)
    assert 'href="/settings"' not in web().login(people.marketer).get("/").text
    assert not app.settings.pipeline_file.exists()  # nothing was done
    assert len(list_api_keys(uow=app.reader())) == 0
    admin = web().login(people.admin)
    for path in PAGES:
        assert admin.get(path).status_code == 200, path


def test_invalid_yaml_shows_where_and_saves_nothing(web: Any, app: App, people: People) -> None:
    client = web().login(people.admin)
    before = app.config.config_version
    broken = _edited("  half_life_days: 30\n", "  half_life_days: [30\n")
    answer = _save(client, broken)
    assert answer.status_code == 422
    assert "Nothing was saved" in answer.text
    assert "not valid YAML" in answer.text
    assert re.search(r"line \d+", answer.text)
    assert "half_life_days: [30" in answer.text  # the text stays in the editor
    assert not app.settings.pipeline_file.exists()
    assert app.config.config_version == before


def test_a_rule_naming_an_unknown_signal_is_shown_at_its_line(web: Any, app: App,
                                                              people: People) -> None:
    client = web().login(people.admin)
    text = _edited("        - signal: interest\n", "        - signal: no_such_signal\n")
    answer = _save(client, text)
    assert answer.status_code == 422
    line = _line_of(text, "no_such_signal")
    problem = re.search(r'<li class="problem">(.*?)</li>', answer.text, re.S)
    assert problem is not None
    assert f"line {line}" in problem.group(1)
    assert "stages[1].enter_when.all[1].signal" in problem.group(1)
    assert "unknown signal" in problem.group(1)
    assert "- signal: no_such_signal" in problem.group(1)  # the line itself, quoted
    assert not app.settings.pipeline_file.exists()
    # A nurture track for a stage role it cannot take: named with its location too.
    wrong_track = _edited("      stages: [interest]\n", "      stages: [won]\n")
    answer = _save(client, wrong_track, action="check")
    assert answer.status_code == 422
    assert "nurture.tracks[0].stages" in answer.text
    assert not app.settings.pipeline_file.exists()


def test_a_stage_contacts_are_in_cannot_go(web: Any, app: App, people: People) -> None:
    good_fit_contact(app)  # a suspect
    client = web().login(people.admin)
    text = _edited("  - key: suspect\n", "  - key: visitor\n")
    answer = _save(client, text)
    assert answer.status_code == 422
    assert "1 contact(s) are in stage &#39;suspect&#39;" in answer.text
    assert not app.settings.pipeline_file.exists()


def test_check_only_saves_nothing(web: Any, app: App, people: People) -> None:
    client = web().login(people.admin)
    text = _edited("    name: Marketing qualified\n", "    name: Marketing ready\n")
    answer = _save(client, text, action="check")
    assert answer.status_code == 200
    assert "No problems found" in answer.text
    assert "What the checked text says" in answer.text
    assert "Marketing ready" in answer.text
    assert not app.settings.pipeline_file.exists()
    assert "Marketing ready" not in [m.name for m in app.config.milestones]


def test_a_valid_change_is_saved_applied_and_kept(web: Any, app: App, people: People,
                                                  clock: FakeClock) -> None:
    client = web().login(people.admin)
    text = _edited("    name: Marketing qualified\n", "    name: Marketing ready\n")
    text = _edited("  - key: sal\n", "  - key: webinar_fan\n    name: Webinar fan\n    when:\n"
                   "      signal: webinar\n  - key: sal\n", text)
    answer = _save(client, text)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/settings/pipeline"
    saved = app.settings.pipeline_file
    assert saved == app.settings.data_dir / "pipeline.yaml"
    assert saved.read_text() == text
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]
    # Applied in this process: the config, the services' context, recorded as a version.
    assert [m.name for m in app.config.milestones][:1] == ["Marketing ready"]
    assert "webinar_fan" in app.ctx.config.milestone_keys()
    with app.engine.connect() as conn:
        versions = set(conn.execute(select(tables.config_versions.c.version)).scalars())
    assert app.config.config_version in versions
    page = client.get("/settings/pipeline")
    assert "Saved and applied" in page.text
    assert "Webinar fan" in page.text
    assert page.text.count("Marketing ready") >= 2  # the summary and the editor
    # A contact who attends a webinar reaches the new milestone.
    ann = good_fit_contact(app)
    clock.advance(60)
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="webinar_attended", email="ann@example.com"))
    with app.reader() as uow:
        found = uow.contacts.get(ann.id or 0)
    assert found is not None
    assert "webinar_fan" in found.milestones
    # A new App on the same data dir loads the saved file.
    again = App(app.settings, clock=clock)
    try:
        assert again.settings.pipeline_in_use == saved
        assert again.config.config_version == app.config.config_version
        assert "webinar_fan" in again.config.milestone_keys()
    finally:
        if "engine" in again.__dict__:
            again.engine.dispose()


def test_a_save_does_not_overwrite_a_change_made_meanwhile(web: Any, app: App,
                                                           people: People) -> None:
    client = web().login(people.admin)
    stale = text_digest(default_config_text())
    app.settings.pipeline_file.parent.mkdir(parents=True, exist_ok=True)
    other = _edited("    name: Product qualified\n", "    name: Product users\n")
    app.settings.pipeline_file.write_text(other)
    mine = _edited("    name: Marketing qualified\n", "    name: Marketing ready\n")
    answer = client.post("/settings/pipeline", {"content": mine, "base": stale,
                                                "action": "save"})
    assert answer.status_code == 409
    assert "changed by someone else" in answer.text
    assert app.settings.pipeline_file.read_text() == other


def test_a_scoring_change_offers_the_rescore(web: Any, app: App, people: People,
                                             clock: FakeClock) -> None:
    good_fit_contact(app)
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="demo_request", email="ann@example.com"))
    client = web().login(people.admin)
    text = _edited("      when: {type: demo_request}\n      points: 30\n",
                   "      when: {type: demo_request}\n      points: 35\n")
    assert _save(client, text).status_code == 303
    page = client.get("/settings/pipeline")
    assert "The scoring rules changed" in page.text
    assert "Rescore every contact now" in page.text
    assert "Contacts to rescore: 1. It takes a few seconds" in page.text
    started = client.post("/settings/rescore")
    status_page = started.headers["location"]
    done = client.finished(started, under="/settings/rescore/")
    assert "Done: every contact was rescored" in done.text
    assert re.search(r'id="rescore-changed">1<', done.text)
    assert web().login(people.marketer).get(status_page).status_code == 403


# ---------------------------------------------------------------- users


def _error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="e-{field}">(.*?)</p>', html, re.S)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def test_users_are_created_with_errors_next_to_fields(web: Any, app: App,
                                                      people: People) -> None:
    client = web().login(people.admin)
    page = client.get("/settings/users")
    assert people.other_rep.email in page.text
    assert "east" in page.text
    short = client.post("/settings/users", {"email": "new@leadflow.test", "name": "Nina New",
                                            "role": "sales_rep", "team": "west",
                                            "password": "short"})
    assert short.status_code == 422
    assert "at least 10 characters" in _error_of(short.text, "password")
    assert 'value="Nina New"' in short.text  # the form keeps what was typed
    taken = client.post("/settings/users", {"email": people.rep.email, "name": "Again",
                                            "role": "sales_rep", "password": "x" * 12})
    assert taken.status_code == 422
    assert "exists" in _error_of(taken.text, "email")
    made = client.post("/settings/users", {"email": "new@leadflow.test", "name": "Nina New",
                                           "role": "sales_rep", "team": "west",
                                           "password": "long enough pass"})
    assert made.status_code == 303
    nina = get_user(uow=app.reader(), ref="new@leadflow.test")
    assert (nina.role, nina.team) == ("sales_rep", "west")
    assert made.headers["location"] == f"/settings/users/{nina.id}"
    web().login("new@leadflow.test", "long enough pass")


def test_users_are_edited_with_errors_next_to_fields(web: Any, app: App,
                                                     people: People) -> None:
    client = web().login(people.admin)
    path = f"/settings/users/{people.rep.id}"
    form = {"name": "Rita Rep", "role": "sales_rep", "team": "west", "active": "on",
            "weight": "2.5", "territories": "fr:Bretagne, DE"}
    assert client.get(path).status_code == 200
    bad_weight = client.post(path, {**form, "weight": "lots"})
    assert bad_weight.status_code == 422
    assert "capacity weight" in _error_of(bad_weight.text, "weight")
    bad_place = client.post(path, {**form, "territories": "France"})
    assert bad_place.status_code == 422
    assert "2-letter code" in _error_of(bad_place.text, "territories")
    saved = client.post(path, form)
    assert saved.status_code == 303
    rita = get_user(uow=app.reader(), ref=people.rep.id)
    assert (rita.weight, rita.territories) == (2.5, ("FR:bretagne", "DE"))
    # The last active admin cannot stop being one.
    me = f"/settings/users/{people.admin.id}"
    demoted = client.post(me, {"name": "Ada Admin", "role": "marketer", "team": "",
                               "active": "on", "weight": "1", "territories": ""})
    assert demoted.status_code == 422
    assert "last active admin" in _error_of(demoted.text, "role")
    assert get_user(uow=app.reader(), ref=people.admin.id).role == "admin"
    # Deactivating someone: the box left unticked.
    off = client.post(f"/settings/users/{people.other_rep.id}", {
        "name": "Otto Other", "role": "sales_rep", "team": "east", "weight": "1",
        "territories": ""})
    assert off.status_code == 303
    assert not get_user(uow=app.reader(), ref=people.other_rep.id).active
    # A new password.
    short = client.post(f"{path}/password", {"password": "tiny"})
    assert short.status_code == 422
    assert "at least 10 characters" in _error_of(short.text, "password")
    assert client.post(f"{path}/password", {"password": "a brand new one"}).status_code == 303
    web().login(people.rep, "a brand new one")
    assert client.get("/settings/users/99999").status_code == 404


# ---------------------------------------------------------------- API keys


def test_a_new_key_token_is_shown_once_then_the_key_is_revoked(web: Any, app: App,
                                                               people: People) -> None:
    client = web().login(people.admin)
    nameless = client.post("/settings/keys", {"name": "", "kind": "secret", "scopes": "read",
                                              "user": str(people.admin.id)})
    assert nameless.status_code == 422
    assert "needs a name" in _error_of(nameless.text, "name")
    no_scope = client.post("/settings/keys", {"name": "ERP", "kind": "secret",
                                              "user": str(people.admin.id)})
    assert no_scope.status_code == 422
    assert "at least one scope" in _error_of(no_scope.text, "scopes")
    made = client.post("/settings/keys", {"name": "ERP sync", "kind": "secret",
                                          "scopes": ["read", "write"],
                                          "user": str(people.marketer.id)})
    assert made.status_code == 303
    shown = client.get(made.headers["location"])
    token = re.search(r'<code class="secret" id="secret">([^<]+)</code>', shown.text)
    assert token is not None
    assert token.group(1).startswith("lfs_")
    token_text = token.group(1)
    assert token_text not in client.get(made.headers["location"]).text  # never again
    assert "is not shown again" in client.get(made.headers["location"]).text
    listing = client.get("/settings/keys")
    assert token_text not in listing.text
    assert "ERP sync" in listing.text
    assert "Mia Marketer" in listing.text
    api = client.client.get("/api/v1/pipeline", headers={"authorization": f"Bearer {token_text}"})
    assert api.status_code == 200
    key = next(k for k in list_api_keys(uow=app.reader()) if k.name == "ERP sync")
    assert key.scopes == ("read", "write")
    assert key.user_id == people.marketer.id
    public = client.post("/settings/keys", {"name": "Website", "kind": "public",
                                            "scopes": "admin", "user": str(people.admin.id)})
    assert public.status_code == 303
    assert "lfw_" in client.get(public.headers["location"]).text
    revoked = client.post(f"/settings/keys/{key.id}/revoke")
    assert revoked.status_code == 303
    assert "revoked" in client.get("/settings/keys").text
    api = client.client.get("/api/v1/pipeline", headers={"authorization": f"Bearer {token_text}"})
    assert api.status_code == 401
    again = client.post(f"/settings/keys/{key.id}/revoke")
    assert "already revoked" in client.get(again.headers["location"]).text


# ---------------------------------------------------------------- webhooks


class Receiver:
    def __init__(self, status: int) -> None:
        self.status = status

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpReply:
        return HttpReply(self.status, None if self.status < 300 else "down for lunch")


def _deliver_all(app: App, status: int) -> None:
    report = relay(uow=app.uow, ctx=app.ctx, lease_seconds=60)
    for delivery_id, lease in report.handed_out:
        deliver(uow=app.uow, ctx=app.ctx, sender=Receiver(status), delivery_id=delivery_id,
                lease=lease, retry_seconds=10)


def test_webhooks_are_made_listed_redelivered_and_deleted(web: Any, app: App, people: People,
                                                          clock: FakeClock) -> None:
    client = web().login(people.admin)
    bad = client.post("/settings/webhooks", {"url": "ftp://example.com/x",
                                             "topics": "stage.changed"})
    assert bad.status_code == 422
    assert "http(s) URL" in _error_of(bad.text, "url")
    none = client.post("/settings/webhooks", {"url": "https://hooks.example.com/in"})
    assert none.status_code == 422
    assert "at least one topic" in _error_of(none.text, "topics")
    made = client.post("/settings/webhooks", {"url": "https://hooks.example.com/in",
                                              "topics": ["stage.changed", "milestone.reached"],
                                              "stages": ["suspect", "lead"]})
    assert made.status_code == 303
    hook = list_webhooks(uow=app.reader())[0]
    assert hook.stages == ("suspect", "lead")
    shown = client.get(made.headers["location"]).text
    assert hook.secret in shown
    assert hook.secret not in client.get(made.headers["location"]).text
    assert hook.secret not in client.get("/settings/webhooks").text
    good_fit_contact(app)  # stage.changed into suspect: one delivery
    _deliver_all(app, 500)
    log = client.get("/settings/webhooks")
    assert "down for lunch" in log.text
    assert "HTTP 500" in log.text
    row = re.search(r'<tr data-delivery="(\d+)">(.*?)</tr>', log.text, re.S)
    assert row is not None
    delivery = row.group(1)
    assert "Send again" not in row.group(2)  # pending: it goes again by itself
    clock.advance(30)
    _deliver_all(app, 204)
    assert "Send again" in client.get("/settings/webhooks?status=delivered").text
    assert f'data-delivery="{delivery}"' not in \
        client.get("/settings/webhooks?status=failed").text
    again = client.post(f"/settings/webhooks/deliveries/{delivery}/redeliver")
    assert again.status_code == 303
    page = client.get("/settings/webhooks?status=pending")
    assert f"Delivery {delivery} will be sent again." in page.text
    assert f'data-delivery="{delivery}"' in page.text
    gone = client.post(f"/settings/webhooks/{hook.id}/delete")
    assert gone.status_code == 303
    assert not list_webhooks(uow=app.reader())[0].active
    after = client.get("/settings/webhooks").text
    assert f"Webhook {hook.id} deleted" in after
    assert "cancelled" in after


def test_settings_read_in_french(web: Any, people: People) -> None:
    client = web().login(people.admin)
    client.post("/language", {"lang": "fr", "next": "/settings/pipeline"})
    page = client.get("/settings/pipeline").text
    assert "Recalculer tous les contacts maintenant" in page
    assert "Clés d&#39;API" in page


# ---------------------------------------------------------------- browser


def test_a_rescore_started_in_the_browser_shows_its_progress(
        browse: Any, app: App, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        good_fit_contact(app, email=f"c{i}@example.com")
    # The real rescore, held until the page has shown its progress bar.
    gate = threading.Event()

    def held(**kwargs: Any) -> Any:
        assert gate.wait(30)
        return rescore_all(**kwargs)
    monkeypatch.setattr(routes_settings, "rescore_all", held)
    page = browse(people.admin)
    page.goto("/settings/pipeline")
    assert page.locator("#summary-stages").is_visible()
    screenshot(page, "settings-pipeline")
    page.click("#rescore button")
    page.wait_for_url(re.compile(r"/settings/rescore/"))
    page.wait_for_selector("[data-progress-url] progress")
    assert page.locator(".progress-label").inner_text() == "Rescoring every contact"
    gate.set()
    page.wait_for_selector("#rescore-done", timeout=60_000)  # polled, then shown
    assert page.locator("#rescore-changed").inner_text() == "12"
    screenshot(page, "settings-rescore")
