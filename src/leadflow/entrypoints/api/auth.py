"""Who is calling: the API key of a request, checked against the scope a route needs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadflow.bootstrap import App
from leadflow.domain.errors import Unauthenticated
from leadflow.domain.users import Principal
from leadflow.services.access import ensure_contact_access
from leadflow.services.api_keys import authenticate
from leadflow.services.users import principal_for


def get_app(request: Request) -> App:
    app: App = request.app.state.leadflow
    return app


AppDep = Annotated[App, Depends(get_app)]


def token_of(authorization: str | None) -> str | None:
    """``Bearer <key>``, or HTTP Basic with the key as user name (as Segment SDKs send)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


# Declared so that the OpenAPI schema (and /docs's Authorize button) knows the scheme; the
# header is read by token_of, which also takes HTTP Basic.
BEARER = HTTPBearer(auto_error=False, description="A secret API key (`leadflow keys create`)")


def require(scope: str) -> Callable[..., Principal]:
    def check(request: Request,
              _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> Principal:
        app = get_app(request)
        header = request.headers.get("authorization")
        token = token_of(header)
        if header and token is None:
            raise Unauthenticated("send the key as 'Authorization: Bearer <key>'",
                                  field="authorization")
        key = authenticate(uow=app.reader(), ctx=app.ctx, token=token, needs=scope)
        principal = principal_for(uow=app.reader(), key=key)
        principal.need(scope)
        return principal
    return check


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def _contact_guard(scope: str) -> Callable[..., Principal]:
    # A default, not an Annotated hint: hints are strings here, and ``scope`` is not global.
    def check(contact_id: int, request: Request,
              principal: Principal = Depends(require(scope))) -> Principal:  # noqa: B008
        ensure_contact_access(uow=get_app(request).reader(), principal=principal,
                              contact_id=contact_id)
        return principal
    return check


# A contact route's caller, checked against the contact in the path: a rep reaches only the
# contacts they own, a manager their team's.
ContactReader = Annotated[Principal, Depends(_contact_guard("read"))]
ContactWriter = Annotated[Principal, Depends(_contact_guard("write"))]
