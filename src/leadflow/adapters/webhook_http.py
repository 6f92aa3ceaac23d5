"""Posting webhook deliveries over HTTP."""

from __future__ import annotations

import httpx

from leadflow.domain.ports import HttpReply


class HttpxSender:
    def __init__(self, timeout: float) -> None:
        self.client = httpx.Client(timeout=timeout, follow_redirects=False,
                                   headers={"User-Agent": "leadflow-webhooks/1"})

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpReply:
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return HttpReply(status_code=None, error=f"{type(exc).__name__}: {exc}"[:500])
        return HttpReply(status_code=response.status_code,
                         error=None if response.is_success else response.text[:500] or None)
