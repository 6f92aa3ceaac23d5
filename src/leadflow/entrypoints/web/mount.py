"""Puts the web application into the FastAPI app: sessions, static files, pages, and error
pages in HTML for the pages (the API keeps answering errors in JSON)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from leadflow.bootstrap import App
from leadflow.domain.errors import LeadflowError
from leadflow.entrypoints.api.errors import status_of
from leadflow.entrypoints.web import (
    routes_analytics,
    routes_auth,
    routes_backtest,
    routes_contact,
    routes_contacts,
    routes_dashboard,
    routes_library,
    routes_progress,
    routes_sales,
    routes_settings,
)
from leadflow.entrypoints.web.progress import ProgressBoard
from leadflow.entrypoints.web.render import page, redirect
from leadflow.entrypoints.web.routing import WebRoute
from leadflow.entrypoints.web.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginRequired,
    session_key,
)

log = logging.getLogger("leadflow.web")
STATIC = Path(__file__).parent / "static"
# routes_contacts before routes_contact: /contacts/export and the like are not contact ids.
ROUTERS = (routes_auth, routes_dashboard, routes_progress, routes_contacts, routes_contact,
           routes_sales, routes_library, routes_settings, routes_analytics, routes_backtest)
NOT_WEB = ("/api/", "/v1/", "/m/", "/p/", "/static/swagger", "/docs", "/openapi.json",
           "/healthz", "/metrics", "/t.js")


def is_web(request: Request) -> bool:
    route = request.scope.get("route")
    if isinstance(route, WebRoute):
        return True
    if isinstance(route, APIRoute) or request.url.path.startswith(NOT_WEB):
        return False
    return "text/html" in request.headers.get("accept", "")


def _error_page(request: Request, status: int, message: str) -> Response:
    from leadflow.entrypoints.web.session import current_viewer
    try:
        viewer = current_viewer(request)
    except LeadflowError:
        viewer = None
    return page(request, viewer, "error.html", status=status, title=str(status),
                status_code=status, message=message)


def install_web(api: FastAPI, leadflow: App) -> None:
    settings = leadflow.settings
    api.add_middleware(SessionMiddleware, secret_key=session_key(settings.signing_key),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_SECONDS,
                       same_site="lax", https_only=settings.public_url.startswith("https:"))
    api.state.progress = ProgressBoard()
    # The dashboard's slow figures, kept a while per web application (never shared by two).
    api.state.dashboard_figures = routes_dashboard.figures_cache()
    api.mount("/static/app", StaticFiles(directory=str(STATIC)), name="web-static")
    for module in ROUTERS:
        api.include_router(module.router)

    json_handlers: dict[Any, Any] = dict(api.exception_handlers)

    async def leadflow_error(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            return await json_handlers[LeadflowError](request, exc)  # type: ignore[no-any-return]
        if isinstance(exc, LoginRequired):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":  # back to the page the form was on, after login
                referer = urlsplit(request.headers.get("referer", ""))
                target = "/"
                if referer.netloc == request.url.netloc and referer.path:
                    target = referer.path + (f"?{referer.query}" if referer.query else "")
            return redirect(f"/login?next={quote(target, safe='/')}")
        assert isinstance(exc, LeadflowError)
        return _error_page(request, status_of(exc), exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            return await json_handlers[HTTPException](request, exc)  # type: ignore[no-any-return]
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = {404: "There is no such page.",
                   405: "This page cannot be used that way."}.get(status, str(exc.detail))
        return _error_page(request, status, message)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            return await json_handlers[RequestValidationError](  # type: ignore[no-any-return]
                request, exc)
        assert isinstance(exc, RequestValidationError)
        if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
            return _error_page(request, 404, "There is no such page.")
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:])
        return _error_page(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    async def unexpected(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            return await json_handlers[Exception](request, exc)  # type: ignore[no-any-return]
        log.exception("unexpected error", extra={"path": request.url.path})
        return _error_page(request, 500, "Something went wrong on our side; it is logged.")

    api.add_exception_handler(LeadflowError, leadflow_error)
    api.add_exception_handler(HTTPException, http_error)
    api.add_exception_handler(RequestValidationError, invalid_request)
    api.add_exception_handler(Exception, unexpected)
