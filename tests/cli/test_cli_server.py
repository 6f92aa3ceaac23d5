"""The service commands: API keys and webhooks from the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.cli.base import app as cli
from leadflow.entrypoints.cli.base import set_app
from leadflow.services.api_keys import authenticate
from leadflow.services.webhooks import relay

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def test_keys_are_created_listed_and_revoked(cli_app: App) -> None:
    run("users", "add", "ops@acme.example", "--name", "Ops", "--role", "marketer",
        "--no-password")
    assert "a secret key acts as a user" in run("keys", "create", "x", "-s", "read", code=2)
    token = run("keys", "create", "crm sync", "-s", "read", "-s", "write",
                "--user", "ops@acme.example").strip().splitlines()[-1]
    assert token.startswith("lfs_")
    public = json.loads(run("keys", "create", "website", "--public", "--json"))
    assert public["kind"] == "public"
    assert public["scopes"] == ["track"]
    assert public["token"].startswith("lfw_")
    with cli_app.engine.connect() as conn:
        stored = conn.execute(select(t.api_keys.c.secret_hash)).scalars().all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert all(token not in h for h in stored)  # only the hash is kept

    listed = json.loads(run("keys", "list", "--json"))
    assert [k["name"] for k in listed] == ["crm sync", "website"]
    assert "crm sync" in run("keys", "list")
    key = authenticate(uow=cli_app.uow(), ctx=cli_app.ctx, token=token, needs="write")
    assert key.scopes == ("read", "write")

    run("keys", "revoke", str(key.id))
    assert "already revoked" in run("keys", "revoke", str(key.id), code=2)
    assert "no active API key with id 99" in run("keys", "revoke", "99", code=2)
    assert "unknown scope 'owner'" in run("keys", "create", "x", "-s", "owner", "--user", "1",
                                          code=2)
    assert "no user 'bob@acme.example'" in run("keys", "create", "x", "-s", "read", "--user",
                                               "bob@acme.example", code=2)


def test_webhooks_are_added_listed_removed_and_logged(cli_app: App) -> None:
    out = run("webhooks", "add", "http://127.0.0.1:9/hook", "-t", "stage.changed",
              "--secret", "s" * 20)
    assert "webhook 1" in out
    assert "s" * 20 in out
    assert "expected an http(s) URL" in run("webhooks", "add", "ftp://x", "-t",
                                            "stage.changed", code=2)
    assert "unknown topic 'stage'" in run("webhooks", "add", "http://x.io", "-t", "stage",
                                          code=2)
    hooks = json.loads(run("webhooks", "list", "--json"))
    assert hooks == [{"id": 1, "url": "http://127.0.0.1:9/hook", "topics": ["stage.changed"],
                      "active": True, "created_at": cli_app.clock.now(), "stages": None}]
    run("webhooks", "add", "http://127.0.0.1:9/prospects", "-t", "stage.changed",
        "--stage", "prospect")
    assert "unknown stage 'vip'" in run("webhooks", "add", "http://x.io", "-t",
                                        "stage.changed", "--stage", "vip", code=2)
    assert "prospect" in run("webhooks", "list")
    run("contact", "create", "--email", "ann@acme.io")  # a first stage change: an outbox row
    report = relay(uow=cli_app.uow, ctx=cli_app.ctx, lease_seconds=60)
    assert report.relayed == 1
    assert len(report.handed_out) == 1  # the prospects-only hook does not want "suspect"
    log = json.loads(run("webhooks", "deliveries", "--json"))
    assert [(d["topic"], d["status"]) for d in log] == [("stage.changed", "pending")]
    assert "stage.changed" in run("webhooks", "deliveries")
    run("webhooks", "remove", "1")
    [cancelled] = json.loads(run("webhooks", "deliveries", "--json"))
    assert cancelled["status"] == "cancelled"
    assert len(cancelled["uid"]) == 32
    assert "is pending: it will go by itself" not in run("webhooks", "redeliver",
                                                         str(cancelled["id"]))
    assert json.loads(run("webhooks", "deliveries", "--json"))[0]["status"] == "pending"
    assert "it will go by itself" in run("webhooks", "redeliver", str(cancelled["id"]), code=2)
    assert "no delivery with id 99" in run("webhooks", "redeliver", "99", code=2)
    assert "status is one of" in run("webhooks", "deliveries", "--status", "bogus", code=2)
    assert "no active webhook with id 1" in run("webhooks", "remove", "1", code=2)


def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_app(None)
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LEADFLOW_WEBHOOK_LEASE_SECONDS", "5")
    assert "must be longer than webhook_timeout_seconds" in run("keys", "list", code=2)
    monkeypatch.setenv("LEADFLOW_WEBHOOK_LEASE_SECONDS", "60")
    monkeypatch.setenv("LEADFLOW_PORT", "eighty")
    assert "LEADFLOW_PORT: Input should be a valid integer" in run("keys", "list", code=2)
