"""The route class of web pages: left out of the API's OpenAPI schema, and known to the
error handlers, which answer a page's errors in HTML."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute


class WebRoute(APIRoute):
    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        kwargs["include_in_schema"] = False
        super().__init__(path, endpoint, **kwargs)


def web_router() -> APIRouter:
    return APIRouter(route_class=WebRoute)
