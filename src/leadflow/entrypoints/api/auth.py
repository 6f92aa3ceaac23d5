"""Who is calling: the API key of a request, checked against the scope a route needs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from leadflow.bootstrap import App
from leadflow.domain.access import ApiKey
from leadflow.services.api_keys import authenticate


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


def require(scope: str) -> Callable[[Request], ApiKey]:
    def check(request: Request) -> ApiKey:
        app = get_app(request)
        return authenticate(uow=app.reader(), ctx=app.ctx,
                            token=token_of(request.headers.get("authorization")), needs=scope)
    return check


Reader = Annotated[ApiKey, Depends(require("read"))]
Writer = Annotated[ApiKey, Depends(require("write"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
