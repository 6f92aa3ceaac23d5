"""The REST API /api/v1: contacts, stage moves, qualification, accounts, events, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli
from leadflow.entrypoints.cli.base import set_app
from tests.api.conftest import Keys, bearer, count, counts, events_of, rows
from tests.conftest import T0, FakeClock

WRITER = "user:admin@leadflow.example via key writer"  # who the write key acts as
DAY = 86400.0
ACME = {"name": "Acme", "domain": "acme.example", "industry": "software", "employees": 300,
        "country": "FR"}


@pytest.fixture
def write(keys: Keys) -> dict[str, str]:
    return bearer(keys.write)


def create(api: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    reply = api.post("/api/v1/contacts", json=fields, headers=headers)
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_contact_create_get_and_patch(api: TestClient, app: App, write: dict[str, str]) -> None:
    made = create(api, write, email="Ann@Acme.example", first_name="Ann", seniority="Director",
                  country="fr", account=ACME, consent={"email": True},
                  attributes={"crm_id": "0031"})
    assert made["email"] == "ann@acme.example"
    assert (made["stage"], made["fit"]["grade"], made["fit"]["persona"]) == (
        "suspect", "A", "it_leader")
    assert made["account"]["domain"] == "acme.example"
    assert made["consent"]["email"]["granted"] is True
    [row] = rows(app, t.contacts)
    assert (row.id, row.email, row.seniority, row.country) == (
        made["id"], "ann@acme.example", "director", "FR")
    assert row.attributes == {"crm_id": "0031"}
    shown = api.get(f"/api/v1/contacts/{made['id']}", headers=write)
    assert shown.status_code == 200
    assert shown.json()["identities"] == [{"kind": "email", "value": "ann@acme.example"}]
    assert [e["what"] for e in shown.json()["timeline"] if e["kind"] == "stage"] == [
        "- → suspect"]

    patched = api.patch(f"/api/v1/contacts/{made['id']}", headers=write,
                        json={"seniority": "intern", "title": "Intern",
                              "attributes": {"team": "ops"}})
    assert patched.status_code == 200
    assert patched.json()["fit"]["grade"] != "A"
    [row] = rows(app, t.contacts)
    assert (row.seniority, row.title, row.fit_grade) == ("intern", "Intern",
                                                         patched.json()["fit"]["grade"])
    assert row.attributes == {"crm_id": "0031", "team": "ops"}
    [audit] = rows(app, t.audit, t.audit.c.action == "updated")
    assert audit.actor == WRITER
    assert audit.details["seniority"] == ["director", "intern"]

    # Errors: JSON with a code, a message and the field.
    unknown = api.patch(f"/api/v1/contacts/{made['id']}", headers=write, json={"colour": "red"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "colour"
    assert unknown.json()["error"]["code"] == "invalid_input"
    bad_country = api.patch(f"/api/v1/contacts/{made['id']}", headers=write,
                            json={"country": "F1"})
    assert bad_country.status_code == 422
    assert bad_country.json()["error"]["field"] == "country"
    duplicate = api.post("/api/v1/contacts", headers=write, json={"email": "ANN@acme.example"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == {
        "code": "conflict", "field": "email",
        "message": "a contact with email ann@acme.example already exists"}
    missing = api.get("/api/v1/contacts/999999", headers=write)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "contact_id"
    assert api.get("/api/v1/nowhere", headers=write).json()["error"]["code"] == "not_found"
    assert count(app, t.contacts) == 1

    # An email a contact gave up still finds it: nobody else may take it.
    moved = api.patch(f"/api/v1/contacts/{made['id']}", headers=write,
                      json={"email": "ann@newjob.example"})
    assert moved.json()["email"] == "ann@newjob.example"
    taken = api.post("/api/v1/contacts", headers=write, json={"email": "ann@acme.example"})
    assert (taken.status_code, taken.json()["error"]["field"]) == (409, "email")
    bob = create(api, write, email="bob@acme.example")
    clash = api.patch(f"/api/v1/contacts/{bob['id']}", headers=write,
                      json={"email": "ann@acme.example"})
    assert clash.status_code == 409
    event = api.post("/api/v1/events", headers=write,
                     json={"type": "page_view", "email": "ann@acme.example"})
    assert event.json()["contact_id"] == made["id"]
    assert [r.email for r in rows(app, t.contacts)] == ["ann@newjob.example",
                                                        "bob@acme.example"]


def _cli_list(app: App, *args: str) -> dict[str, Any]:
    set_app(app)
    try:
        result = CliRunner().invoke(cli, ["contacts", "list", *args, "--json"])
    finally:
        set_app(None)
    assert result.exit_code == 0, result.output
    listed: dict[str, Any] = json.loads(result.stdout)
    return listed


def test_contact_lists_match_the_cli(api: TestClient, app: App, clock: FakeClock,
                                     keys: Keys, write: dict[str, str]) -> None:
    ann = create(api, write, email="ann@acme.example", first_name="Ann", last_name="Ames",
                 seniority="director", country="FR", account=ACME, source="webinar")
    bob = create(api, write, email="bob@beta.example", first_name="Bob", last_name="Berg",
                 source="import")
    cy = create(api, write, email="cy@acme.example", first_name="Cy", last_name="Cole",
                seniority="director", country="FR", account=ACME)
    create(api, write, email="dee@delta.example", last_name="Dorn", source="import")
    events = [{"type": "demo_request", "contact_id": ann["id"], "timestamp": T0 - 3600},
              {"type": "form_submitted", "contact_id": bob["id"], "timestamp": T0 - 7200},
              {"type": "webinar_attended", "contact_id": bob["id"], "timestamp": T0 - 7000},
              {"type": "webinar_attended", "contact_id": bob["id"], "timestamp": T0 - 6900},
              {"type": "page_view", "contact_id": cy["id"], "url": "/pricing",
               "timestamp": T0 - 600}]
    assert api.post("/api/v1/events/batch", json={"events": events},
                    headers=write).status_code == 201
    clock.advance(8 * DAY)  # Ann's demo request no longer makes her hot

    queries = [
        ({}, []),
        ({"stage": "lead,prospect"}, ["--stage", "lead", "--stage", "prospect"]),
        ({"grade": "B+"}, ["--grade", "B+"]),
        ({"min_score": 5}, ["--min-score", "5"]),
        ({"milestone": "mql"}, ["--milestone", "mql"]),
        ({"source": "Import"}, ["--source", "Import"]),
        ({"q": "ACME"}, ["--search", "ACME"]),
        ({"sort": "name", "limit": 2, "offset": 1}, ["--sort", "name", "--limit", "2",
                                                     "--offset", "1"]),
        ({"sort": "-score"}, ["--sort", "-score"]),
        ({"sort": "last_activity"}, ["--sort", "last_activity"]),
        ({"temperature": "hot"}, ["--temperature", "hot"]),
        ({"temperature": ["warm", "new"]}, ["--temperature", "warm", "--temperature", "new"]),
    ]
    reader = bearer(keys.read)
    for params, args in queries:
        page = api.get("/api/v1/contacts", params=params, headers=reader)
        assert page.status_code == 200, (params, page.text)
        listed = _cli_list(app, *args)
        got = page.json()
        assert got["total"] == listed["total"], params
        assert [(i["id"], i["stage"], i["temperature"], i["engagement"]) for i in got["items"]] \
            == [(i["id"], i["stage"], i["temperature"], i["engagement"])
                for i in listed["items"]], params
    assert [i["id"] for i in api.get("/api/v1/contacts", params={"sort": "id"},
                                     headers=reader).json()["items"]][:3] == [
        ann["id"], bob["id"], cy["id"]]
    bad = api.get("/api/v1/contacts", params={"stage": "nowhere"}, headers=reader)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "stage"
    assert api.get("/api/v1/contacts", params={"sort": "colour"},
                   headers=reader).json()["error"]["field"] == "sort"
    assert api.get("/api/v1/contacts", params={"limit": 0},
                   headers=reader).json()["error"]["field"] == "limit"


def test_manual_lead_moves_qualification_and_recycling(api: TestClient, app: App,
                                                       write: dict[str, str]) -> None:
    lead = create(api, write, email="eve@acme.example", seniority="director", country="FR",
                  account=ACME, lead_reason="met at the trade fair")
    assert (lead["stage"], lead["source"]) == ("lead", "manual")
    cid = lead["id"]
    assert [(c.to_stage, c.reason) for c in rows(app, t.stage_changes)] == [
        ("suspect", "first seen"), ("lead", "met at the trade fair")]
    no_details = api.post("/api/v1/contacts", headers=write,
                          json={"first_name": "Nobody", "lead_reason": "heard of them"})
    assert no_details.status_code == 422
    assert no_details.json()["error"]["field"] == "email"
    no_referrer = api.post("/api/v1/contacts", headers=write, json={
        "email": "fay@acme.example", "lead_reason": "a friend's tip", "referred_by_id": 4242})
    assert (no_referrer.status_code, no_referrer.json()["error"]["field"]) == (
        404, "referred_by_id")

    url = f"/api/v1/contacts/{cid}"
    no_reason = api.post(f"{url}/stage", headers=write, json={"stage": "prospect"})
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["field"] == "reason"
    blank = api.post(f"{url}/stage", headers=write, json={"stage": "prospect", "reason": ""})
    assert blank.status_code == 422
    unknown = api.post(f"{url}/stage", headers=write, json={"stage": "heaven", "reason": "x"})
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (422, "stage")
    closed = api.post(f"{url}/stage", headers=write, json={"stage": "closed", "reason": "x"})
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "move_not_allowed")
    assert count(app, t.stage_changes) == 2

    moved = api.post(f"{url}/stage", headers=write,
                     json={"stage": "prospect", "reason": "asked for a quote by phone"})
    assert moved.status_code == 200
    assert moved.json()["stage"] == "prospect"
    same = api.post(f"{url}/stage", headers=write, json={"stage": "prospect", "reason": "again"})
    assert same.status_code == 409

    qualified = api.put(f"{url}/qualification", headers=write, json={"answers": {
        "budget": "approved", "authority": "decision_maker", "need": True,
        "timeline": "2026-05-01", "has_crm_data": True}})
    assert qualified.status_code == 200, qualified.text
    assert qualified.json()["qualification"]["passed"] is True
    assert "qualified" in qualified.json()["milestones"]
    bad_answer = api.put(f"{url}/qualification", headers=write,
                         json={"answers": {"budget": "infinite"}})
    assert (bad_answer.status_code, bad_answer.json()["error"]["field"]) == (
        422, "answers.budget")
    unknown_question = api.put(f"{url}/qualification", headers=write,
                               json={"answers": {"shoe_size": 42}})
    assert unknown_question.json()["error"]["field"] == "answers.shoe_size"

    recycled = api.post(f"{url}/recycle", headers=write, json={"reason": "no budget after all"})
    assert recycled.status_code == 200
    assert recycled.json()["stage"] == "lead"
    assert recycled.json()["recycled_at"] == T0
    again = api.post(f"{url}/recycle", headers=write, json={"reason": "twice"})
    assert again.status_code == 409  # a lead is not recycled
    out = api.post(f"{url}/disqualify", headers=write, json={"reason": "works for a rival"})
    assert out.json()["stage"] == "disqualified"
    [row] = rows(app, t.contacts)
    assert (row.stage, row.qualification_passed, row.recycled_at) == ("disqualified", True, T0)
    assert [(c.from_stage, c.to_stage, c.kind, c.actor) for c in rows(app, t.stage_changes)][2:] \
        == [("lead", "prospect", "forward", WRITER),
            ("prospect", "lead", "backward", WRITER),
            ("lead", "disqualified", "side", WRITER)]
    assert {m.key for m in rows(app, t.milestones)} >= {"qualified"}


def _everything(app: App) -> str:
    """Every row of every table, as text."""
    with app.engine.connect() as conn:
        return "\n".join(repr(tuple(r)) for table in t.metadata.sorted_tables
                         for r in conn.execute(select(table)))


def test_erase_removes_personal_data_everywhere(api: TestClient, app: App,
                                               write: dict[str, str]) -> None:
    zoe = create(api, write, email="zoe.secret@acme.example", first_name="Zoelle",
                 last_name="Quixote", phone="+33 1 23 45 67 89", account=ACME,
                 attributes={"hobby": "Zoelle's sailing"})
    api.post("/api/v1/events", headers=write, json={
        "type": "form_submitted", "email": "zoe.secret@acme.example", "user_id": "zq-77",
        "anonymous_id": "anon-zq", "timestamp": T0 - 60,
        "url": "/contact?email=zoe.secret@acme.example",
        "properties": {"message": "Call Zoelle Quixote"}})
    assert "Zoelle" in _everything(app)
    erased = api.post(f"/api/v1/contacts/{zoe['id']}/erase", headers=write,
                      json={"reason": "GDPR request"})
    assert erased.status_code == 204
    assert erased.content == b""
    dump = _everything(app)
    for secret in ("zoe.secret", "Zoelle", "Quixote", "23 45 67", "zq-77", "anon-zq"):
        assert secret not in dump, secret
    [row] = rows(app, t.contacts)
    assert row.stage == "closed"
    assert count(app, t.suppressions) == 3  # email, user id, anonymous id: hashed
    # Nothing brings them back, in any letter case; an erased contact does not move.
    again = api.post("/api/v1/contacts", headers=write, json={"email": "ZOE.secret@acme.example"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "suppressed"
    assert api.post(f"/api/v1/contacts/{zoe['id']}/stage", headers=write,
                    json={"stage": "lead", "reason": "x"}).status_code == 409
    assert api.patch(f"/api/v1/contacts/{zoe['id']}", headers=write,
                     json={"first_name": "Z"}).status_code == 409
    assert api.post(f"/api/v1/contacts/{zoe['id']}/erase", headers=write,
                    json={"reason": "twice"}).status_code == 409
    assert "zoe.secret" not in _everything(app)


def test_accounts_create_get_and_patch_refits_contacts(api: TestClient, app: App,
                                                       write: dict[str, str]) -> None:
    made = api.post("/api/v1/accounts", headers=write, json={**ACME, "employees": 5,
                                                              "industry": "mining"})
    assert made.status_code == 201
    account = made.json()
    assert account["employees"] == 5
    ann = create(api, write, email="ann@acme.example", seniority="director", country="FR",
                 account={"name": "Acme", "domain": "acme.example"})
    assert ann["account"]["id"] == account["id"]
    assert ann["fit"]["grade"] == "B"  # too small a company, outside the target industries
    got = api.get(f"/api/v1/accounts/{account['id']}", headers=write)
    assert got.json() == account
    patched = api.patch(f"/api/v1/accounts/{account['id']}", headers=write,
                        json={"employees": 300, "industry": "software",
                              "attributes": {"tier": "gold"}})
    assert patched.status_code == 200
    assert (patched.json()["employees"], patched.json()["name"]) == (300, "Acme")
    assert patched.json()["attributes"]["tier"] == "gold"
    [row] = rows(app, t.contacts)
    assert row.fit_grade == "A"
    [stored] = rows(app, t.accounts)
    assert (stored.employees, stored.updated_at) == (300, T0)
    assert api.get("/api/v1/accounts/4242", headers=write).status_code == 404
    other = api.post("/api/v1/accounts", headers=write, json={"name": "Beta",
                                                               "domain": "beta.example"})
    taken = api.patch(f"/api/v1/accounts/{other.json()['id']}", headers=write,
                      json={"domain": "acme.example"})
    assert taken.status_code == 409
    assert taken.json()["error"]["field"] == "domain"
    negative = api.post("/api/v1/accounts", headers=write, json={"name": "X", "employees": -1})
    assert (negative.status_code, negative.json()["error"]["field"]) == (422, "employees")
    assert count(app, t.accounts) == 2


def test_events_one_and_a_batch_that_is_atomic(api: TestClient, app: App,
                                               write: dict[str, str]) -> None:
    one = api.post("/api/v1/events", headers=write, json={
        "type": "content_download", "email": "ann@acme.example", "premium": True,
        "timestamp": T0 - 60, "message_id": "e-1",
        "url": "https://acme.example/wp?utm_source=linkedin&utm_campaign=q1"})
    assert one.status_code == 201, one.text
    body = one.json()
    assert body["created_contact"] is True
    assert body["awarded"] == {"content_download": 8.0, "premium_download": 12.0}
    [event] = events_of(app, body["contact_id"])
    assert (event.url, event.utm_source, event.utm_campaign) == ("/wp", "linkedin", "q1")
    again = api.post("/api/v1/events", headers=write, json={
        "type": "content_download", "email": "ann@acme.example", "message_id": "e-1"})
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert count(app, t.events) == 1

    before = counts(app)
    good = {"type": "page_view", "email": "bob@acme.example", "timestamp": T0 - 30}
    for bad, field in (({"type": "page_view", "email": "not an email"}, "events[1].email"),
                       ({"type": "Page View!", "email": "b@x.example"}, "events[1].type"),
                       ({"type": "page_view", "email": "b@x.example", "timestamp": T0 + 3600},
                        "events[1].timestamp"),
                       ({"type": "page_view", "contact_id": 987654}, "events[1].contact_id"),
                       ({"type": "page_view"}, "events[1].contact"),
                       ({"email": "b@x.example"}, "events[1].type"),
                       ({"type": "page_view", "email": "b@x.example", "colour": 1},
                        "events[1].colour")):
        reply = api.post("/api/v1/events/batch", headers=write,
                         json={"events": [good, bad, good]})
        assert reply.status_code in (404, 422), (bad, reply.text)
        assert reply.json()["error"]["field"] == field, (bad, reply.json())
    empty = api.post("/api/v1/events/batch", headers=write, json={"events": []})
    assert (empty.status_code, empty.json()["error"]["field"]) == (422, "events")
    assert counts(app) == before

    batch = api.post("/api/v1/events/batch", headers=write, json={"events": [
        {**good, "message_id": "b-1"}, {**good, "type": "form_submitted", "message_id": "b-2",
                                        "timestamp": T0 - 90}, {**good, "message_id": "b-1"}]})
    assert batch.status_code == 201
    results = batch.json()
    assert [r["duplicate"] for r in results] == [False, False, True]
    assert results[0]["contact_id"] == results[1]["contact_id"]
    assert [e.type for e in events_of(app, results[0]["contact_id"])] == [
        "form_submitted", "page_view"]


def test_openapi_and_docs(api: TestClient) -> None:
    schema = api.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/contacts", "/api/v1/contacts/{contact_id}",
                 "/api/v1/contacts/{contact_id}/stage", "/api/v1/events/batch",
                 "/api/v1/accounts/{account_id}", "/api/v1/pipeline", "/api/v1/webhooks",
                 "/api/v1/api-keys", "/v1/batch", "/v1/track", "/v1/identify", "/healthz"):
        assert path in paths, path
    components = schema.json()["components"]["schemas"]
    assert {"ContactCreate", "ContactUpdate", "ContactRead"} <= set(components)
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()

