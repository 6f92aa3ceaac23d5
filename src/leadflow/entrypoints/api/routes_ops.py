"""Operations: health (database and queue reachable) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.queue.huey_queue import queue_depth
from leadflow.entrypoints.api.auth import get_app

router = APIRouter(tags=["operations"])

QUEUE_DEPTH = Gauge("leadflow_queue_depth", "Jobs waiting in the queue (pending + scheduled)")
OUTBOX_PENDING = Gauge("leadflow_outbox_pending", "Outbox messages not yet relayed")
WEBHOOKS_FAILED = Gauge("leadflow_webhook_deliveries_failed",
                        "Webhook deliveries that gave up after every retry")


def _check(request: Request) -> tuple[dict[str, Any], bool]:
    app = get_app(request)
    checks: dict[str, Any] = {}
    healthy = True
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            pending, oldest = conn.execute(select(func.count(), func.min(t.outbox.c.created_at))
                                           .where(t.outbox.c.relayed_at.is_(None))).one()
        checks["database"] = {"ok": True, "dialect": app.engine.dialect.name}
        # Informative, not a failure: web processes stay healthy when workers are down.
        checks["outbox"] = {"pending": int(pending or 0), "oldest_seconds": None if oldest is None
                            else round(max(0.0, app.clock.now() - oldest), 1)}
    except Exception as exc:  # reported, not raised: this is the health check
        checks["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
        healthy = False
    try:
        checks["queue"] = {"ok": True, "depth": queue_depth(request.app.state.jobs.huey),
                           "backend": "redis" if app.settings.redis_url else "sqlite"}
    except Exception as exc:
        checks["queue"] = {"ok": False, "error": str(exc).splitlines()[0]}
        healthy = False
    return checks, healthy


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    checks, healthy = await run_in_threadpool(_check, request)
    return JSONResponse({"status": "ok" if healthy else "unavailable", **checks},
                        status_code=200 if healthy else 503)


def _gauges(request: Request) -> None:
    app = get_app(request)
    QUEUE_DEPTH.set(queue_depth(request.app.state.jobs.huey))
    with app.engine.connect() as conn:
        OUTBOX_PENDING.set(conn.execute(select(func.count()).select_from(t.outbox).where(
            t.outbox.c.relayed_at.is_(None))).scalar() or 0)
        WEBHOOKS_FAILED.set(conn.execute(select(func.count()).select_from(
            t.webhook_deliveries).where(t.webhook_deliveries.c.status == "failed"))
            .scalar() or 0)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await run_in_threadpool(_gauges, request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
