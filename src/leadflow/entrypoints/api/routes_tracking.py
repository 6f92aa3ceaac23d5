"""The Segment-compatible tracking API, the browser SDK's settings, and the /t.js snippet.

Answers as Segment does, because SDKs do not retry a 4xx: a body that is not JSON or is too
large gets 400 and nothing is stored; otherwise 200, with each invalid message dropped on its
own (listed in the answer and the log) while its valid neighbours are stored.
"""

from __future__ import annotations

import logging
import math
import zlib
from importlib.resources import files
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from leadflow.domain.access import TRACK
from leadflow.domain.errors import (
    ConcurrentChange,
    InvalidInput,
    LeadflowError,
    TooLarge,
    Unavailable,
)
from leadflow.entrypoints.api.auth import get_app, token_of
from leadflow.entrypoints.api.errors import error_body, error_response
from leadflow.entrypoints.metrics import EVENTS_DUPLICATE, EVENTS_REJECTED, EVENTS_STORED
from leadflow.services.api_keys import authenticate
from leadflow.services.tracking import take_messages
from leadflow.services.tracking_messages import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SHORT_TYPES,
    Envelope,
)

log = logging.getLogger("leadflow.tracking")
router = APIRouter(tags=["tracking"])


def _decoded(raw: bytes, encoding: str | None, limit: int) -> bytes:
    if len(raw) > limit:
        raise TooLarge(f"the body is larger than {limit // 1024} KB", field="body")
    if encoding and encoding.strip().lower() == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise InvalidInput("the body is not valid gzip", field="body") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"the body is larger than {limit // 1024} KB once unzipped",
                           field="body")
        return data
    return raw


async def _take(request: Request, kind: str | None) -> Response:
    app = get_app(request)
    limit = MAX_BATCH_BYTES if kind is None else MAX_MESSAGE_BYTES
    try:
        raw = _decoded(await request.body(), request.headers.get("content-encoding"), limit)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        token = token_of(request.headers.get("authorization")) or body.get("writeKey")
        key = await run_in_threadpool(lambda: authenticate(
            uow=app.reader(), ctx=app.ctx, token=token if isinstance(token, str) else None,
            needs=TRACK))
        wait = request.app.state.rate_limiter.allow(key.prefix)
        if wait is not None:
            # Whole seconds, rounded up: "0" would tell the client to come back at once.
            return JSONResponse(error_body("rate_limited", "too many requests; slow down"),
                                status_code=429,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if kind is None:
            messages = body.get("batch")
            if not isinstance(messages, list):
                raise InvalidInput("a batch needs a 'batch' list of messages", field="batch")
            context = body.get("context")
            envelope = Envelope(received_at=app.clock.now(),
                                context=context if isinstance(context, dict) else {},
                                sent_at=body.get("sentAt"), ip=_ip(request))
            oversize = frozenset(i for i, m in enumerate(messages)
                                 if len(orjson.dumps(m)) > MAX_MESSAGE_BYTES)
        else:
            messages = [body]
            envelope = Envelope(received_at=app.clock.now(), ip=_ip(request))
            oversize = frozenset()
    except LeadflowError as exc:
        log.warning("tracking request refused",
                    extra={"path": request.url.path, "error": str(exc)})
        return error_response(exc, 400 if isinstance(exc, InvalidInput | TooLarge) else None)
    try:
        result = await run_in_threadpool(lambda: take_messages(
            uow=app.uow(), ctx=app.ctx, messages=messages, envelope=envelope, kind=kind,
            oversize=oversize, together=request.app.state.tracking_together))
    except (ConcurrentChange, Unavailable) as exc:
        # SDKs drop a batch answered 4xx but retry a 5xx: this one must come again.
        log.warning("tracking request deferred", extra={"path": request.url.path,
                                                        "error": str(exc)})
        return JSONResponse(error_body(exc.code, exc.message), status_code=503,
                            headers={"Retry-After": "1"})
    EVENTS_STORED.inc(result.stored)
    EVENTS_DUPLICATE.inc(result.duplicates)
    for rejected in result.rejected:
        EVENTS_REJECTED.labels(reason=rejected.field or "message").inc()
        log.warning("tracking message dropped", extra={"path": request.url.path,
                                                       **rejected.as_dict()})
    return JSONResponse({"success": True, "stored": result.stored,
                         "duplicates": result.duplicates,
                         "rejected": [r.as_dict() for r in result.rejected]})


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _route(kind: str | None) -> Any:
    async def take(request: Request) -> Response:
        return await _take(request, kind)
    take.__name__ = f"track_{kind or 'batch'}"
    take.__doc__ = (f"Segment `{kind}` call." if kind else
                    "Segment batch: `{batch: [...], context, sentAt}`.")
    return take


for _short, _kind in SHORT_TYPES.items():
    router.add_api_route(f"/v1/{_kind}", _route(_kind), methods=["POST"])
    router.add_api_route(f"/v1/{_short}", _route(_kind), methods=["POST"],
                         include_in_schema=False)
router.add_api_route("/v1/batch", _route(None), methods=["POST"])
router.add_api_route("/v1/b", _route(None), methods=["POST"], include_in_schema=False)
router.add_api_route("/v1/import", _route(None), methods=["POST"], include_in_schema=False)


@router.get("/v1/projects/{write_key}/settings")
async def project_settings(write_key: str, request: Request) -> Response:
    """The settings analytics.js loads at start: send everything to this server."""
    app = get_app(request)
    try:
        await run_in_threadpool(lambda: authenticate(uow=app.reader(), ctx=app.ctx,
                                                     token=write_key, needs=TRACK))
    except LeadflowError:
        return JSONResponse(error_body("not_found", f"no live write key {write_key!r}",
                                       "writeKey"), status_code=404)
    host = f"{request.url.netloc}/v1"
    return JSONResponse({
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": host,
                                        "protocol": request.url.scheme,
                                        "unbundledIntegrations": [],
                                        "addBundledMetadata": True}},
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                 "identify": {"__default": {"enabled": True}},
                 "group": {"__default": {"enabled": True}}},
        "edgeFunction": {}, "analyticsNextEnabled": True, "middlewareSettings": {},
        "enabledMiddleware": {}, "metrics": {"sampleRate": 0}, "legacyVideoPluginsEnabled":
        False, "remotePlugins": [],
    })


SNIPPET = files("leadflow.entrypoints.api").joinpath("t.js").read_text()


@router.get("/t.js", include_in_schema=False)
async def snippet() -> Response:
    """First-party tracking: page views and form submissions, sent with the public key."""
    return Response(SNIPPET, media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=300"})
