"""Links in sent email (public: the open pixel, click redirects, one-click unsubscribe) and
the email log, bounces and newsletter sends (REST)."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from leadflow.domain.errors import InvalidInput, NotFound
from leadflow.domain.mail_policy import CATEGORIES
from leadflow.entrypoints.api.auth import AppDep, Reader, Writer
from leadflow.services import mail_feedback, nurture

router = APIRouter()

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private"}


@router.get("/m/o/{message}/{signature}.gif", include_in_schema=False)
def opened(message: int, signature: str, app: AppDep) -> Response:
    """The open pixel: always a 1x1 GIF; a genuine one records the first open."""
    if app.links.valid("open", message, signature):
        mail_feedback.record_open(uow=app.uow(), ctx=app.ctx, message_id=message)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/m/c/{message}/{signature}", include_in_schema=False)
def clicked(message: int, signature: str, app: AppDep,
            u: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """A tracked link: records the click, then redirects. Only signed targets redirect, so
    the route is no open redirect."""
    if not u or not app.links.valid("click", message, signature, u):
        raise NotFound("this link is not valid", field="u")
    mail_feedback.record_click(uow=app.uow(), ctx=app.ctx, message_id=message, url=u)
    return RedirectResponse(u, status_code=302, headers=NO_STORE)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">{body}</body></html>"""


@router.get("/m/u/{message}/{signature}", include_in_schema=False)
def unsubscribe_page(message: int, signature: str, app: AppDep) -> HTMLResponse:
    """The unsubscribe link opened in a browser: one button (a GET must not unsubscribe, as
    link scanners follow links)."""
    if not app.links.valid("unsubscribe", message, signature):
        return HTMLResponse(PAGE.format(title="Invalid link", body="<p>This link is not valid."
                                        "</p>"), status_code=404)
    body = ("<h1>Unsubscribe</h1><p>Stop all marketing email and the newsletter?</p>"
            f'<form method="post" action="/m/u/{message}/{signature}">'
            '<button type="submit" name="List-Unsubscribe" value="One-Click">'
            "Unsubscribe</button></form>")
    return HTMLResponse(PAGE.format(title="Unsubscribe", body=body), headers=NO_STORE)


@router.post("/m/u/{message}/{signature}", include_in_schema=False)
async def unsubscribe(message: int, signature: str, request: Request, app: AppDep
                      ) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058: the mail client posts List-Unsubscribe=One-Click)
    and the button of the page."""
    await request.body()
    if not app.links.valid("unsubscribe", message, signature):
        return HTMLResponse(PAGE.format(title="Invalid link", body="<p>This link is not valid."
                                        "</p>"), status_code=404)
    mail_feedback.unsubscribe(uow=app.uow(), ctx=app.ctx, message_id=message)
    return HTMLResponse(PAGE.format(title="Unsubscribed", body="<h1>You are unsubscribed</h1>"
                                    "<p>You will get no more marketing email from us.</p>"),
                        headers=NO_STORE)


class BounceIn(BaseModel):
    kind: str = Field(description="hard | soft | complaint")
    email: str | None = None
    message_id: int | None = Field(default=None, description="leadflow's email number")


def _message(m: Any) -> dict[str, Any]:
    return asdict(m)


@router.get("/api/v1/mail/messages", tags=["email"])
def messages(app: AppDep, who: Reader,
             status: Annotated[str | None, Query()] = None,
             category: Annotated[str | None, Query()] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50,
             offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
    """The email log (marketers and admins): what was queued, sent, held or skipped, and why.
    Addresses and bodies are not kept; each row names its contact."""
    who.need_role("admin", "marketer", what="read the email log")
    if category is not None and category not in CATEGORIES:
        raise InvalidInput(f"category is one of {', '.join(CATEGORIES)}", field="category")
    with app.reader() as uow:
        return [_message(m) for m in uow.mail.search(status=status, category=category,
                                                      limit=limit, offset=offset)]


@router.post("/api/v1/mail/bounces", status_code=204, tags=["email"])
def bounce(body: BounceIn, app: AppDep, who: Writer) -> Response:
    """A bounce or complaint from the mail provider: a hard bounce stops all email to the
    address, a complaint also unsubscribes it."""
    who.need_role("admin", "marketer", what="record bounces")
    mail_feedback.record_bounce(uow=app.uow(), ctx=app.ctx, kind=body.kind, email=body.email,
                                message_id=body.message_id, actor=who.name)
    return Response(status_code=204)


@router.post("/api/v1/newsletter/{item_key}/send", tags=["email"])
def newsletter(item_key: str, app: AppDep, who: Writer) -> dict[str, int]:
    """Queue a newsletter issue for every subscriber; the worker sends it within each
    contact's frequency cap."""
    who.need_role("admin", "marketer", what="send a newsletter")
    return {"queued": nurture.send_newsletter(uow=app.uow(), ctx=app.ctx, item_key=item_key)}
