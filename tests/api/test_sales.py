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


def test_erasure_deletes_the_emails_kept_in_the_file_outbox(api: TestClient, app: App,
                                                           keys: Keys) -> None:
    admin = bearer(keys.admin)
    cid = api.post("/api/v1/contacts", headers=admin, json={"email": "ann@acme.example"}
                   ).json()["id"]
    api.post(f"/api/v1/contacts/{cid}/emails", headers=admin,
             json={"subject": "Hello", "text": "Dear Ann"})
    outbox = app.settings.data_dir / "mail-outbox"
    assert len(list(outbox.glob("*.eml"))) == 1
    erased = api.post(f"/api/v1/contacts/{cid}/erase", headers=admin,
                      json={"reason": "asked to be forgotten"})
    assert erased.status_code == 204
    assert list(outbox.glob("*.eml")) == []


def test_a_rep_cannot_take_over_another_reps_account_through_a_contact(
        api: TestClient, app: App, keys: Keys) -> None:
    from leadflow.services.api_keys import create_api_key
    from leadflow.services.users import create_user

    def token(email: str) -> dict[str, str]:
        user = create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email,
                           role="sales_rep")
        return bearer(create_api_key(uow=app.uow(), ctx=app.ctx, name="k", kind="secret",
                                     scopes=["write"], user=user.id).token)
    rep_a, rep_b = token("a@sales.example"), token("b@sales.example")
    theirs = api.post("/api/v1/contacts", headers=rep_b, json={
        "email": "bea@bigco.example", "lead_reason": "fair",
        "account": {"name": "BigCo", "domain": "bigco.example", "industry": "software"}})
    assert theirs.status_code == 201
    account_id = theirs.json()["account"]["id"]
    hijack = api.post("/api/v1/contacts", headers=rep_a, json={
        "email": "al@bigco.example", "lead_reason": "fair",
        "account": {"name": "Hijacked", "domain": "bigco.example", "industry": "retail"}})
    assert hijack.status_code == 403
    assert api.get(f"/api/v1/accounts/{account_id}", headers=rep_b).json()["name"] == "BigCo"
    referral = api.post("/api/v1/contacts", headers=rep_a, json={
        "email": "cy@other.example", "lead_reason": "tip",
        "referred_by_id": theirs.json()["id"]})
    assert referral.status_code == 403


def test_bad_times_are_refused_not_stored(api: TestClient, keys: Keys) -> None:
    admin = bearer(keys.admin)
    cid = api.post("/api/v1/contacts", headers=admin, json={"email": "ann@acme.example"}
                   ).json()["id"]
    for body in ('{"kind": "call", "due_at": -1e18}', '{"kind": "call", "due_at": NaN}',
                 '{"kind": "call", "due_at": 1e300}'):
        answer = api.post(f"/api/v1/contacts/{cid}/tasks", headers={
            **admin, "Content-Type": "application/json"}, content=body)
        assert answer.status_code == 422, (body, answer.text)
    note = api.post(f"/api/v1/contacts/{cid}/activities", headers={
        **admin, "Content-Type": "application/json"}, content='{"kind": "note", "at": NaN}')
    assert note.status_code == 422


def test_password_guessing_is_slowed_down(api: TestClient, keys: Keys) -> None:
    answers = [api.post("/api/v1/tokens", json={"email": "ada@x.example",
                                                "password": f"guess {i}"}).status_code
               for i in range(7)]
    assert answers[:5] == [401] * 5
    assert answers[5:] == [429, 429]


def test_inbound_mail_with_bad_headers_is_a_clear_error(api: TestClient, keys: Keys) -> None:
    admin = {**bearer(keys.admin), "Content-Type": "message/rfc822"}
    api.post("/api/v1/contacts", headers=bearer(keys.admin), json={"email": "ann@acme.example"})
    long_id = b"From: ann@acme.example\nMessage-ID: <" + b"x" * 400 + b">\n\nhi\n"
    answer = api.post("/api/v1/inbound/email", headers=admin, content=long_id)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "Message-ID"
    charset = (b"From: ann@acme.example\nMessage-ID: <c1@x>\n"
               b"Content-Type: text/plain; charset=klingon\n\nqapla\n")
    answer = api.post("/api/v1/inbound/email", headers=admin, content=charset)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "body"
