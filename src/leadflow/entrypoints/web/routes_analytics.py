"""Pages: analytics (being built)."""

from __future__ import annotations

from leadflow.entrypoints.web.routing import web_router

router = web_router()
