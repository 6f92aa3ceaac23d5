"""A sales rep reaches only what they own, by every route of the API.

The routes are enumerated from the OpenAPI schema: a new route that is not listed here fails
the test, so nobody can add one and forget to decide who may call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadflow.bootstrap import App
from leadflow.services.api_keys import create_api_key
from leadflow.services.users import create_user
from tests.api.conftest import Keys, bearer, counts

ACME = {"name": "Acme", "domain": "acme.example", "industry": "software", "employees": 300,
        "country": "FR"}


@dataclass
class World:
    rep_a: dict[str, str]  # headers of rep A (the caller)
    rep_b_id: int
    contact_b: int  # owned by rep B: a prospect with an open task
    contact_a: int  # owned by rep A
    task_b: int
    account_b: int
    ids: dict[str, int]


def _token(app: App, user_id: int, scope: str) -> dict[str, str]:
    return bearer(create_api_key(uow=app.uow(), ctx=app.ctx, name="t", kind="secret",
                                 scopes=[scope], user=user_id).token)


@pytest.fixture
def world(api: TestClient, app: App, keys: Keys) -> World:
    a = create_user(uow=app.uow(), ctx=app.ctx, email="a@sales.example", name="Rep A",
                    role="sales_rep", team="west")
    b = create_user(uow=app.uow(), ctx=app.ctx, email="b@sales.example", name="Rep B",
                    role="sales_rep", team="east")
    # A rep's key with the admin scope still acts as a rep: the role caps it.
    rep_a = _token(app, a.id, "admin")
    rep_b = _token(app, b.id, "write")
    made = api.post("/api/v1/contacts", headers=rep_b, json={
        "email": "bea@acme.example", "seniority": "director", "country": "FR",
        "account": ACME, "lead_reason": "met at the fair"})
    assert made.status_code == 201, made.text
    contact_b = made.json()["id"]
    moved = api.post(f"/api/v1/contacts/{contact_b}/stage", headers=rep_b,
                     json={"stage": "prospect", "reason": "asked for a demo"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner"]["id"] == b.id
    [task] = moved.json()["tasks"]
    own = api.post("/api/v1/contacts", headers=rep_a, json={
        "email": "al@other.example", "lead_reason": "a neighbour's tip"})
    assert own.status_code == 201, own.text
    deal = api.post(f"/api/v1/contacts/{contact_b}/opportunities", headers=rep_b, json={
        "name": "Acme seats", "amount": 12000, "currency": "EUR"})
    assert deal.status_code == 201, deal.text
    admin = bearer(keys.admin)
    hook = api.post("/api/v1/webhooks", headers=admin, json={
        "url": "http://127.0.0.1:9/hook", "topics": ["stage.changed"]}).json()
    key_list = api.get("/api/v1/api-keys", headers=admin).json()
    return World(rep_a=rep_a, rep_b_id=b.id, contact_b=contact_b, contact_a=own.json()["id"],
                 task_b=task["id"], account_b=made.json()["account"]["id"],
                 ids={"webhook_id": hook["id"], "key_id": key_list[0]["id"],
                      "delivery_id": 1, "user_id": b.id,
                      "opportunity_id": deal.json()["id"], "key": "crm-guide",
                      "item_key": "news-1", "version_id": 1})


# Every route a rep must be refused on when it names another rep's records, with a valid
# body (so that what answers is the access check, not validation).
REFUSED: dict[tuple[str, str], Any] = {
    ("GET", "/api/v1/contacts/{contact_id}"): None,
    ("PATCH", "/api/v1/contacts/{contact_id}"): {"title": "CEO"},
    ("POST", "/api/v1/contacts/{contact_id}/stage"): {"stage": "lead", "reason": "x"},
    ("POST", "/api/v1/contacts/{contact_id}/disqualify"): {"reason": "x"},
    ("POST", "/api/v1/contacts/{contact_id}/recycle"): {"reason": "x"},
    ("PUT", "/api/v1/contacts/{contact_id}/qualification"): {"answers": {"need": "yes"}},
    ("POST", "/api/v1/contacts/{contact_id}/erase"): {"reason": "x"},
    ("GET", "/api/v1/accounts/{account_id}"): None,
    ("PATCH", "/api/v1/accounts/{account_id}"): {"industry": "retail"},
    ("POST", "/api/v1/events"): {"type": "page_view", "contact_id": "{contact_id}"},
    ("POST", "/api/v1/events/batch"): {"events": [{"type": "page_view",
                                                   "contact_id": "{contact_id}"}]},
    ("POST", "/api/v1/users"): {"email": "x@sales.example", "name": "X", "role": "admin"},
    ("PATCH", "/api/v1/users/{user_id}"): {"weight": 5},
    ("GET", "/api/v1/cracks"): None,
    ("POST", "/api/v1/contacts/{contact_id}/assign"): {"owner": "a@sales.example",
                                                       "reason": "mine now"},
    ("POST", "/api/v1/contacts/{contact_id}/accept"): None,
    ("POST", "/api/v1/contacts/{contact_id}/reject"): {"reason": "x"},
    ("GET", "/api/v1/contacts/{contact_id}/tasks"): None,
    ("POST", "/api/v1/contacts/{contact_id}/tasks"): {"kind": "call"},
    ("POST", "/api/v1/tasks/{task_id}/complete"): {"outcome": "done"},
    ("GET", "/api/v1/contacts/{contact_id}/activities"): None,
    ("POST", "/api/v1/contacts/{contact_id}/activities"): {"kind": "note", "body": "x"},
    ("POST", "/api/v1/contacts/{contact_id}/emails"): {"subject": "hi", "text": "hello"},
    ("POST", "/api/v1/inbound/email"): "raw",
    ("POST", "/api/v1/contacts/{contact_id}/opportunities"): {
        "name": "x", "amount": 1, "currency": "EUR"},
    ("GET", "/api/v1/opportunities/{opportunity_id}"): None,
    ("PATCH", "/api/v1/opportunities/{opportunity_id}"): {"amount": 1},
    ("POST", "/api/v1/opportunities/{opportunity_id}/win"): None,
    ("POST", "/api/v1/opportunities/{opportunity_id}/lose"): {"reason": "price"},
    ("GET", "/api/v1/api-keys"): None,
    ("POST", "/api/v1/api-keys"): {"name": "x", "scopes": ["read"]},
    ("DELETE", "/api/v1/api-keys/{key_id}"): None,
    ("GET", "/api/v1/webhooks"): None,
    ("POST", "/api/v1/webhooks"): {"url": "http://127.0.0.1:9/x", "topics": ["stage.changed"]},
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): None,
    ("GET", "/api/v1/webhooks/deliveries"): None,
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/redeliver"): None,
    ("POST", "/v1/identify"): {"userId": "u1", "traits": {"email": "bea@acme.example"}},
    ("POST", "/v1/track"): {"userId": "u1", "event": "Clicked"},
    ("POST", "/v1/page"): {"userId": "u1", "name": "Home"},
    ("POST", "/v1/screen"): {"userId": "u1", "name": "Home"},
    ("POST", "/v1/group"): {"userId": "u1", "groupId": "g1"},
    ("POST", "/v1/alias"): {"userId": "u1", "previousId": "a1"},
    ("POST", "/v1/batch"): {"batch": [{"type": "track", "userId": "u1", "event": "x"}]},
    ("POST", "/api/v1/content"): {"key": "x", "title": "X", "url": "/x",
                                  "maturity": "discovery", "format": "article"},
    ("PATCH", "/api/v1/content/{key}"): {"title": "X"},
    ("DELETE", "/api/v1/content/{key}"): None,
    ("POST", "/api/v1/content/import"): None,
    ("GET", "/api/v1/contacts/{contact_id}/next-content"): None,
    ("GET", "/api/v1/contacts/{contact_id}/export"): None,
    ("GET", "/api/v1/forms"): None,
    ("POST", "/api/v1/forms"): {"key": "x", "name": "X"},
    ("GET", "/api/v1/forms/{key}"): None,
    ("PATCH", "/api/v1/forms/{key}"): {"name": "X"},
    # A form on another site takes the public write key, not a rep's (as tracking does).
    ("POST", "/v1/forms/{key}"): {"email": "bea@acme.example"},
    ("GET", "/api/v1/mail/messages"): None,
    ("POST", "/api/v1/mail/bounces"): {"kind": "hard", "email": "bea@acme.example"},
    ("POST", "/api/v1/newsletter/{item_key}/send"): None,
    ("PUT", "/api/v1/nurture/tracks/{key}"): {"audience": "marketing", "stages": ["interest"],
                                              "steps": [{"wait": "1d"}]},
    ("DELETE", "/api/v1/nurture/tracks/{key}"): None,
    ("GET", "/api/v1/nurture/tracks/{key}/members"): None,
    ("POST", "/api/v1/nurture/run"): None,
    # The predictive score: a contact's for whoever sees the contact; models for admins.
    ("GET", "/api/v1/contacts/{contact_id}/prediction"): None,
    ("GET", "/api/v1/models"): None,
    ("POST", "/api/v1/models/{version_id}/activate"): None,
}

# Routes a rep may call; each one's check says what must (not) be in the answer.
ALLOWED = {
    ("GET", "/api/v1/contacts"), ("POST", "/api/v1/contacts"), ("POST", "/api/v1/accounts"),
    ("GET", "/api/v1/users"), ("GET", "/api/v1/users/me"), ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/queue"), ("GET", "/api/v1/pipeline"), ("POST", "/api/v1/pipeline/check"),
    ("GET", "/api/v1/personas"), ("GET", "/v1/projects/{write_key}/settings"),
    ("GET", "/api/v1/opportunities"), ("GET", "/api/v1/plan"),
    ("GET", "/healthz"), ("GET", "/api/v1/content"), ("GET", "/api/v1/content/{key}"),
    ("GET", "/p/{form_key}"), ("POST", "/p/{form_key}"),  # public landing pages
    ("GET", "/api/v1/nurture/tracks"),  # definitions and counts, nobody's personal data
    # Analytics of the contacts and tasks the caller sees: a rep's own only.
    ("GET", "/api/v1/analytics/funnel"), ("GET", "/api/v1/analytics/time-in-stage"),
    ("GET", "/api/v1/analytics/sla"), ("GET", "/api/v1/analytics/attribution"),
}


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if value == "{contact_id}":
        return world.contact_b
    return value


def test_every_route_refuses_a_rep_another_reps_records(api: TestClient, app: App,
                                                        world: World) -> None:
    routes = {(method.upper(), path) for path, ops in api.app.openapi()["paths"].items()
              for method in ops}
    unknown = routes - set(REFUSED) - ALLOWED
    assert not unknown, f"decide who may call these routes, and list them here: {unknown}"
    params = {"contact_id": world.contact_b, "task_id": world.task_b,
              "account_id": world.account_b, **world.ids}
    before = counts(app)
    for (method, path), body in sorted(REFUSED.items()):
        url = path.format(**params)
        if body == "raw":
            answer = api.request(method, url, headers={**world.rep_a,
                                                       "Content-Type": "message/rfc822"},
                                 content=b"From: bea@acme.example\r\n\r\nhello")
        else:
            answer = api.request(method, url, headers=world.rep_a,
                                 json=_fill(body, world) if body is not None else None)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
    assert counts(app) == before


def test_what_a_rep_may_call_shows_only_their_own(api: TestClient, world: World) -> None:
    listed = api.get("/api/v1/contacts", headers=world.rep_a).json()
    assert [c["id"] for c in listed["items"]] == [world.contact_a]
    assert listed["total"] == 1
    by_owner = api.get(f"/api/v1/contacts?owner_id={world.rep_b_id}", headers=world.rep_a)
    assert by_owner.json()["items"] == []
    queue = api.get("/api/v1/queue", headers=world.rep_a).json()
    assert world.contact_b not in [p["id"] for p in queue["prospects"]]
    assert world.task_b not in [t["id"] for t in queue["tasks"]]
    other = api.get(f"/api/v1/queue?owner_id={world.rep_b_id}", headers=world.rep_a)
    assert other.status_code == 403
    assert api.get("/api/v1/opportunities", headers=world.rep_a).json()["total"] == 0
    plan = api.get("/api/v1/plan?target=100000&capacity=10&budget=1000",
                   headers=world.rep_a).json()
    assert {i["contact_id"] for i in plan["items"]} | {
        s["contact_id"] for s in plan["skipped"]} <= {world.contact_a}
    funnel = api.get("/api/v1/analytics/funnel?by=source", headers=world.rep_a).json()
    assert funnel["total"]["contacts"] == 1  # contact A only
    assert funnel["total"]["opportunities"]["open"] == 0  # B's deal is not counted
    times = api.get("/api/v1/analytics/time-in-stage", headers=world.rep_a).json()
    assert sum(r["still_in"] for r in times["total"]) == 1
    sla = api.get("/api/v1/analytics/sla", headers=world.rep_a).json()
    assert world.rep_b_id not in [r["owner_id"] for r in sla["reps"]]
    assert sla["total"]["due"] + sla["total"]["pending"] == 0  # B's task is not counted
    credit = api.get("/api/v1/analytics/attribution?model=linear&by=source",
                     headers=world.rep_a).json()
    assert credit["customers"] == 0
    assert credit["pipeline"] == {}
    people = api.get("/api/v1/users", headers=world.rep_a).json()
    assert [u["email"] for u in people] == ["a@sales.example"]
    assert api.get("/api/v1/users/me", headers=world.rep_a).json()["role"] == "sales_rep"


def test_a_manager_sees_their_team_and_nobody_else(api: TestClient, app: App,
                                                   world: World) -> None:
    east = create_user(uow=app.uow(), ctx=app.ctx, email="m@sales.example", name="Mia",
                       role="sales_manager", team="east")
    west = create_user(uow=app.uow(), ctx=app.ctx, email="w@sales.example", name="Wes",
                       role="sales_manager", team="west")
    east_h, west_h = _token(app, east.id, "write"), _token(app, west.id, "write")
    assert api.get(f"/api/v1/contacts/{world.contact_b}", headers=east_h).status_code == 200
    assert api.get(f"/api/v1/contacts/{world.contact_b}", headers=west_h).status_code == 403
    assert api.get(f"/api/v1/contacts/{world.contact_a}", headers=west_h).status_code == 200
    assert api.get(f"/api/v1/queue?owner_id={world.rep_b_id}",
                   headers=east_h).status_code == 200
    assert api.get("/api/v1/cracks", headers=west_h).json()["unassigned"] == []
