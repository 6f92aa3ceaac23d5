"""How far a long operation started from a page has got (polled by the page)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from leadflow.domain.errors import NotFound
from leadflow.entrypoints.web.progress import ProgressBoard
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import WebUser

router = web_router()


def board(request: Request) -> ProgressBoard:
    found: ProgressBoard = request.app.state.progress
    return found


@router.get("/progress/{operation_id}")
def progress(operation_id: str, request: Request, viewer: WebUser) -> Any:
    operation = board(request).get(operation_id, owner_id=viewer.user.id)
    if operation is None:
        raise NotFound("no such operation (it may have been started by another process)",
                       field="operation")
    return JSONResponse(operation.as_json(), headers={"Cache-Control": "no-store"})
