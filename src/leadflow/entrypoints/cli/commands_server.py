"""Running leadflow as a service: serve, worker; and what it needs: API keys, webhooks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import api_keys, webhooks

keys_app = typer.Typer(help="API keys: public write keys and secret keys with scopes.",
                       no_args_is_help=True)
hooks_app = typer.Typer(help="Webhooks: subscribe URLs to stage, milestone and temperature "
                        "changes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(hooks_app, name="webhooks")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    worker: Annotated[bool, typer.Option(
        "--worker/--no-worker", help="Run the job queue and webhook relay in this process "
        "(on by default; turn off when `leadflow worker` processes run)")] = True,
) -> None:
    """Serve the web app (/), the REST API (/api/v1, docs at /docs), tracking (/v1),
    /healthz and /metrics."""
    import uvicorn

    from leadflow.entrypoints.api.app import create_app
    from leadflow.entrypoints.logs import configure_logging

    a = get_app()
    configure_logging(json_lines=a.settings.log_json)
    a.engine  # noqa: B018 — fail here, with a clear message, if the database is unreachable
    host, port = host or a.settings.host, port or a.settings.port
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"leadflow web app: http://{shown}:{port}/  (REST API at /api/v1, its docs at "
               f"/docs; Ctrl+C stops it)")
    uvicorn.run(create_app(a, embedded_worker=worker), host=host, port=port, log_config=None,
                access_log=False)


@app.command()
@friendly_errors
def worker(threads: Annotated[int, typer.Option(min=1, max=64)] = 2) -> None:
    """Run background jobs and the outbox relay (Huey on SQLite, or Redis when
    LEADFLOW_REDIS_URL is set). Run as many as you like."""
    from leadflow.entrypoints.logs import configure_logging
    from leadflow.entrypoints.worker import Jobs, Worker

    a = get_app()
    configure_logging(json_lines=a.settings.log_json)
    a.engine  # noqa: B018
    Worker(Jobs(a), threads=threads).run()


@keys_app.command("create")
@friendly_errors
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for")],
    public: Annotated[bool, typer.Option("--public", help="A write key for tracking only "
                                         "(safe to embed in a web page)")] = False,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", "-s", help="read, write or admin (secret keys; repeat)")] = None,
    user: Annotated[str | None, typer.Option(
        "--user", "-u", help="Email or id of the user a secret key acts as")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. Its token is printed once; only a hash is kept. A secret key acts
    as its user, never with more rights than the user's role."""
    a = get_app()
    made = api_keys.create_api_key(uow=a.uow(), ctx=a.ctx, name=name,
                                   kind="public" if public else "secret",
                                   scopes=scope or ([] if public else ["read"]), user=user)
    if as_json:
        print_json({**asdict(made.key), "token": made.token})
        return
    console.print(f"created {made.key.kind} key {made.key.id} ({', '.join(made.key.scopes)})")
    console.print("token (shown once, keep it safe):")
    print(made.token)


@keys_app.command("list")
@friendly_errors
def keys_list(as_json: JsonOpt = False) -> None:
    """Every key: kind, scopes, when created, last used, revoked."""
    keys = api_keys.list_api_keys(uow=get_app().reader())
    if as_json:
        print_json([asdict(k) for k in keys])
        return
    table("API keys", ["id", "name", "kind", "user", "prefix", "scopes", "created",
                       "last used", "revoked"],
          [[k.id, k.name, k.kind, k.user_id or "", k.prefix, ", ".join(k.scopes),
            when(k.created_at), when(k.last_used_at), when(k.revoked_at)] for k in keys])


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see `keys list`)")]) -> None:
    """Revoke a key: calls with it are refused from now on."""
    a = get_app()
    api_keys.revoke_api_key(uow=a.uow(), ctx=a.ctx, key_id=key_id)
    console.print(f"revoked key {key_id}")


@hooks_app.command("add")
@friendly_errors
def hooks_add(
    url: Annotated[str, typer.Argument(help="http(s) URL that receives POSTs")],
    topic: Annotated[list[str], typer.Option(
        "--topic", "-t", help="stage.changed, milestone.reached, temperature.changed")],
    secret: Annotated[str | None, typer.Option(help="Signing secret (default: generated)")]
    = None,
    stage: Annotated[list[str] | None, typer.Option(
        "--stage", help="stage.changed only for moves into this stage (repeat)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe a URL; each delivery carries an HMAC-SHA256 signature of its body."""
    a = get_app()
    hook = webhooks.subscribe(uow=a.uow(), ctx=a.ctx, url=url, topics=topic, secret=secret,
                              stages=stage)
    if as_json:
        print_json(asdict(hook))
        return
    console.print(f"webhook {hook.id} → {hook.url} ({', '.join(hook.topics)})")
    console.print("signing secret:")
    print(hook.secret)


@hooks_app.command("list")
@friendly_errors
def hooks_list(as_json: JsonOpt = False) -> None:
    """Every webhook and its topics (secrets are not shown)."""
    hooks = webhooks.list_webhooks(uow=get_app().uow())
    if as_json:
        print_json([{k: v for k, v in asdict(h).items() if k != "secret"} for h in hooks])
        return
    table("Webhooks", ["id", "url", "topics", "stages", "active", "created"],
          [[h.id, h.url, ", ".join(h.topics), ", ".join(h.stages or ("all",)),
            "yes" if h.active else "no", when(h.created_at)] for h in hooks])


@hooks_app.command("remove")
@friendly_errors
def hooks_remove(webhook_id: Annotated[int, typer.Argument()]) -> None:
    """Stop a webhook; its pending deliveries are cancelled."""
    webhooks.unsubscribe(uow=get_app().uow(), webhook_id=webhook_id)
    console.print(f"removed webhook {webhook_id}")


@hooks_app.command("redeliver")
@friendly_errors
def hooks_redeliver(delivery_id: Annotated[int, typer.Argument(
        help="Delivery id (see `webhooks deliveries`)")]) -> None:
    """Send a failed or cancelled delivery again, its attempts counted from zero."""
    a = get_app()
    webhooks.redeliver(uow=a.uow(), ctx=a.ctx, delivery_id=delivery_id)
    console.print(f"delivery {delivery_id} will be sent again")


@hooks_app.command("deliveries")
@friendly_errors
def hooks_deliveries(
    webhook_id: Annotated[int | None, typer.Option("--webhook")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered, failed, "
                                               "cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log, newest first."""
    rows = webhooks.delivery_log(uow=get_app().uow(), webhook_id=webhook_id, status=status,
                                 limit=limit)
    if as_json:
        print_json([asdict(d) for d in rows])
        return
    table("Deliveries", ["id", "webhook", "topic", "status", "attempts", "last code",
                         "last error", "next attempt", "delivered"],
          [[d.id, d.webhook_id, d.topic, d.status, d.attempts, d.last_status_code or "",
            " ".join((d.last_error or "").split())[:60], when(d.next_attempt_at),
            when(d.delivered_at)]
           for d in rows])
