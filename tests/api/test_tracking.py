"""The Segment-compatible tracking API, driven over HTTP, checked in the database."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from leadflow.adapters.config_file import default_config_text, parse_config_text
from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.entrypoints.api.app import create_app
from leadflow.services.api_keys import create_api_key
from tests.api.conftest import (
    Keys,
    basic,
    bearer,
    contact_by_identity,
    count,
    counts,
    events_of,
    iso,
    rows,
)
from tests.conftest import T0, FakeClock


def message(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    """A Segment message ``n`` minutes before T0."""
    out: dict[str, Any] = {"type": kind, "messageId": f"m-{n}", "timestamp": iso(T0 - 60 * n)}
    out.update(fields)
    return out


def track(n: int, event: str = "Form Submitted", **fields: Any) -> dict[str, Any]:
    return message("track", n, event=event, **fields)


def post(api: TestClient, path: str, body: Any, key: str | None = None,
         **headers: str) -> Any:
    sent = {**(basic(key) if key else {}), **headers}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    sent.setdefault("Content-Type", "application/json")
    return api.post(path, content=content, headers=sent)


# --- deduplication, identity -------------------------------------------------------------


def test_a_duplicate_message_id_counts_once(api: TestClient, app: App, keys: Keys) -> None:
    batch = {"batch": [track(3, userId="u1"), track(2, "Pricing Viewed", userId="u1"),
                       track(3, userId="u1")]}
    reply = post(api, "/v1/batch", batch, keys.public)
    assert reply.status_code == 200
    assert reply.json() == {"success": True, "stored": 2, "duplicates": 1, "rejected": []}
    contact = contact_by_identity(app, "user_id", "u1")
    assert contact is not None
    assert [(e.type, e.message_id) for e in events_of(app, contact)] == [
        ("form_submitted", "m-3"), ("pricing_viewed", "m-2")]
    before = counts(app)
    again = post(api, "/v1/batch", batch, keys.public)
    assert again.json()["stored"] == 0
    assert again.json()["duplicates"] == 3
    assert counts(app) == before


def _score(api: TestClient, keys: Keys, contact_id: int) -> dict[str, Any]:
    view = api.get(f"/api/v1/contacts/{contact_id}", headers=bearer(keys.read)).json()
    return {"stage": view["stage"], "score": view["engagement"]["score"],
            "breakdown": view["engagement"]["breakdown"]}


def test_identify_merges_anonymous_history_and_rescores(api: TestClient, app: App,
                                                        keys: Keys) -> None:
    def history(who: dict[str, str]) -> list[dict[str, Any]]:
        return [message("page", 50, properties={"url": "https://acme.example/pricing"}, **who),
                track(40, "Content Download", **who), track(30, **who)]

    # Ann browses anonymously, then identifies herself.
    post(api, "/v1/batch", {"batch": history({"anonymousId": "anon-ann"})}, keys.public)
    visitor = contact_by_identity(app, "anonymous_id", "anon-ann")
    assert visitor is not None
    assert _score(api, keys, visitor)["stage"] == "suspect"  # no contact details yet
    reply = post(api, "/v1/identify", message("identify", 10, anonymousId="anon-ann",
                                              userId="user-ann", messageId="id-ann",
                                              traits={"email": "ann@acme.example",
                                                      "firstName": "Ann"}), keys.public)
    assert reply.json()["stored"] == 1
    ann = contact_by_identity(app, "user_id", "user-ann")
    assert ann is not None
    assert contact_by_identity(app, "anonymous_id", "anon-ann") == ann
    assert [e.type for e in events_of(app, ann)] == [
        "page_view", "content_download", "form_submitted", "identify"]
    assert count(app, t.contacts) == 1

    # Bob is known from his first visit and does the same things at the same times.
    post(api, "/v1/identify", message("identify", 60, anonymousId="anon-bob",
                                      userId="user-bob", messageId="id-bob",
                                      traits={"email": "bob@acme.example"}), keys.public)
    post(api, "/v1/batch", {"batch": [
        {**m, "messageId": f"bob-{m['messageId']}"}
        for m in history({"anonymousId": "anon-bob", "userId": "user-bob"})]}, keys.public)
    bob = contact_by_identity(app, "user_id", "user-bob")
    assert bob is not None
    assert count(app, t.contacts) == 2

    merged, known = _score(api, keys, ann), _score(api, keys, bob)
    assert merged["stage"] == known["stage"] == "lead"
    assert merged["score"] == pytest.approx(known["score"])
    assert merged["breakdown"] == pytest.approx(known["breakdown"])
    assert merged["breakdown"]["pricing_page"] > 0
    [stored] = rows(app, t.contact_scores, t.contact_scores.c.contact_id == ann)
    [reference] = rows(app, t.contact_scores, t.contact_scores.c.contact_id == bob)
    assert stored.engagement_rank == pytest.approx(reference.engagement_rank)


def test_alias_merges_the_previous_id_into_the_user(api: TestClient, app: App,
                                                    keys: Keys) -> None:
    post(api, "/v1/batch", {"batch": [
        message("identify", 20, userId="user-1", traits={"email": "cy@acme.example"}),
        track(15, anonymousId="device-9"),
    ]}, keys.public)
    known, device = (contact_by_identity(app, "user_id", "user-1"),
                     contact_by_identity(app, "anonymous_id", "device-9"))
    assert known is not None
    assert device is not None
    assert known != device
    reply = post(api, "/v1/alias", message("alias", 5, previousId="device-9", userId="user-1"),
                 keys.public)
    assert reply.json()["stored"] == 1
    assert contact_by_identity(app, "anonymous_id", "device-9") == known
    assert count(app, t.contacts, t.contacts.c.id == device) == 0
    assert [e.type for e in events_of(app, known)] == ["identify", "form_submitted", "alias"]
    [row] = rows(app, t.contacts, t.contacts.c.id == known)
    assert row.stage == "lead"  # the device's form and the user's email, together


def test_alias_of_an_unseen_previous_id_links_it_to_the_user(api: TestClient, app: App,
                                                             keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 9, userId="user-2",
                                      traits={"email": "di@acme.example"}), keys.public)
    post(api, "/v1/alias", message("alias", 8, previousId="device-7", userId="user-2"),
         keys.public)
    post(api, "/v1/track", track(7, anonymousId="device-7"), keys.public)
    user = contact_by_identity(app, "user_id", "user-2")
    assert contact_by_identity(app, "anonymous_id", "device-7") == user
    assert count(app, t.contacts) == 1


def test_group_links_the_contact_to_an_account(api: TestClient, app: App, keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 9, userId="u-dee", traits={
        "email": "dee@acme.example", "seniority": "director", "country": "FR"}), keys.public)
    reply = post(api, "/v1/group", message("group", 8, userId="u-dee", groupId="org-42", traits={
        "name": "Acme", "website": "https://www.Acme.example/about", "employees": 300,
        "industry": "software", "plan": "enterprise"}), keys.public)
    assert reply.json()["stored"] == 1
    [account] = rows(app, t.accounts)
    assert (account.name, account.domain, account.employees) == ("Acme", "acme.example", 300)
    assert account.attributes == {"group_id": "org-42", "plan": "enterprise"}
    [contact] = rows(app, t.contacts)
    assert contact.account_id == account.id
    assert contact.fit_grade == "A"  # refitted with the account's size and industry
    # A second group call with the domain trait finds the same account.
    post(api, "/v1/g", message("group", 7, userId="u-dee", groupId="org-42",
                               traits={"domain": "acme.example", "employees": 310}),
         keys.public)
    [account] = rows(app, t.accounts)
    assert account.employees == 310


def test_an_erased_persons_message_is_dropped_and_its_neighbours_kept(
        api: TestClient, app: App, keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 9, userId="gone", anonymousId="gone-anon",
                                      traits={"email": "gone@acme.example"}), keys.public)
    gone = contact_by_identity(app, "user_id", "gone")
    erased = api.post(f"/api/v1/contacts/{gone}/erase", json={"reason": "asked to be forgotten"},
                      headers=bearer(keys.write))
    assert erased.status_code == 204
    reply = post(api, "/v1/batch", {"batch": [
        track(5, userId="stays"), track(4, userId="gone"), track(3, anonymousId="gone-anon"),
        track(2, userId="also-stays")]}, keys.public)
    assert reply.status_code == 200
    assert reply.json()["stored"] == 2
    assert count(app, t.events, t.events.c.contact_id == gone) == 1  # the identify only
    assert contact_by_identity(app, "user_id", "stays") is not None
    assert contact_by_identity(app, "user_id", "also-stays") is not None
    assert contact_by_identity(app, "user_id", "gone") is None


def test_a_message_the_services_refuse_is_listed(api: TestClient, app: App,
                                                 keys: Keys) -> None:
    post(api, "/v1/identify", message("identify", 9, userId="gone",
                                      traits={"email": "gone@acme.example"}), keys.public)
    gone = contact_by_identity(app, "user_id", "gone")
    api.post(f"/api/v1/contacts/{gone}/erase", json={"reason": "asked to be forgotten"},
             headers=bearer(keys.write))
    reply = post(api, "/v1/batch", {"batch": [
        track(5, userId="u1"), track(4, userId="gone"),
        message("identify", 3, userId="u2", traits={"email": "not an email"}),
        track(2, userId="u3")]}, keys.public)
    body = reply.json()
    assert body["stored"] == 2
    assert [(r["index"], r["messageId"]) for r in body["rejected"]] == [(1, "m-4"), (2, "m-3")]
    assert "forgotten" in body["rejected"][0]["error"]
    assert body["rejected"][1]["field"] == "email"


# --- refusals: nothing written -----------------------------------------------------------


def test_bad_json_is_a_400_naming_the_problem(api: TestClient, app: App, keys: Keys) -> None:
    before = counts(app)
    reply = post(api, "/v1/batch", b'{"batch": [{"type": "track",', keys.public)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["field"] == "body"
    assert "not valid JSON" in error["message"]
    not_object = post(api, "/v1/track", b"[1, 2]", keys.public)
    assert not_object.status_code == 400
    assert "JSON object" in not_object.json()["error"]["message"]
    no_list = post(api, "/v1/batch", {"batch": {"type": "track"}}, keys.public)
    assert no_list.status_code == 400
    assert no_list.json()["error"]["field"] == "batch"
    bad_gzip = post(api, "/v1/batch", b"not gzip at all", keys.public,
                    **{"Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    assert "gzip" in bad_gzip.json()["error"]["message"]
    assert counts(app) == before


def test_oversize_bodies_are_refused_whole(api: TestClient, app: App, keys: Keys) -> None:
    before = counts(app)
    filler = "x" * 1000
    batch = {"batch": [track(1, userId=f"u{i}", messageId=f"big-{i}",
                             properties={"filler": filler}) for i in range(520)]}
    assert len(orjson.dumps(batch)) > 500 * 1024
    reply = post(api, "/v1/batch", batch, keys.public)
    assert reply.status_code == 400
    assert "500 KB" in reply.json()["error"]["message"]
    single = track(1, userId="u1", properties={"filler": "x" * 33 * 1024})
    reply = post(api, "/v1/track", single, keys.public)
    assert reply.status_code == 400
    assert "32 KB" in reply.json()["error"]["message"]
    # Small once zipped, too large once unzipped: a zip bomb is refused the same way.
    zipped = gzip.compress(orjson.dumps(batch))
    assert len(zipped) < 100 * 1024
    reply = post(api, "/v1/batch", zipped, keys.public, **{"Content-Encoding": "gzip"})
    assert reply.status_code == 400
    assert "unzipped" in reply.json()["error"]["message"]
    assert counts(app) == before


def test_an_oversize_message_in_a_batch_is_dropped_alone(api: TestClient, app: App,
                                                         keys: Keys) -> None:
    reply = post(api, "/v1/batch", {"batch": [
        track(3, userId="u1"),
        track(2, userId="u2", properties={"filler": "x" * 40 * 1024}),
        track(1, userId="u3")]}, keys.public)
    assert reply.status_code == 200
    body = reply.json()
    assert body["stored"] == 2
    assert body["rejected"] == [{"index": 1, "messageId": "m-2", "field": None,
                                 "error": "message larger than 32 KB"}]
    assert sorted(r.message_id for r in rows(app, t.events)) == ["m-1", "m-3"]
    assert contact_by_identity(app, "user_id", "u2") is None


def test_an_invalid_message_is_listed_and_its_neighbours_stored(api: TestClient, app: App,
                                                                keys: Keys) -> None:
    reply = post(api, "/v1/batch", {"batch": [
        track(5, userId="u1"),
        {"type": "track", "messageId": "no-name", "userId": "u1", "timestamp": iso(T0)},
        track(4, userId="u2", timestamp="yesterday"),
        {"type": "launch", "messageId": "odd-type", "userId": "u1"},
        message("page", 3, properties={"url": "/pricing"}),  # nobody
        track(2, userId="u2", timestamp=iso(T0 + 3600)),  # an hour ahead, no sentAt
        "not an object",
        track(1, userId="u2")]}, keys.public)
    assert reply.status_code == 200
    body = reply.json()
    assert body["stored"] == 2
    assert [(r["index"], r["messageId"], r["field"]) for r in body["rejected"]] == [
        (1, "no-name", "event"), (2, "m-4", "timestamp"), (3, "odd-type", "type"),
        (4, "m-3", "userId"), (5, "m-2", "timestamp"), (6, None, "message")]
    assert all(r["error"] for r in body["rejected"])
    assert sorted(r.message_id for r in rows(app, t.events)) == ["m-1", "m-5"]


def test_keys_are_checked_and_nothing_is_written_without_a_good_one(
        api: TestClient, app: App, keys: Keys) -> None:
    before = counts(app)
    body = {"batch": [track(1, userId="u1")]}
    missing = post(api, "/v1/batch", body)
    assert missing.status_code == 401
    assert "needs an API key" in missing.json()["error"]["message"]
    wrong = post(api, "/v1/batch", body, keys.public[:-4] + "abcd")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"code": "unauthenticated", "message": "unknown API key",
                                     "field": "authorization"}
    assert post(api, "/v1/batch", body, "lfw_short").status_code == 401
    revoked = create_api_key(uow=app.uow(), ctx=app.ctx, name="old site", kind="public")
    admin = bearer(keys.admin)
    assert api.delete(f"/api/v1/api-keys/{revoked.key.id}", headers=admin).status_code == 204
    refused = post(api, "/v1/batch", body, revoked.token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    # A public write key only tracks; a read-scoped secret key does not write.
    contact = {"email": "eve@acme.example"}
    public = api.post("/api/v1/contacts", json=contact, headers=bearer(keys.public))
    assert public.status_code == 403
    assert "public write key" in public.json()["error"]["message"]
    assert api.get("/api/v1/contacts", headers=bearer(keys.public)).status_code == 403
    reader = api.post("/api/v1/contacts", json=contact, headers=bearer(keys.read))
    assert reader.status_code == 403
    assert "'write'" in reader.json()["error"]["message"]
    event = {"type": "page_view", "email": "eve@acme.example"}
    assert api.post("/api/v1/events", json=event,
                    headers=bearer(keys.read)).status_code == 403
    assert api.post("/api/v1/api-keys", json={"name": "x"},
                    headers=bearer(keys.write)).status_code == 403
    assert counts(app) == before
    assert count(app, t.api_keys) == 5


# --- what SDKs send ----------------------------------------------------------------------


def test_gzip_text_plain_short_paths_and_write_key_in_the_body(api: TestClient, app: App,
                                                               keys: Keys) -> None:
    zipped = gzip.compress(orjson.dumps({"batch": [track(9, userId="u1")]}))
    reply = post(api, "/v1/batch", zipped, keys.public, **{"Content-Encoding": "gzip"})
    assert reply.json()["stored"] == 1
    # analytics.js: text/plain (no preflight), the key in the body, short paths.
    for n, path in enumerate(("/v1/t", "/v1/p", "/v1/s", "/v1/i", "/v1/g", "/v1/a", "/v1/b")):
        body: dict[str, Any] = {"writeKey": keys.public, "userId": "u1"}
        if path == "/v1/t":
            body.update(track(8, messageId=f"short-{n}"))
        elif path == "/v1/b":
            body["batch"] = [track(8, userId="u1", messageId=f"short-{n}")]
        else:
            body.update(messageId=f"short-{n}", timestamp=iso(T0 - 60), groupId="g1",
                        previousId="old-device", name="Home")
        reply = post(api, path, body, **{"Content-Type": "text/plain;charset=UTF-8"})
        assert reply.status_code == 200, (path, reply.text)
        assert reply.json()["stored"] == 1, (path, reply.json())
    contact = contact_by_identity(app, "user_id", "u1")
    assert contact is not None
    assert [e.type for e in events_of(app, contact)] == [
        "form_submitted", "form_submitted", "form_submitted", "page_view", "screen_view",
        "identify", "group", "alias"]


def test_batch_context_and_clock_skew(api: TestClient, app: App, keys: Keys) -> None:
    client_ahead = 3600.0  # the sender's clock is an hour fast
    reply = post(api, "/v1/batch", {
        "sentAt": iso(T0 + client_ahead),
        "context": {"userAgent": "Mozilla/5.0 (X11)", "campaign": {"name": "spring",
                                                                    "source": "newsletter"},
                    "library": {"name": "analytics-python", "version": "2.3"}},
        "batch": [
            track(0, userId="u1", messageId="a", timestamp=iso(T0 + client_ahead - 120)),
            track(0, userId="u1", messageId="b", timestamp=iso(T0 + client_ahead - 60),
                  context={"campaign": {"name": "autumn", "medium": "email"},
                           "ip": "203.0.113.9"}),
            # A message with its own sentAt: corrected with it.
            track(0, userId="u1", messageId="c", timestamp=iso(T0 - 600),
                  sentAt=iso(T0 - 570)),
        ]}, keys.public)
    assert reply.json()["stored"] == 3, reply.json()
    contact = contact_by_identity(app, "user_id", "u1")
    assert contact is not None
    stored = {e.message_id: e for e in events_of(app, contact)}
    assert stored["a"].ts == pytest.approx(T0 - 120)
    assert stored["b"].ts == pytest.approx(T0 - 60)
    assert stored["c"].ts == pytest.approx(T0 - 30)
    assert (stored["a"].utm_campaign, stored["a"].utm_source) == ("spring", "newsletter")
    assert stored["a"].properties["user_agent"] == "Mozilla/5.0 (X11)"
    assert stored["a"].properties["library"] == "analytics-python"
    # The message's own context wins over the batch's, key by key at the top level.
    assert (stored["b"].utm_campaign, stored["b"].utm_medium) == ("autumn", "email")
    assert stored["b"].properties["ip"] == "203.0.113.9"
    assert stored["b"].properties["user_agent"] == "Mozilla/5.0 (X11)"


def _campaign_app(settings: Settings, clock: FakeClock) -> App:
    raw = yaml.safe_load(default_config_text())
    raw["engagement"]["rules"].append({"key": "spring_campaign", "points": 7,
                                       "when": {"utm_campaign": ["spring-sale"]}})
    return App(settings, clock=clock, config=parse_config_text(yaml.safe_dump(raw),
                                                               source="test"))


def test_page_url_and_campaign_are_stored_and_scored(settings: Settings,
                                                     clock: FakeClock) -> None:
    app = _campaign_app(settings, clock)
    try:
        key = create_api_key(uow=app.uow(), ctx=app.ctx, name="site", kind="public").token
        with TestClient(create_app(app)) as api:
            reply = post(api, "/v1/p", message(
                "page", 5, anonymousId="a1", name="Pricing",
                context={"page": {"url": "https://acme.example/pricing/teams?plan=pro",
                                  "referrer": "https://search.example/?q=crm",
                                  "title": "Pricing"},
                         "campaign": {"name": "spring-sale", "source": "google",
                                      "medium": "cpc"}}), key)
            assert reply.json()["stored"] == 1
            contact = contact_by_identity(app, "anonymous_id", "a1")
            assert contact is not None
            [event] = events_of(app, contact)
            assert (event.type, event.url) == ("page_view", "/pricing/teams")
            assert (event.utm_campaign, event.utm_source, event.utm_medium) == (
                "spring-sale", "google", "cpc")
            assert event.properties["referrer"] == "https://search.example/?q=crm"
            assert event.properties["url"] == "https://acme.example/pricing/teams?plan=pro"
            assert event.properties["name"] == "Pricing"
            [row] = rows(app, t.contacts)
            [scores] = rows(app, t.contact_scores)
            assert scores.engagement_breakdown == {"page_view": 1.0, "pricing_page": 8.0,
                                                   "spring_campaign": 7.0}
            assert scores.engagement_score == pytest.approx(16.0)
            assert row.source == "google"
    finally:
        app.engine.dispose()


# --- the browser's side ------------------------------------------------------------------


def test_the_browser_side(api: TestClient, app: App, keys: Keys) -> None:
    """CORS for pages on other origins, the settings analytics.js loads, the /t.js snippet."""
    origin = "https://shop.example"
    preflight = api.options("/v1/t", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", origin)
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    sent = post(api, "/v1/t", {**track(1, userId="u1"), "writeKey": keys.public},
                Origin=origin, **{"Content-Type": "text/plain"})
    assert sent.headers["access-control-allow-origin"] in ("*", origin)
    assert count(app, t.events) == 1

    settings = api.get(f"/v1/projects/{keys.public}/settings")
    assert settings.status_code == 200
    segment = settings.json()["integrations"]["Segment.io"]
    assert segment["apiKey"] == keys.public
    assert segment["apiHost"] == "testserver/v1"
    unknown = api.get("/v1/projects/lfw_nosuchkey000000000000000000000000000000/settings")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert api.get("/v1/projects/nonsense/settings").status_code == 404
    [site] = rows(app, t.api_keys, t.api_keys.c.name == "site")
    assert site.last_used_at == T0

    snippet = api.get("/t.js")
    assert snippet.status_code == 200
    assert snippet.headers["content-type"].startswith("application/javascript")
    assert "/v1/p" in snippet.text
    assert "data-key" in snippet.text


def test_rate_limit_answers_429_with_retry_after(settings: Settings, clock: FakeClock) -> None:
    limited = settings.model_copy(update={"tracking_rate_limit": 4.0})
    app = App(limited, clock=clock)
    try:
        first = create_api_key(uow=app.uow(), ctx=app.ctx, name="a", kind="public").token
        other = create_api_key(uow=app.uow(), ctx=app.ctx, name="b", kind="public").token
        with TestClient(create_app(app)) as api:
            codes = [post(api, "/v1/t", track(1, userId="u1", messageId=f"r{i}"),
                          first).status_code for i in range(40)]
            assert codes[:20] == [200] * 20  # a burst of 5 s worth
            assert 429 in codes[20:]
            refused = post(api, "/v1/t", track(1, userId="u1", messageId="late"), first)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
            assert post(api, "/v1/t", track(1, userId="u2"), other).status_code == 200
        stored = {r.message_id for r in rows(app, t.events)}
        assert "late" not in stored
        assert len(stored) == codes.count(200) + 1
    finally:
        app.engine.dispose()
