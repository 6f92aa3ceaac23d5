"""Nurture, the email log, bounces and newsletters over HTTP, and the same from the CLI."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli
from tests.api.conftest import Keys, bearer, count, rows

GUIDE = {"key": "guide", "title": "The guide", "url": "/guide", "maturity": "discovery",
         "format": "article"}
ISSUE = {"key": "news-1", "title": "Issue one", "url": "/news/1", "maturity": "discovery",
         "format": "newsletter_issue"}


def lead(api: TestClient, keys: Keys, email: str, **extra: object) -> int:
    made = api.post("/api/v1/contacts", headers=bearer(keys.write),
                    json={"email": email, "lead_reason": "asked for the guide", **extra})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_tracks_defined_through_the_api_are_checked_run_and_retired(
        api: TestClient, app: App, keys: Keys) -> None:
    admin = bearer(keys.admin)
    assert api.post("/api/v1/content", headers=admin, json=GUIDE).status_code == 201
    listed = api.get("/api/v1/nurture/tracks", headers=bearer(keys.read)).json()
    assert [t["key"] for t in listed] == ["lead_discovery", "prospect_decision"]
    bad = api.put("/api/v1/nurture/tracks/welcome", headers=admin, json={
        "audience": "marketing", "stages": ["won"], "steps": [{"send": {"maturity": "decision"}}]})
    assert bad.status_code == 422
    locations = {p["location"] for p in bad.json()["error"]["problems"]}
    assert {"track.stages", "track.steps[0].send.maturity"} <= locations
    clash = api.put("/api/v1/nurture/tracks/lead_discovery", headers=admin,
                    json={"steps": [{"wait": "1d"}]})
    assert clash.status_code == 422
    assert clash.json()["error"]["field"] == "key"
    good = api.put("/api/v1/nurture/tracks/welcome", headers=admin, json={
        "name": "Welcome", "audience": "marketing", "stages": ["interest"],
        "steps": [{"send": {"item": "guide"}}]})
    assert good.status_code == 200, good.text
    assert good.json()["source"] == "api"
    cid = lead(api, keys, "wel@example.com")
    ran = api.post("/api/v1/nurture/run", headers=admin).json()
    assert ran["entered"] == 2  # the file's lead track and the new one
    members = api.get("/api/v1/nurture/tracks/welcome/members", headers=admin).json()
    assert [(m["contact_id"], m["status"]) for m in members] == [(cid, "done")]
    assert count(app, t.mail_messages) == 1  # both want the guide: it is sent once
    assert api.delete("/api/v1/nurture/tracks/welcome", headers=admin).status_code == 204
    assert api.delete("/api/v1/nurture/tracks/welcome", headers=admin).status_code == 404
    assert "welcome" not in [t["key"] for t in api.get("/api/v1/nurture/tracks",
                                                        headers=admin).json()]


def test_newsletter_bounces_and_the_email_log(api: TestClient, app: App, keys: Keys) -> None:
    admin = bearer(keys.admin)
    api.post("/api/v1/content", headers=admin, json=ISSUE)
    api.post("/api/v1/content", headers=admin, json=GUIDE)
    reader = lead(api, keys, "sub@example.com",
                  consent={"email": True, "newsletter": True})
    lead(api, keys, "nosub@example.com")
    not_issue = api.post("/api/v1/newsletter/guide/send", headers=admin)
    assert not_issue.status_code == 422
    assert not_issue.json()["error"]["field"] == "item"
    sent = api.post("/api/v1/newsletter/news-1/send", headers=admin)
    assert sent.json() == {"queued": 1}
    assert api.post("/api/v1/newsletter/news-1/send", headers=admin).json() == {"queued": 0}
    log = api.get("/api/v1/mail/messages?category=newsletter", headers=admin).json()
    assert [(m["contact_id"], m["status"]) for m in log] == [(reader, "queued")]
    assert api.get("/api/v1/mail/messages?category=spam", headers=admin).status_code == 422
    bounced = api.post("/api/v1/mail/bounces", headers=admin,
                       json={"kind": "hard", "email": "SUB@example.com"})
    assert bounced.status_code == 204
    [row] = rows(app, t.mail_messages)
    assert (row.status, row.reason) == ("skipped", "the address bounced")
    assert api.post("/api/v1/mail/bounces", headers=admin,
                    json={"kind": "bouncy", "email": "sub@example.com"}).status_code == 422
    assert api.post("/api/v1/mail/bounces", headers=admin,
                    json={"kind": "hard", "email": "who@example.com"}).status_code == 404
    view = api.get(f"/api/v1/contacts/{reader}", headers=admin).json()
    assert [e["status"] for e in view["timeline"] if e["kind"] == "email"] == ["skipped"]


def test_the_same_from_the_command_line(api: TestClient, app: App, keys: Keys) -> None:
    from leadflow.entrypoints.cli.base import set_app
    admin = bearer(keys.admin)
    api.post("/api/v1/content", headers=admin, json=GUIDE)
    api.post("/api/v1/content", headers=admin, json=ISSUE)
    cid = lead(api, keys, "cli@example.com", consent={"newsletter": True})
    runner = CliRunner()
    set_app(app)
    try:
        def run(*args: str, code: int = 0) -> str:
            result = runner.invoke(cli, list(args))
            assert result.exit_code == code, (result.stdout, result.stderr)
            return result.stdout + result.stderr

        report = json.loads(run("nurture", "run", "--send", "--json"))
        assert (report["entered"], report["queued"], report["mail"]["sent"]) == (1, 1, 1)
        tracks = json.loads(run("nurture", "tracks", "--json"))
        assert tracks[0]["members"] == {"active": 1}
        members = json.loads(run("nurture", "members", "lead_discovery", "--json"))
        assert [m["contact_id"] for m in members] == [cid]
        assert "queued for 1 subscribers" in run("newsletter", "send", "news-1")
        assert "sent 1" in run("mail", "send")
        log = json.loads(run("mail", "list", "--contact", "cli@example.com", "--json"))
        assert sorted(m["category"] for m in log) == ["marketing", "newsletter"]
        assert "complaint bounce recorded" in run("mail", "bounce", "cli@example.com",
                                                  "--kind", "complaint")
        assert "kind is one of" in run("mail", "bounce", "cli@example.com", "--kind", "x",
                                       code=2)
        assert "not a newsletter issue" in run("newsletter", "send", "guide", code=2)
    finally:
        set_app(None)
    files = list((app.settings.data_dir / "mail-outbox").glob("*.eml"))
    assert len(files) == 2
