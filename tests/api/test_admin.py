"""REST administration (pipeline, personas, API keys) and operations (/healthz, /metrics)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from leadflow.adapters.config_file import default_config_text
from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.worker import Jobs
from tests.api.conftest import Keys, Receiver, basic, bearer, count, iso, rows, run_queued
from tests.conftest import T0, FakeClock


def test_pipeline_and_personas(api: TestClient, app: App, keys: Keys) -> None:
    reader = bearer(keys.read)
    pipeline = api.get("/api/v1/pipeline", headers=reader).json()
    assert pipeline["version"] == app.config.config_version
    assert [s["key"] for s in pipeline["config"]["stages"]][:3] == ["suspect", "lead",
                                                                    "prospect"]
    [stored] = rows(app, t.config_versions)
    assert stored.version == pipeline["version"]

    plain = {"Content-Type": "text/plain", **reader}
    good = api.post("/api/v1/pipeline/check", content=default_config_text(), headers=plain)
    assert good.status_code == 200, good.text
    assert good.json()["valid"] is True
    assert good.json()["version"] == app.config.config_version
    broken = default_config_text().replace("role: interest", "role: curiosity").replace(
        "points: 30", "points: lots")
    bad = api.post("/api/v1/pipeline/check", content=broken, headers=plain)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "config_invalid"
    locations = " | ".join(f"{p['location']}: {p['message']}" for p in error["problems"])
    assert "stages[1].role (line " in locations, locations
    assert "curiosity" in locations
    assert "points" in locations
    not_yaml = api.post("/api/v1/pipeline/check", content="stages: [unclosed", headers=plain)
    assert not_yaml.status_code == 422
    assert "line 1" in not_yaml.json()["error"]["problems"][0]["location"]
    assert count(app, t.config_versions) == 1  # a check changes nothing

    personas = api.get("/api/v1/personas", headers=reader).json()
    assert [p["key"] for p in personas] == ["it_leader", "ops_manager"]
    assert {c["label"] for c in personas[0]["criteria"]} >= {"Target industry"}
    assert api.get("/api/v1/personas").status_code == 401


def _scopes(api: TestClient, token: str) -> dict[str, int]:
    """What a key may do: the status each kind of call gets."""
    return {"read": api.get("/api/v1/contacts", headers=bearer(token)).status_code,
            "write": api.post("/api/v1/accounts", headers=bearer(token),
                              json={"name": "Scope Probe"}).status_code,
            "admin": api.get("/api/v1/api-keys", headers=bearer(token)).status_code,
            "track": api.post("/v1/t", headers=basic(token), json={
                "userId": "probe", "event": "Probe", "timestamp": iso(T0)}).status_code}


def test_api_keys_are_shown_once_and_stored_hashed(api: TestClient, app: App,
                                                   keys: Keys) -> None:
    admin = bearer(keys.admin)
    made = api.post("/api/v1/api-keys", headers=admin,
                    json={"name": "crm sync", "scopes": ["write"]})
    assert made.status_code == 201
    secret: dict[str, Any] = made.json()
    assert secret["token"].startswith(secret["prefix"])
    assert (secret["kind"], secret["scopes"], secret["created_at"]) == ("secret", ["write"], T0)
    scoped = api.post("/api/v1/api-keys", headers=admin,
                      json={"name": "website", "kind": "public", "scopes": ["admin"]})
    assert (scoped.status_code, scoped.json()["error"]["field"]) == (422, "scopes")
    public = api.post("/api/v1/api-keys", headers=admin,
                      json={"name": "website", "kind": "public"}).json()
    assert public["scopes"] == ["track"]
    assert public["token"].startswith("lfw_")

    with app.engine.connect() as conn:
        stored = "\n".join(repr(tuple(r)) for r in conn.execute(select(t.api_keys)))
    for token in (secret["token"], public["token"], keys.admin, keys.public):
        assert token not in stored
        assert token[len(secret["prefix"]):] not in stored
    listed = api.get("/api/v1/api-keys", headers=admin).json()
    assert [k["name"] for k in listed] == ["site", "reader", "writer", "admin", "crm sync",
                                           "website"]
    assert all("token" not in k and "secret_hash" not in k for k in listed)

    assert _scopes(api, secret["token"]) == {"read": 200, "write": 201, "admin": 403,
                                             "track": 200}
    assert _scopes(api, public["token"]) == {"read": 403, "write": 403, "admin": 403,
                                             "track": 200}
    assert _scopes(api, keys.read) == {"read": 200, "write": 403, "admin": 403, "track": 200}
    [row] = rows(app, t.api_keys, t.api_keys.c.id == secret["id"])
    assert row.last_used_at == T0

    assert api.delete(f"/api/v1/api-keys/{secret['id']}", headers=admin).status_code == 204
    assert _scopes(api, secret["token"]) == {"read": 401, "write": 401, "admin": 401,
                                             "track": 401}
    again = api.delete(f"/api/v1/api-keys/{secret['id']}", headers=admin)
    assert (again.status_code, again.json()["error"]["message"]) == (
        404, f"API key {secret['id']} is already revoked")
    assert api.delete("/api/v1/api-keys/999", headers=admin).status_code == 404
    bad = api.post("/api/v1/api-keys", headers=admin, json={"name": "x", "scopes": ["root"]})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "scopes")
    none = api.post("/api/v1/api-keys", headers=admin, json={"name": "x"})
    assert (none.status_code, none.json()["error"]["field"]) == (422, "scopes")
    assert count(app, t.api_keys) == 6
    [revoked] = rows(app, t.api_keys, t.api_keys.c.id == secret["id"])
    assert revoked.revoked_at == T0


def _samples(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = api.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def test_health_and_metrics(api: TestClient, app: App, keys: Keys, receiver: Receiver,
                            clock: FakeClock) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "dialect": app.engine.dialect.name}
    assert body["queue"] == {"ok": True, "depth": 0, "backend": "sqlite"}
    assert body["outbox"] == {"pending": 0, "oldest_seconds": None}

    before = _samples(api)
    api.post("/api/v1/webhooks", headers=bearer(keys.admin),
             json={"url": receiver.url, "topics": ["stage.changed"]})
    stored = api.post("/v1/batch", headers=basic(keys.public), json={"batch": [
        {"type": "track", "event": "Signed Up", "userId": f"u{i}", "messageId": f"m{i}",
         "timestamp": iso(T0 - 60)} for i in range(3)]})
    assert stored.json()["stored"] == 3
    clock.advance(30)  # no worker relays here: the outbox waits, and /healthz says so
    # (its age counts from the change it reports: the events were a minute old)
    assert api.get("/healthz").json()["outbox"] == {"pending": 3, "oldest_seconds": 90.0}
    jobs: Jobs = api.app.state.jobs  # type: ignore[attr-defined]
    jobs.relay_once()
    assert api.get("/healthz").json()["queue"]["depth"] == 3
    during = _samples(api)
    assert during[("leadflow_queue_depth", ())] == 3
    assert during[("leadflow_outbox_pending", ())] == 0
    assert run_queued(jobs) == 3
    after = _samples(api)

    def grew(name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert grew("leadflow_events_ingested_total") == 3
    assert grew("leadflow_http_requests_total", route="/v1/batch", status="200") == 1
    assert grew("leadflow_http_requests_total", route="/api/v1/webhooks", method="POST") == 1
    assert grew("leadflow_jobs_total", task="deliver_webhook", outcome="ok") == 3
    assert grew("leadflow_webhook_attempts_total", status="delivered") == 3
    assert after[("leadflow_queue_depth", ())] == 0
    assert len(receiver.received) == 3
    assert count(app, t.webhook_deliveries, t.webhook_deliveries.c.status == "delivered") == 3
