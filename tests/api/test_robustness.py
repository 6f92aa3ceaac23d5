"""What a new user ran into: ids that stay, merged contacts that say where they went, limits
and numbers out of range answered with a 4xx, docs that work offline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from tests.api.conftest import Keys, bearer, contact_by_identity, counts, rows
from tests.api.test_tracking import message, post, track


def test_a_merged_contact_says_where_it_went(api: TestClient, app: App, keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 1, userId="u-ann",
                                      traits={"email": "ann@acme.example"}), keys.public)
    ann = contact_by_identity(app, "user_id", "u-ann")
    post(api, "/v1/page", track(2, anonymousId="device-1"), keys.public)
    visitor = contact_by_identity(app, "anonymous_id", "device-1")
    assert visitor is not None
    assert visitor != ann
    post(api, "/v1/identify", message("identify", 3, userId="u-ann", anonymousId="device-1"),
         keys.public)
    gone = api.get(f"/api/v1/contacts/{visitor}", headers=bearer(keys.read))
    assert gone.status_code == 404
    assert gone.json()["error"] == {
        "code": "merged", "field": "contact_id", "merged_into": ann,
        "message": f"contact {visitor} was merged into contact {ann}"}
    [merge] = [r for r in rows(app, t.outbox) if r.topic == "contact.merged"]
    assert (merge.payload["merged_id"], merge.payload["contact"]["id"]) == (visitor, ann)
    # A new visitor never gets the merged contact's id again (SQLite reuses a freed
    # highest rowid unless told not to).
    post(api, "/v1/page", track(4, anonymousId="device-2"), keys.public)
    newcomer = contact_by_identity(app, "anonymous_id", "device-2")
    assert newcomer is not None
    assert newcomer > visitor


def test_numbers_out_of_range_are_a_422(api: TestClient, app: App, keys: Keys) -> None:
    read = bearer(keys.read)
    huge = 99999999999999999999
    for path in (f"/api/v1/contacts/{huge}", f"/api/v1/contacts?owner_id={huge}",
                 f"/api/v1/contacts?offset={huge}"):
        reply = api.get(path, headers=read)
        assert reply.status_code == 422, path
        assert reply.json()["error"]["code"] == "invalid_input"
    made = api.post("/api/v1/contacts", headers=bearer(keys.write),
                    json={"email": "x@acme.example", "lead_reason": "a call",
                          "referred_by_id": huge})
    assert made.status_code == 422


def test_a_rest_body_over_the_limit_is_a_413(api: TestClient, app: App, keys: Keys) -> None:
    before = counts(app)
    reply = api.post("/api/v1/contacts", headers=bearer(keys.write),
                     json={"email": "big@acme.example", "attributes": {"x": "y" * 2_000_000}})
    assert reply.status_code == 413
    assert reply.json()["error"]["field"] == "body"
    assert counts(app) == before


def test_errors_name_the_real_problem(api: TestClient, app: App, keys: Keys) -> None:
    bad_json = api.post("/api/v1/contacts", headers={**bearer(keys.write),
                                                     "Content-Type": "application/json"},
                        content=b'{"email": "a@b.io",')
    assert bad_json.status_code == 422
    assert (bad_json.json()["error"]["field"], "not valid JSON" in
            bad_json.json()["error"]["message"]) == ("body", True)
    no_scheme = api.get("/api/v1/contacts", headers={"Authorization": keys.read})
    assert no_scheme.status_code == 401
    assert "Bearer" in no_scheme.json()["error"]["message"]
    nul = api.post("/api/v1/contacts", headers=bearer(keys.write),
                   json={"email": "nul\u0000@acme.example"})
    assert (nul.status_code, nul.json()["error"]["field"]) == (422, "email")


def test_docs_work_offline_and_know_the_key_scheme(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/static/swagger/swagger-ui-bundle.js" in page.text
    assert api.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    schema = api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_identify_with_a_company_links_the_account(api: TestClient, app: App,
                                                    keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 5, userId="u-kim", traits={
        "email": "kim@acme.example", "seniority": "director", "country": "FR",
        "company": {"id": "org-7", "name": "Acme", "website": "https://acme.example",
                    "industry": "software", "employee_count": 300, "plan": "pro"}}),
         keys.public)
    [account] = rows(app, t.accounts)
    assert (account.name, account.domain, account.industry, account.employees) == (
        "Acme", "acme.example", "software", 300)
    assert account.attributes == {"group_id": "org-7", "plan": "pro"}
    [contact] = rows(app, t.contacts)
    assert contact.account_id == account.id
    assert contact.fit_grade == "A"
    assert "company" not in contact.attributes
