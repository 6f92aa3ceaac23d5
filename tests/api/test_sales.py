"""The sales journey over HTTP: users and tokens, hand-off, the rep's queue, a deal won and
one lost, the plan, personal email into the file outbox."""

from __future__ import annotations

import math
from email import message_from_bytes
from email.policy import default as default_policy

from fastapi.testclient import TestClient

from leadflow.bootstrap import App
from tests.api.conftest import Keys, bearer

FIT = {"seniority": "director", "country": "FR",
       "account": {"name": "Acme", "domain": "acme.example", "industry": "software",
                   "employees": 300, "country": "FR"}}


def login(api: TestClient, email: str, password: str) -> dict[str, str]:
    answer = api.post("/api/v1/tokens", json={"email": email, "password": password})
    assert answer.status_code == 201, answer.text
    return bearer(answer.json()["token"])


def test_users_log_in_with_a_password_and_act_as_themselves(api: TestClient,
                                                            keys: Keys) -> None:
    admin = bearer(keys.admin)
    made = api.post("/api/v1/users", headers=admin, json={
        "email": "Rob@Sales.example", "name": "Rob", "role": "sales_rep",
        "password": "correct horse battery", "territories": ["fr : Bretagne"]})
    assert made.status_code == 201, made.text
    assert (made.json()["email"], made.json()["territories"]) == (
        "rob@sales.example", ["FR:bretagne"])
    bad = api.post("/api/v1/tokens", json={"email": "rob@sales.example", "password": "nope"})
    assert bad.status_code == 401
    assert bad.json()["error"]["message"] == "wrong email or password"
    unknown = api.post("/api/v1/tokens", json={"email": "who@x.example", "password": "nope"})
    assert unknown.json() == bad.json()  # the answer does not tell which users exist
    rob = login(api, "rob@sales.example", "correct horse battery")
    assert api.get("/api/v1/users/me", headers=rob).json()["role"] == "sales_rep"
    assert api.post("/api/v1/users", headers=rob, json={
        "email": "x@x.example", "name": "x", "role": "admin"}).status_code == 403
    wrong = api.post("/api/v1/users", headers=admin, json={
        "email": "y@x.example", "name": "y", "role": "boss"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "role"


def test_a_prospect_is_handed_off_worked_and_won(api: TestClient, app: App,
                                                 keys: Keys) -> None:
    admin = bearer(keys.admin)
    api.post("/api/v1/users", headers=admin, json={
        "email": "rob@sales.example", "name": "Rob", "role": "sales_rep",
        "password": "correct horse battery"})
    rob = login(api, "rob@sales.example", "correct horse battery")
    made = api.post("/api/v1/contacts", headers=admin, json={"email": "ann@acme.example", **FIT})
    cid = made.json()["id"]
    demo = api.post("/api/v1/events", headers=admin, json={"type": "demo_request",
                                                           "contact_id": cid})
    assert demo.status_code == 201
    queue = api.get("/api/v1/queue", headers=rob).json()
    assert [p["id"] for p in queue["prospects"]] == [cid]
    assert queue["prospects"][0]["temperature"] == "hot"
    [task] = queue["tasks"]
    assert api.post(f"/api/v1/contacts/{cid}/accept", headers=rob).status_code == 204
    call = api.post(f"/api/v1/contacts/{cid}/activities", headers=rob,
                    json={"kind": "call", "outcome": "reached", "body": "wants 50 seats"})
    assert call.status_code == 201
    done = api.post(f"/api/v1/tasks/{task['id']}/complete", headers=rob,
                    json={"outcome": "called"}).json()
    assert done["next_task"]["kind"] == "follow_up"
    deal = api.post(f"/api/v1/contacts/{cid}/opportunities", headers=rob, json={
        "name": "Acme, 50 seats", "amount": 24000, "currency": "USD",
        "expected_close": "2026-04-30"})
    assert deal.status_code == 201, deal.text
    assert (deal.json()["deal_stage"], deal.json()["probability"]) == ("discovery", 0.1)
    shown = api.get(f"/api/v1/contacts/{cid}", headers=rob).json()
    assert shown["stage"] == "opportunity"
    assert "sal" in shown["milestones"]
    moved = api.patch(f"/api/v1/opportunities/{deal.json()['id']}", headers=rob,
                      json={"deal_stage": "negotiation"}).json()
    assert moved["probability"] == 0.7

    plan = api.get("/api/v1/plan?target=100000&capacity=5&budget=500", headers=rob).json()
    [item] = plan["items"]
    assert (item["probability_source"], item["value_source"]) == ("opportunity", "opportunity")
    assert math.isclose(item["value"], 24000 * 0.92)
    assert math.isclose(plan["expected_volume"], sum(i["expected"] for i in plan["items"]))
    assert math.isclose(plan["shortfall"], 100000 - plan["expected_volume"])

    won = api.post(f"/api/v1/opportunities/{deal.json()['id']}/win", headers=rob)
    assert won.json()["status"] == "won"
    assert api.get(f"/api/v1/contacts/{cid}", headers=rob).json()["stage"] == "customer"


def test_a_lost_deal_records_its_reason_and_goes_back_to_nurture(api: TestClient,
                                                                 keys: Keys) -> None:
    admin = bearer(keys.admin)
    made = api.post("/api/v1/contacts", headers=admin, json={"email": "bo@acme.example", **FIT})
    cid = made.json()["id"]
    deal = api.post(f"/api/v1/contacts/{cid}/opportunities", headers=admin, json={
        "name": "Acme", "amount": 5000, "currency": "EUR"}).json()
    refused = api.post(f"/api/v1/opportunities/{deal['id']}/lose", headers=admin,
                       json={"reason": "bad vibes"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "lost_reason"
    lost = api.post(f"/api/v1/opportunities/{deal['id']}/lose", headers=admin,
                    json={"reason": "competitor"}).json()
    assert (lost["status"], lost["lost_reason"]) == ("lost", "competitor")
    shown = api.get(f"/api/v1/contacts/{cid}", headers=admin).json()
    assert (shown["stage"], shown["email"]) == ("lead", "bo@acme.example")


def test_a_personal_email_lands_in_the_file_outbox(api: TestClient, app: App,
                                                   keys: Keys) -> None:
    admin = bearer(keys.admin)
    made = api.post("/api/v1/contacts", headers=admin, json={"email": "ann@acme.example"})
    sent = api.post(f"/api/v1/contacts/{made.json()['id']}/emails", headers=admin,
                    json={"subject": "Hello", "text": "Dear Ann, <b>hi</b>"})
    assert sent.status_code == 201, sent.text
    [file] = list((app.settings.data_dir / "mail-outbox").glob("*.eml"))
    message = message_from_bytes(file.read_bytes(), policy=default_policy)
    assert (message["To"], message["Subject"]) == ("ann@acme.example", "Hello")
    assert message["Reply-To"] == "admin@leadflow.example"
