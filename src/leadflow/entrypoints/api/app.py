"""The FastAPI application: REST API, tracking API, operations; optionally a worker inside."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from leadflow.adapters.db.engine import BackgroundCheckpoints
from leadflow.bootstrap import App
from leadflow.entrypoints.api import (
    routes_admin,
    routes_analytics,
    routes_contacts,
    routes_content,
    routes_deals,
    routes_forms,
    routes_mail,
    routes_models,
    routes_nurture,
    routes_ops,
    routes_sales,
    routes_tracking,
)
from leadflow.entrypoints.api.errors import error_body, install_error_handlers
from leadflow.entrypoints.api.rate_limit import RateLimiter
from leadflow.entrypoints.metrics import LATENCY, REQUESTS
from leadflow.entrypoints.web.mount import install_web
from leadflow.entrypoints.worker import Jobs, Worker
from leadflow.services.tracking import Together


def create_app(app: App | None = None, *, embedded_worker: bool = False) -> FastAPI:
    """``embedded_worker`` runs the job queue and the outbox relay in this process's threads,
    for the zero-set-up case; at scale run ``leadflow worker`` processes instead."""
    leadflow = app or App()
    jobs = Jobs(leadflow)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        checkpoints = BackgroundCheckpoints(leadflow.engine)  # migrates (and fails) at start
        checkpoints.start()
        worker = Worker(jobs, embedded=True) if embedded_worker else None
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            checkpoints.stop()

    api = FastAPI(title="leadflow", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Lead lifecycle: contacts, events, scores, stages, webhooks. "
                              "Authenticate with `Authorization: Bearer <secret key>`.")
    api.state.leadflow = leadflow
    api.state.jobs = jobs
    api.state.tracking_together = Together()
    api.state.rate_limiter = RateLimiter(leadflow.settings.tracking_rate_limit,
                                             leadflow.clock.now)
    # Password guessing: five tries, then one every five seconds, per email and per client.
    api.state.login_limiter = RateLimiter(0.2, leadflow.clock.now, burst_seconds=25)
    api.add_middleware(CORSMiddleware, allow_origins=leadflow.settings.cors_origins,
                       allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
                       max_age=86400)

    @api.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        REQUESTS.labels(method=request.method, route=name,
                        status=str(response.status_code)).inc()
        LATENCY.labels(route=name).observe(time.perf_counter() - start)
        return response

    limit = leadflow.settings.api_max_body_bytes

    @api.middleware("http")
    async def body_limit(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length", "")
        if request.url.path.startswith("/api/") and length.isdigit() and int(length) > limit:
            return JSONResponse(error_body("too_large", f"the body is larger than "
                                           f"{limit // 1024} KB", "body"), status_code=413)
        return await call_next(request)

    # Swagger UI from its PyPI package: /docs works offline, nothing comes from a CDN.
    api.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="leadflow API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png")

    install_error_handlers(api)
    for module in (routes_contacts, routes_sales, routes_deals, routes_admin, routes_tracking,
                   routes_ops, routes_content, routes_forms, routes_mail, routes_nurture,
                   routes_analytics, routes_models):
        api.include_router(module.router)
    install_web(api, leadflow)
    return api
