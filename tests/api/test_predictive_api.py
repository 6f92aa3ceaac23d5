"""REST: a contact's predicted conversion for whoever may see the contact (a rep: their own
only), the model versions and their activation for admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from leadflow.bootstrap import App
from leadflow.services.api_keys import create_api_key
from leadflow.services.users import create_user
from tests.api.conftest import Keys, bearer
from tests.conftest import FakeClock
from tests.integration.test_predictive import MODEL, generate, train, with_model


def _key(app: App, email: str, role: str) -> dict[str, str]:
    user = create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email, role=role,
                       team="west")
    return bearer(create_api_key(uow=app.uow(), ctx=app.ctx, name=email, kind="secret",
                                 scopes=["write"], user=user.id).token)


def test_predictions_and_models_follow_each_role(api: TestClient, app: App, clock: FakeClock,
                                                 keys: Keys) -> None:
    admin = bearer(keys.admin)
    rep, other = _key(app, "r@sales.example", "sales_rep"), _key(app, "o@sales.example",
                                                                    "sales_rep")
    marketer = _key(app, "m@mkt.example", "marketer")
    mine = api.post("/api/v1/contacts", headers=rep, json={
        "email": "mine@acme.example", "seniority": "director", "lead_reason": "met at a fair"})
    theirs = api.post("/api/v1/contacts", headers=other, json={
        "email": "theirs@acme.example", "lead_reason": "a tip"})
    assert mine.status_code == theirs.status_code == 201
    mine_id, theirs_id = mine.json()["id"], theirs.json()["id"]

    nothing = api.get(f"/api/v1/contacts/{mine_id}/prediction", headers=rep).json()
    assert nothing["model"] is None
    assert nothing["probability"] is None
    assert nothing["why_none"] == "no model is active"
    assert api.get("/api/v1/models", headers=admin).json() == []

    with_model(app, **MODEL)
    generate(app, clock, n=160)
    version = train(app)
    assert api.get("/api/v1/models", headers=rep).status_code == 403
    assert api.post(f"/api/v1/models/{version.id}/activate", headers=rep).status_code == 403
    assert api.post(f"/api/v1/models/{version.id}/activate",
                    headers=marketer).status_code == 403
    [listed] = api.get("/api/v1/models", headers=admin).json()
    assert listed["id"] == version.id
    assert listed["active"] is False
    assert set(listed["metrics"]) >= {"auc", "average_precision", "brier", "lift_top_decile",
                                      "baseline"}
    assert "model" not in listed  # never the model's bytes
    activated = api.post(f"/api/v1/models/{version.id}/activate", headers=admin)
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True
    assert api.post("/api/v1/models/999/activate", headers=admin).status_code == 404

    own = api.get(f"/api/v1/contacts/{mine_id}/prediction", headers=rep)
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["model"]["version"] == version.id
    assert 0 < body["probability"] < 1
    assert 1 <= len(body["reasons"]) <= 5
    assert {"feature", "value", "reference", "log_odds", "effect", "direction"} \
        <= set(body["reasons"][0])
    refused = api.get(f"/api/v1/contacts/{theirs_id}/prediction", headers=rep)
    assert refused.status_code == 403
    assert "probability" not in refused.text
    seen = api.get(f"/api/v1/contacts/{theirs_id}/prediction", headers=marketer)
    assert seen.status_code == 200
    assert api.get("/api/v1/contacts/99999/prediction", headers=admin).status_code == 404
