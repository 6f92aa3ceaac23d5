"""Pages from Jinja2 templates (templates/web), with the viewer, their language and the
formatting every page shares; answered with the headers private pages need."""

from __future__ import annotations

import math
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from leadflow.entrypoints.web.i18n import LANGUAGE_NAMES, LANGUAGES, translator
from leadflow.entrypoints.web.session import (
    CSRF_FIELD,
    Viewer,
    app_of,
    csrf_token,
    language,
    take_flashes,
)

ENV = Environment(loader=PackageLoader("leadflow", "templates/web"),
                  autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)

# The per-page helpers (translation, formats) are also globals that look up the page being
# rendered, so that macros imported without "with context" can use them too.
_PAGE: ContextVar[dict[str, Any]] = ContextVar("leadflow_page")
PAGE_HELPERS = ("_", "num", "pct", "money", "when", "day", "ago", "temperature", "stage_name",
                "csrf_input")


def _helper(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _PAGE.get()[name](*args, **kwargs)
    return call


ENV.globals.update({name: _helper(name) for name in PAGE_HELPERS})

HEADERS = {
    # Scripts and styles come from this server only; pygal's inline SVG styles need
    # 'unsafe-inline' for style, never for script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# (path, English label, who sees it): the menu, by role.
NAV = (
    ("/", "Dashboard", ("admin", "marketer", "sales_manager", "sales_rep")),
    ("/contacts", "Contacts", ("admin", "marketer", "sales_manager", "sales_rep")),
    ("/queue", "My queue", ("sales_manager", "sales_rep")),
    ("/tasks", "Tasks", ("admin", "marketer", "sales_manager", "sales_rep")),
    ("/opportunities", "Opportunities", ("admin", "marketer", "sales_manager", "sales_rep")),
    ("/analytics", "Analytics", ("admin", "marketer", "sales_manager")),
    ("/content", "Content", ("admin", "marketer")),
    ("/nurture", "Nurture", ("admin", "marketer")),
    ("/forms", "Forms", ("admin", "marketer")),
    ("/settings", "Settings", ("admin",)),
)


def _number(value: float | int | None, lang: str, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{digits}f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def formatters(lang: str, now: float) -> dict[str, Any]:
    _ = translator(lang)

    def num(value: float | int | None, digits: int = 0) -> str:
        return _number(value, lang, digits)

    def pct(value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{_number(value * 100, lang, digits)}\u00a0%"

    def money(value: float | None, currency: str = "EUR") -> str:
        return "–" if value is None else f"{_number(value, lang)}\u00a0{currency}"

    def when(ts: float | None) -> str:
        if ts is None:
            return "–"
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")

    def day(ts: float | None) -> str:
        return "–" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")

    def ago(ts: float | None) -> str:
        if ts is None:
            return "–"
        seconds = now - ts
        future = seconds < 0
        seconds = abs(seconds)
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
            if seconds >= size:
                amount = f"{int(seconds // size)}\u00a0{unit}"
                break
        else:
            return _("just now")
        return _("in {t}", t=amount) if future else _("{t} ago", t=amount)

    def temperature(key: str | None) -> str:
        return _({"hot": "hot", "warm": "warm", "cold": "cold", "new": "new"}.get(
            key or "", "–")) if key else "–"

    return {"num": num, "pct": pct, "money": money, "when": when, "day": day, "ago": ago,
            "temperature": temperature}


def page(request: Request, viewer: Viewer | None, template: str, *, status: int = 200,
         title: str = "", **context: Any) -> HTMLResponse:
    app = app_of(request)
    lang = viewer.lang if viewer else language(request)
    _ = translator(lang)
    config = app.config
    stage_names = {s.key: _(s.name) for s in config.stages}
    role = viewer.user.role if viewer else None
    values: dict[str, Any] = {
        "request": request, "viewer": viewer, "lang": lang, "_": _, "title": title,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "csrf_field": (field := Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, csrf_token(request))),
        "csrf_input": lambda: field,
        "csrf_token": csrf_token(request),
        "nav": [(path, _(label)) for path, label, roles in NAV if role in roles],
        "flashes": take_flashes(request),
        "stage_name": lambda key: stage_names.get(key, key or "–"),
        "now": app.clock.now(), "path": request.url.path, "here": _here(request),
        **formatters(lang, app.clock.now()),
        **context,
    }
    token = _PAGE.set(values)
    try:
        html = ENV.get_template(template).render(values)
    finally:
        _PAGE.reset(token)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _here(request: Request) -> str:
    """Where switching language comes back to: this page, or after a post (a form shown
    again with its errors) the page the form was on."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path:
        return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
    return "/"


def redirect(url: str) -> RedirectResponse:
    """After a post: see the result with a GET (Post/Redirect/Get)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or \
            "\\" in target or "\n" in target or "\r" in target:
        return "/"
    return target
