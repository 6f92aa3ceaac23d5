"""The content library over HTTP, next best content from what a contact consumed, and a
contact's export: on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.domain.mail_policy import MARKETING, SENT, MailMessage
from leadflow.services.api_keys import create_api_key
from leadflow.services.users import create_user
from tests.api.conftest import Keys, bearer, count, rows
from tests.conftest import T0

URL = "/api/v1/content"
HEADER = "key,title,url,maturity,format,premium,topics,language,summary\n"
LIBRARY = (HEADER
           + "crm-guide,The CRM guide,https://acme.example/guides/crm,discovery,article,no,"
             "crm;sales,en,Start here\n"
           + "ai-trends,AI trends,/blog/ai-trends,discovery,article,no,ai,en,\n"
           + "crm-compare,Comparing CRMs,/guides/compare,evaluation,case_study,no,crm,en,\n"
           + "roi-paper,The ROI white paper,/papers/roi,evaluation,white_paper,yes,"
             "finance|roi,en,\n"
           + "pricing,Pricing,/pricing,decision,pricing,no,,en,\n"
           + "guide-crm-fr,Le guide du CRM,/fr/guides/crm,discovery,article,no,crm,fr,\n")
FIT = {"seniority": "director", "country": "FR",
       "account": {"name": "Acme", "domain": "acme.example", "industry": "software",
                   "employees": 300, "country": "FR"}}


def load_library(api: TestClient, headers: dict[str, str]) -> None:
    answer = api.post(f"{URL}/import", headers={**headers, "Content-Type": "text/csv"},
                      content=LIBRARY.encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 6


def lead(api: TestClient, headers: dict[str, str], email: str, **fields: Any) -> int:
    made = api.post("/api/v1/contacts", headers=headers, json={
        "email": email, "lead_reason": "met at the fair", **fields})
    assert made.status_code == 201, made.text
    assert made.json()["stage"] == "lead"
    return int(made.json()["id"])


def next_keys(api: TestClient, headers: dict[str, str], cid: int, **params: Any) -> list[str]:
    answer = api.get(f"/api/v1/contacts/{cid}/next-content", headers=headers,
                     params={"limit": 20, **params})
    assert answer.status_code == 200, answer.text
    return [r["item"]["key"] for r in answer.json()["recommendations"]]


def track(api: TestClient, headers: dict[str, str], cid: int, kind: str, url: str,
          offset: float, **extra: Any) -> None:
    answer = api.post("/api/v1/events", headers=headers, json={
        "type": kind, "contact_id": cid, "url": url, "timestamp": T0 - offset, **extra})
    assert answer.status_code == 201, answer.text


def test_create_read_list_update_and_archive(api: TestClient, keys: Keys) -> None:
    admin = bearer(keys.admin)
    made = api.post(URL, headers=admin, json={
        "key": "CRM-Guide", "title": " The CRM guide ", "url": "https://acme.example/guides/crm/",
        "maturity": "Discovery", "format": "white paper", "premium": True,
        "topics": ["CRM", "sales", "crm"], "summary": "Start here"})
    assert made.status_code == 201, made.text
    item = made.json()
    assert {k: item[k] for k in ("key", "title", "maturity", "format", "topics", "path",
                                 "language", "archived")} == {
        "key": "crm-guide", "title": "The CRM guide", "maturity": "discovery",
        "format": "white_paper", "topics": ["crm", "sales"], "path": "/guides/crm",
        "language": "en", "archived": False}
    again = api.post(URL, headers=admin, json={
        "key": "crm-guide", "title": "x", "url": "/x", "maturity": "discovery",
        "format": "article"})
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "key"
    for body in ({"key": "roi", "title": "ROI", "url": "/roi", "maturity": "evaluation",
                  "format": "article", "topics": ["finance"], "language": "fr"},
                 {"key": "demo", "title": "Demo", "url": "/demo", "maturity": "decision",
                  "format": "demo"}):
        assert api.post(URL, headers=admin, json=body).status_code == 201
    reader = bearer(keys.read)
    assert api.get(f"{URL}/crm-guide", headers=reader).json()["summary"] == "Start here"

    def listed(**params: Any) -> list[str]:
        answer = api.get(URL, headers=reader, params=params)
        assert answer.status_code == 200, answer.text
        return [i["key"] for i in answer.json()["items"]]
    assert listed() == ["crm-guide", "demo", "roi"]
    assert listed(maturity="evaluation") == ["roi"]
    assert listed(format="white_paper") == ["crm-guide"]
    assert listed(language="fr") == ["roi"]
    assert listed(topic="CRM") == ["crm-guide"]
    page = api.get(URL, headers=reader, params={"limit": 1, "offset": 1}).json()
    assert ([i["key"] for i in page["items"]], page["total"]) == (["demo"], 3)

    changed = api.patch(f"{URL}/crm-guide", headers=admin, json={
        "title": "The CRM guide, 2nd edition", "topics": ["crm"], "premium": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["title"], changed.json()["topics"], changed.json()["premium"],
            changed.json()["url"]) == ("The CRM guide, 2nd edition", ["crm"], False,
                                       "https://acme.example/guides/crm/")
    archived = api.delete(f"{URL}/crm-guide", headers=admin)
    assert (archived.status_code, archived.content) == (204, b"")
    assert listed() == ["demo", "roi"]
    assert listed(archived="true") == ["crm-guide", "demo", "roi"]
    assert api.get(f"{URL}/crm-guide", headers=reader).json()["archived"] is True
    back = api.patch(f"{URL}/crm-guide", headers=admin, json={"archived": False})
    assert back.json()["archived"] is False
    missing = api.get(f"{URL}/nope", headers=reader)
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "key")
    assert api.delete(f"{URL}/nope", headers=admin).status_code == 404


def test_bad_input_gets_a_4xx_naming_the_field_and_writes_nothing(api: TestClient, app: App,
                                                                   keys: Keys) -> None:
    admin = bearer(keys.admin)
    good = {"key": "crm-guide", "title": "CRM", "url": "/guides/crm", "maturity": "discovery",
            "format": "article"}
    cases = [({"maturity": "soon"}, "maturity"), ({"format": "podcast"}, "format"),
             ({"url": "guides/crm"}, "url"), ({"key": "CRM guide!"}, "key"),
             ({"title": "   "}, "title"), ({"language": "english"}, "language"),
             ({"title": "x" * 301}, "title"), ({"topics": ["t"] * 21}, "topics"),
             ({"colour": "red"}, "colour"), ({"premium": "perhaps"}, "premium")]
    for change, field in cases:
        answer = api.post(URL, headers=admin, json={**good, **change})
        assert answer.status_code == 422, (change, answer.text)
        assert answer.json()["error"]["field"] == field, (change, answer.json())
    missing = api.post(URL, headers=admin, json={k: v for k, v in good.items() if k != "title"})
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "title")
    assert count(app, t.content_items) == 0
    assert api.post(URL, headers=admin, json=good).status_code == 201
    for change, field in [({"title": None}, "title"), ({"maturity": "later"}, "maturity"),
                          ({"key": "other"}, "key")]:
        answer = api.patch(f"{URL}/crm-guide", headers=admin, json=change)
        assert answer.status_code == 422, (change, answer.text)
        assert answer.json()["error"]["field"] == field
    assert api.get(f"{URL}/crm-guide", headers=admin).json()["title"] == "CRM"
    wrong_filter = api.get(URL, headers=admin, params={"maturity": "soon"})
    assert (wrong_filter.status_code, wrong_filter.json()["error"]["field"]) == (422, "maturity")


def test_csv_import_reports_bad_lines_imports_good_rows_and_updates_on_reimport(
        api: TestClient, app: App, keys: Keys) -> None:
    admin = bearer(keys.admin)
    body = (HEADER
            + "crm-guide,The CRM guide,/guides/crm,discovery,article,no,crm;sales,en,\n"
            + "roi,ROI,/roi,evaluation,white_paper,maybe,roi,en,\n"
            + 'compare,"Comparing CRMs, honestly",/compare,evaluation,case_study,yes,crm,en,\n'
            + "pricing,Pricing,/pricing,final,pricing,no,,en,\n"
            + "crm-guide,Twice,/twice,discovery,article,no,,en,\n"
            + "short,row\n")
    answer = api.post(f"{URL}/import", headers={**admin, "Content-Type": "text/csv"},
                      content=body.encode())
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["rows"], report["created"], report["updated"]) == (6, 2, 0)
    assert [(b["line"], b["field"]) for b in report["bad_rows"]] == [
        (3, "premium"), (5, "maturity"), (6, "key"), (7, None)]
    assert "'final'" in report["bad_rows"][1]["reason"]
    assert "also on line 2" in report["bad_rows"][2]["reason"]
    assert [r.key for r in rows(app, t.content_items, order=t.content_items.c.key)] == [
        "compare", "crm-guide"]
    again = api.post(f"{URL}/import", headers=admin, content=(
        HEADER + "crm-guide,The CRM guide,/guides/crm,discovery,article,no,crm;sales,en,\n"
        + "compare,Comparing CRMs,/compare,evaluation,case_study,yes,crm|ai,en,\n").encode())
    assert {k: again.json()[k] for k in ("created", "updated", "unchanged")} == {
        "created": 0, "updated": 1, "unchanged": 1}
    assert api.get(f"{URL}/compare", headers=admin).json()["topics"] == ["crm", "ai"]
    refused = api.post(f"{URL}/import", headers=admin,
                       content=b"key,title,url\nx,X,/x\n")
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "maturity"
    assert "lacks the column(s) maturity, format" in refused.json()["error"]["message"]
    binary = api.post(f"{URL}/import", headers=admin, content=b"\xff\xfe\x00k\x00e")
    assert (binary.status_code, binary.json()["error"]["field"]) == (422, "body")
    assert count(app, t.content_items) == 2


def test_what_a_lead_consumes_leaves_its_next_content_and_steers_it(
        api: TestClient, app: App, keys: Keys) -> None:
    admin = bearer(keys.admin)
    load_library(api, admin)
    cid = lead(api, admin, "ann@acme.example")
    # Discovery and evaluation only; discovery first, nothing having been read yet.
    assert next_keys(api, admin, cid) == ["ai-trends", "crm-guide", "roi-paper",
                                          "crm-compare"]
    # A page view of the item's URL with a query string and a trailing slash consumes it.
    track(api, admin, cid, "page_view", "https://acme.example/guides/crm/?utm_source=news",
          3600)
    answer = api.get(f"/api/v1/contacts/{cid}/next-content", headers=admin).json()
    assert answer["consumed"] == ["crm-guide"]
    assert (answer["stage"], answer["stage_role"], answer["maturities"]) == (
        "lead", "interest", ["discovery", "evaluation"])
    assert [r["item"]["key"] for r in answer["recommendations"]] == [
        "crm-compare", "roi-paper", "ai-trends"]  # evaluation is the next step
    first = answer["recommendations"][0]
    assert "evaluation is the next step after what it consumed" in first["reasons"]
    assert "about crm, which it read about before" in first["reasons"]
    assert "crm-guide" not in [r["item"]["key"] for r in answer["recommendations"]]
    # An item already emailed is not offered again.
    roi_id = api.get(f"{URL}/roi-paper", headers=admin).json()["id"]
    with app.uow() as uow:
        uow.mail.add(MailMessage(contact_id=cid, category=MARKETING, priority=30,
                                 dedupe_key=f"test:{cid}:roi", template="content",
                                 not_before=T0, created_at=T0, status=SENT, item_id=roi_id))
        uow.commit()
    assert next_keys(api, admin, cid) == ["crm-compare", "ai-trends"]
    # A download at a URL that is not the item's path (a prefix) consumes nothing.
    track(api, admin, cid, "content_download", "/guides/crm-extra", 60)
    assert next_keys(api, admin, cid) == ["crm-compare", "ai-trends"]
    assert next_keys(api, admin, cid, limit=1) == ["crm-compare"]
    assert api.get(f"/api/v1/contacts/{cid}/next-content", headers=admin,
                   params={"limit": 0}).status_code == 422


def test_stage_and_language_decide_what_may_be_offered(api: TestClient, keys: Keys) -> None:
    admin = bearer(keys.admin)
    load_library(api, admin)
    french = lead(api, admin, "francoise@acme.example", language="fr-FR")
    assert next_keys(api, admin, french) == ["guide-crm-fr"]
    prospect = lead(api, admin, "pat@acme.example")
    moved = api.post(f"/api/v1/contacts/{prospect}/stage", headers=admin,
                     json={"stage": "prospect", "reason": "asked for a demo"})
    assert moved.status_code == 200, moved.text
    keys_now = next_keys(api, admin, prospect)
    assert set(keys_now) == {"crm-compare", "roi-paper", "pricing"}  # never discovery
    api.post(f"/api/v1/contacts/{prospect}/stage", headers=admin,
             json={"stage": "customer", "reason": "bought"})
    customer = api.get(f"/api/v1/contacts/{prospect}/next-content", headers=admin).json()
    assert (customer["stage_role"], customer["maturities"], customer["recommendations"]) == (
        "won", [], [])
    assert "newsletter" in customer["note"]
    gone = api.get("/api/v1/contacts/999999/next-content", headers=admin)
    assert gone.status_code == 404


def _rep(app: App, email: str) -> tuple[int, dict[str, str]]:
    user = create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email.split("@")[0],
                       role="sales_rep")
    return user.id, bearer(create_api_key(uow=app.uow(), ctx=app.ctx, name="t", kind="secret",
                                          scopes=["write"], user=user.id).token)


def test_a_rep_reads_the_library_and_only_their_own_contacts(api: TestClient, app: App,
                                                             keys: Keys) -> None:
    admin = bearer(keys.admin)
    load_library(api, admin)
    _, rob = _rep(app, "rob@sales.example")
    _, eve = _rep(app, "eve@sales.example")
    robs = lead(api, rob, "ann@acme.example")
    eves = lead(api, eve, "bea@other.example")
    assert api.get(URL, headers=rob).json()["total"] == 6
    assert api.get(f"{URL}/pricing", headers=rob).status_code == 200
    assert "roi-paper" in next_keys(api, rob, robs)
    assert api.get(f"/api/v1/contacts/{robs}/export", headers=rob).status_code == 200
    for path in (f"/api/v1/contacts/{eves}/next-content", f"/api/v1/contacts/{eves}/export"):
        refused = api.get(path, headers=rob)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "forbidden"
    for method, path, body in [
            ("POST", URL, {"key": "x", "title": "X", "url": "/x", "maturity": "discovery",
                           "format": "article"}),
            ("PATCH", f"{URL}/pricing", {"title": "Cheap"}),
            ("DELETE", f"{URL}/pricing", None)]:
        answer = api.request(method, path, headers=rob, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "admin or marketer" in answer.json()["error"]["message"]
    csv_by_rep = api.post(f"{URL}/import", headers=rob, content=LIBRARY.encode())
    assert csv_by_rep.status_code == 403
    assert api.get(f"{URL}/pricing", headers=rob).json()["title"] == "Pricing"
    assert count(app, t.content_items) == 6


def test_the_export_holds_everything_about_the_person_and_nobody_else(
        api: TestClient, app: App, keys: Keys) -> None:
    admin = bearer(keys.admin)
    load_library(api, admin)
    rob_id, rob = _rep(app, "rob@sales.example")
    ann = lead(api, admin, "ann.secret@acme.example", first_name="Annabel", phone="+33 1 98 76",
               consent={"email": True}, attributes={"hobby": "Annabel's rowing"}, **FIT)
    other = lead(api, admin, "zed@other.example", first_name="Zedekiah")
    track(api, admin, ann, "page_view", "/guides/crm/?utm_campaign=spring", 7200,
          properties={"note": "Annabel read this"})
    track(api, admin, other, "page_view", "/pricing?who=zed", 7000)
    api.post(f"/api/v1/contacts/{ann}/assign", headers=admin,
             json={"owner": "rob@sales.example", "reason": "Rob covers France"})
    api.post(f"/api/v1/contacts/{ann}/stage", headers=admin,
             json={"stage": "prospect", "reason": "asked for a demo"})
    note = api.post(f"/api/v1/contacts/{ann}/activities", headers=rob,
                    json={"kind": "note", "body": "Annabel prefers mornings"})
    assert note.status_code == 201, note.text
    with app.uow() as uow:
        uow.mail.add(MailMessage(contact_id=ann, category=MARKETING, priority=30,
                                 dedupe_key="test:ann", template="content", not_before=T0,
                                 created_at=T0, status=SENT, sent_at=T0,
                                 subject="Annabel, your CRM guide"))
        uow.commit()
    answer = api.get(f"/api/v1/contacts/{ann}/export", headers=rob)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    dump = json.dumps(data)
    assert (data["format"], data["contact"]["id"], data["contact"]["email"],
            data["contact"]["first_name"], data["contact"]["erased"]) == (
        "leadflow.contact-export", ann, "ann.secret@acme.example", "Annabel", False)
    assert data["consent"]["email"]["granted"] is True
    assert data["account"]["domain"] == "acme.example"
    assert data["owner"]["id"] == rob_id
    assert data["scores"]["engagement"]["breakdown"]
    assert data["scores"]["fit"]["grade"] in ("A", "B", "C", "D")
    assert [c["to_stage"] for c in data["stage_history"]] == ["suspect", "lead", "prospect"]
    assert [t_["kind"] for t_ in data["tasks"]] == ["follow_up"]
    assert [a["body"] for a in data["activities"]] == ["Annabel prefers mornings"]
    assert [(e["subject"], e["status"]) for e in data["emails"]] == [
        ("Annabel, your CRM guide", "sent")]
    assert [c["key"] for c in data["content_consumed"]] == ["crm-guide"]
    [view] = [e for e in data["timeline"] if e["kind"] == "event"]
    assert view["url"] == "/guides/crm/"
    assert view["properties"]["note"] == "Annabel read this"
    assert {e["kind"] for e in data["timeline"]} >= {"event", "stage", "change", "activity"}
    for foreign in ("zed@other.example", "Zedekiah", "who=zed", "/pricing"):
        assert foreign not in dump, foreign
    assert all(c["contact_id"] == ann for c in data["stage_history"] + data["activities"]
               + data["tasks"])

    erased = api.post(f"/api/v1/contacts/{ann}/erase", headers=admin,
                      json={"reason": "asked to be forgotten"})
    assert erased.status_code == 204
    left = api.get(f"/api/v1/contacts/{ann}/export", headers=admin).json()
    assert left["contact"]["erased"] is True
    assert (left["contact"]["email"], left["identities"], left["consent"]) == (None, [], {})
    assert [e["properties"] for e in left["timeline"] if e["kind"] == "event"] == [{}]
    dump = json.dumps(left)
    for secret in ("ann.secret", "Annabel", "98 76", "rowing", "spring", "mornings"):
        assert secret not in dump, secret
