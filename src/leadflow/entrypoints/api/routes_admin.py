"""REST: pipeline configuration and personas, API keys, webhooks and their delivery log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from leadflow.adapters.config_file import parse_config_text
from leadflow.domain.access import ApiKey
from leadflow.domain.ports import Webhook
from leadflow.entrypoints.api.auth import Admin, AppDep, Reader
from leadflow.entrypoints.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)
from leadflow.services import api_keys, webhooks

router = APIRouter(prefix="/api/v1")


@router.get("/pipeline", tags=["configuration"])
def pipeline_get(app: AppDep, _: Reader) -> dict[str, Any]:
    """The lifecycle configuration in force: stages, milestones, rules, with its version."""
    return {"version": app.config.config_version, "config": app.config.raw}


@router.post("/pipeline/check", tags=["configuration"])
def pipeline_check(app: AppDep, _: Reader,
                   content: Annotated[str, Body(media_type="text/plain")]) -> dict[str, Any]:
    """Validate a lifecycle YAML; 422 lists each problem with its location."""
    config = parse_config_text(content, source="request body")
    return {"valid": True, "version": config.config_version,
            "stages": [s.key for s in config.stages]}


@router.get("/personas", tags=["configuration"])
def personas_get(app: AppDep, _: Reader) -> list[dict[str, Any]]:
    """Buyer personas and their weighted fit criteria."""
    return [asdict(p) for p in app.config.fit.personas]


def _key(key: ApiKey) -> dict[str, Any]:
    return {**asdict(key), "scopes": list(key.scopes)}


@router.get("/api-keys", response_model=list[ApiKeyRead], tags=["admin"])
def keys_list(app: AppDep, _: Admin) -> list[dict[str, Any]]:
    return [_key(k) for k in api_keys.list_api_keys(uow=app.uow())]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201, tags=["admin"])
def keys_create(body: ApiKeyCreate, app: AppDep, who: Admin) -> dict[str, Any]:
    """A public write key (tracking only) or a secret key with scopes, acting as ``user``
    (default: the caller); the token shows once."""
    owner = body.user if body.user is not None or body.kind == "public" else who.user_id
    made = api_keys.create_api_key(uow=app.uow(), ctx=app.ctx, name=body.name,
                                   kind=body.kind, scopes=body.scopes, user=owner)
    return {**_key(made.key), "token": made.token}


@router.delete("/api-keys/{key_id}", status_code=204, tags=["admin"])
def keys_revoke(key_id: int, app: AppDep, _: Admin) -> Response:
    api_keys.revoke_api_key(uow=app.uow(), ctx=app.ctx, key_id=key_id)
    return Response(status_code=204)


def _hook(hook: Webhook) -> dict[str, Any]:
    return {**asdict(hook), "topics": list(hook.topics),
            "stages": list(hook.stages) if hook.stages is not None else None}


@router.get("/webhooks", response_model=list[WebhookRead], tags=["webhooks"])
def webhooks_list(app: AppDep, _: Admin) -> list[dict[str, Any]]:
    return [_hook(h) for h in webhooks.list_webhooks(uow=app.uow())]


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, tags=["webhooks"])
def webhooks_create(body: WebhookCreate, app: AppDep, _: Admin) -> dict[str, Any]:
    """Subscribe a URL to stage changes, milestones and/or temperature changes."""
    return _hook(webhooks.subscribe(uow=app.uow(), ctx=app.ctx, url=body.url,
                                    topics=body.topics, secret=body.secret,
                                    stages=body.stages))


@router.delete("/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
def webhooks_delete(webhook_id: int, app: AppDep, _: Admin) -> Response:
    webhooks.unsubscribe(uow=app.uow(), webhook_id=webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/deliveries", response_model=list[DeliveryRead], tags=["webhooks"])
def deliveries_list(app: AppDep, _: Admin, webhook_id: int | None = None,
                    status: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """The delivery log, newest first: attempts, last status code and error."""
    return [asdict(d) for d in webhooks.delivery_log(uow=app.uow(), webhook_id=webhook_id,
                                                     status=status, limit=limit)]


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", status_code=202, tags=["webhooks"])
def deliveries_redeliver(delivery_id: int, app: AppDep, _: Admin) -> Response:
    """Send a failed or cancelled delivery again, attempts counted from zero."""
    webhooks.redeliver(uow=app.uow(), ctx=app.ctx, delivery_id=delivery_id)
    return Response(status_code=202)
