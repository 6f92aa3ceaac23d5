"""The error tree, as HTTP: every error is JSON with a code, a message and the field."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from leadflow.domain.errors import (
    ConfigInvalid,
    Conflict,
    DeliveryUnknown,
    Forbidden,
    InvalidInput,
    LeadflowError,
    Merged,
    MoveNotAllowed,
    NotFound,
    Suppressed,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Undeliverable,
)

log = logging.getLogger("leadflow.api")

STATUS = {InvalidInput: 422, ConfigInvalid: 422, NotFound: 404, Conflict: 409,
          MoveNotAllowed: 409, Suppressed: 409, Unauthenticated: 401, Forbidden: 403,
          TooLarge: 413, Unavailable: 503, Undeliverable: 422,
          DeliveryUnknown: 502}


def status_of(exc: LeadflowError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, field: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def error_response(exc: LeadflowError, status: int | None = None) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, Merged):
        extra["merged_into"] = exc.survivor_id
    if isinstance(exc, ConfigInvalid):
        extra["problems"] = [{"location": p.location, "message": p.message}
                             for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JSONResponse(error_body(exc.code, exc.message, exc.field, **extra),
                        status_code=status or status_of(exc), headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    """Pydantic's location as the services name fields: ``events[1].type``."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(LeadflowError)
    async def leadflow_error(_: Request, exc: LeadflowError) -> JSONResponse:
        return error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            ctx = first.get("ctx")
            where = ctx.get("error", "") if isinstance(ctx, dict) else ""
            return JSONResponse(error_body("invalid_input", f"the body is not valid JSON "
                                           f"(at character {first['loc'][-1]}): {where}",
                                           "body"), status_code=422)
        field = _field(tuple(first.get("loc", ())))
        problems = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg")}
                    for e in exc.errors()]
        return JSONResponse(error_body("invalid_input", str(first.get("msg")), field,
                                       problems=problems), status_code=422)

    @api.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @api.exception_handler(OverflowError)
    async def overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse(error_body("invalid_input", "a number is out of range "
                                       f"(ids and counts stay below {2**31:,})"),
                            status_code=422)

    @api.exception_handler(DataError)
    async def data_error(_: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(error_body("invalid_input", "a value is out of range for the "
                                       "database: " + str(exc.orig).splitlines()[0]),
                            status_code=422)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal", "something went wrong on our side; "
                                       "it is logged"), status_code=500)
