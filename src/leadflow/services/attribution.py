"""Attribution of customers and pipeline to sources, campaigns and content, over the
contacts the principal sees (a rep: their own). The models are in ``domain.attribution``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from leadflow.domain.attribution import (
    DIMENSIONS,
    MODELS,
    AttributionReport,
    Converting,
    attribute,
)
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import Principal
from leadflow.services.context import Context


class AttributionReads(Protocol):
    """adapters/db/attribution_reads."""

    def converting(self, *, won_stages: Sequence[str],
                   owners: tuple[int, ...] | None = None) -> list[Converting]: ...


def attribution_report(*, reads: AttributionReads, ctx: Context, principal: Principal,
                       model: str = "first", by: str = "source") -> AttributionReport:
    """Customers and pipeline value credited to the groups of ``by`` under ``model``."""
    model, by = (model or "").strip().lower(), (by or "").strip().lower()
    if model not in MODELS:
        raise InvalidInput(f"model is one of {', '.join(MODELS)}, not {model!r}",
                           field="model")
    if by not in DIMENSIONS:
        raise InvalidInput(f"attribute to one of {', '.join(DIMENSIONS)}, not {by!r}",
                           field="by")
    won = [s.key for s in ctx.config.stages_with_role("won")]
    found = reads.converting(won_stages=won, owners=principal.visible_owners)
    return attribute(found, model=model, by=by)


def attribution_summary(report: AttributionReport) -> dict[str, Any]:
    """The report as plain data (what the API answers and the CLI prints)."""
    return {"model": report.model, "by": report.by, "customers": report.customers,
            "pipeline": dict(report.pipeline),
            "groups": [{"group": g.group, "customers": g.customers,
                        "pipeline": dict(g.pipeline)} for g in report.groups]}
