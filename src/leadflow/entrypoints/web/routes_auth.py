"""Log in, log out, and the language of the pages."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from leadflow.domain.errors import Unauthenticated
from leadflow.entrypoints.web.i18n import LANGUAGES
from leadflow.entrypoints.web.render import page, redirect, safe_next
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, app_of, log_in
from leadflow.services.users import check_password

router = web_router()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    if isinstance(request.session.get("uid"), int):
        return redirect(safe_next(next))
    return page(request, None, "login.html", title="Log in", next=safe_next(next), email="",
                error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: Posted) -> Response:
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    limiter = request.app.state.login_limiter
    client = request.client.host if request.client else "unknown"
    for who in (f"email:{email.lower()}", f"client:{client}"):
        wait = limiter.allow(who)
        if wait is not None:
            return page(request, None, "login.html", status=429, title="Log in", next=target,
                        email=email, error=("Too many attempts: wait {s} seconds and try "
                                            "again.", {"s": max(1, math.ceil(wait))}))
    try:
        user = check_password(uow=app_of(request).reader(), email=email, password=password)
    except Unauthenticated:
        return page(request, None, "login.html", status=401, title="Log in", next=target,
                    email=email, error=("Wrong email or password.", {}))
    log_in(request, user)
    return redirect(target)


@router.post("/logout")
def logout(request: Request, _: Posted) -> Response:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return redirect("/login")


@router.post("/language")
def choose_language(request: Request, form: Posted) -> Response:
    lang = str(form.get("lang", ""))
    if lang in LANGUAGES:
        request.session["lang"] = lang
    return redirect(safe_next(str(form.get("next", "/"))))
