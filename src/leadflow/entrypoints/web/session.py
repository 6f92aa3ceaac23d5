"""Who is looking at a page: the signed session cookie, the user behind it, CSRF tokens.

The session cookie (Starlette's, signed with a key derived from the install's secret) holds
the user's id, the time they logged in, a CSRF token and their language. Every request reads
the user again, so a deactivated user is logged out at their next click.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

from leadflow.bootstrap import App
from leadflow.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from leadflow.domain.users import Principal, User
from leadflow.entrypoints.web.i18n import Translate, pick_language, translator
from leadflow.services.users import acting_as

SESSION_COOKIE = "leadflow_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"


class LoginRequired(Unauthenticated):
    """No (or no longer a valid) session: the page answers with a redirect to /login."""

    code = "login_required"


class CsrfRefused(Forbidden):
    code = "csrf"


def session_key(signing_key: bytes) -> str:
    # Its own key, so that a signed email link can never pass for a session and back.
    return hmac.new(signing_key, b"leadflow web session", hashlib.sha256).hexdigest()


def app_of(request: Request) -> App:
    leadflow: App = request.app.state.leadflow
    return leadflow


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use: the login form has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def language(request: Request) -> str:
    return pick_language(chosen=request.session.get("lang"),
                         accept_language=request.headers.get("accept-language"))


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a page, with their rights and language."""

    user: User
    principal: Principal
    lang: str
    csrf: str
    _: Translate

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    @property
    def in_sales(self) -> bool:
        return self.user.role in ("sales_rep", "sales_manager")

    @property
    def works_marketing(self) -> bool:
        return self.user.role in ("admin", "marketer")


def current_viewer(request: Request) -> Viewer:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired("log in to see this page")
    app = app_of(request)
    try:
        principal = acting_as(uow=app.reader(), ref=uid)
    except (NotFound, InvalidInput):  # deleted or deactivated since they logged in
        request.session.clear()
        raise LoginRequired("log in again") from None
    with app.reader() as uow:
        user = uow.users.get(uid)
    if user is None:
        request.session.clear()
        raise LoginRequired("log in again")
    lang = language(request)
    return Viewer(user=user, principal=principal, lang=lang, csrf=csrf_token(request),
                  _=translator(lang))


WebUser = Annotated[Viewer, Depends(current_viewer)]


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matched the session's (else 403, nothing done).
    Every web route that changes something takes this."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or \
            not secrets.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("this form did not come from a leadflow page you have open (or your "
                          "session ended): reload the page and send it again", field=CSRF_FIELD)
    return form


Posted = Annotated[FormData, Depends(checked_form)]


def log_in(request: Request, user: User) -> None:
    lang = request.session.get("lang")
    request.session.clear()  # a new session id's worth: nothing from before login carries over
    request.session.update({"uid": user.id, "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message shown once, on the next page (after a redirect)."""
    messages: list[dict[str, Any]] = list(request.session.get("flash", []))
    messages.append({"text": text, "kind": kind})
    request.session["flash"] = messages[-5:]


def take_flashes(request: Request) -> list[dict[str, Any]]:
    return list(request.session.pop("flash", []))
