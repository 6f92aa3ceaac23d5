"""REST: funnel analytics — conversion by group, time in stage, SLA per rep — over the
contacts (and tasks) the caller sees: everything for admins and marketers, a manager's team,
a rep's own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from leadflow.adapters.db.analytics_reads import SqlAnalyticsReads
from leadflow.adapters.db.attribution_reads import SqlAttributionReads
from leadflow.entrypoints.api.auth import AppDep, Reader
from leadflow.services import analytics, attribution

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

ByQuery = Annotated[Literal["cohort-week", "cohort-month", "source", "campaign", "persona",
                            "content"] | None,
                    Query(description="Break down by this (content: by the maturity of what "
                                      "each contact consumed, or with `item`, by one item)")]
ItemQuery = Annotated[str | None, Query(max_length=100,
                                        description="A content item's key (by=content)")]


class StepRead(BaseModel):
    from_: str = Field(alias="from")
    to: str
    reached_from: int
    reached_to: int
    strict: int = Field(description="Went from `from` directly to `to` (jumps pass every "
                                    "stage between)")
    strict_rate: float | None
    cumulative_rate: float | None = Field(description="reached_to / reached_from")


class ProspectsRead(BaseModel):
    reached: int
    won: int
    closing_rate: float | None


class DealsRead(BaseModel):
    won: int
    lost: int
    open: int
    closing_rate: float | None = Field(description="won / (won + lost)")


class BackwardRead(BaseModel):
    recycles: int
    disqualifications: int
    other: int
    recycled_contacts: int
    disqualified_contacts: int


class GroupRead(BaseModel):
    group: str | None
    contacts: int
    current: dict[str, int] = Field(description="Contacts in each stage now")
    reached: dict[str, int] = Field(description="Contacts that reached each main stage")
    steps: list[StepRead]
    prospects: ProspectsRead
    opportunities: DealsRead
    backward: BackwardRead


class FunnelRead(BaseModel):
    by: str | None
    item: str | None
    overlapping: bool = Field(description="Groups share contacts (content maturities)")
    main_stages: list[str]
    total: GroupRead
    groups: list[GroupRead]


class StageTimeRead(BaseModel):
    group: str | None
    stage: str
    left: int = Field(description="Stays in the stage that ended")
    still_in: int
    median: float | None = Field(description="Seconds (nearest rank)")
    p90: float | None = Field(description="Seconds (nearest rank)")


class TimeInStageRead(BaseModel):
    by: str | None
    item: str | None
    stages: list[str]
    total: list[StageTimeRead]
    groups: list[StageTimeRead]


class SlaTotalRead(BaseModel):
    on_time: int
    late: int
    overdue: int
    pending: int
    due: int
    compliance: float | None


class SlaRepRead(SlaTotalRead):
    owner_id: int
    name: str | None
    email: str | None


class SlaRead(BaseModel):
    now: float
    reps: list[SlaRepRead]
    total: SlaTotalRead


@router.get("/funnel", response_model=FunnelRead, response_model_by_alias=True)
def funnel_get(app: AppDep, who: Reader, by: ByQuery = None,
               item: ItemQuery = None) -> dict[str, Any]:
    """Counts per stage now; contacts that reached each main stage; strict and cumulative
    conversion between consecutive main stages; closing rates of prospects (→ won stage)
    and of deals (won / (won + lost)); backward moves (recycles, disqualifications, other) —
    in total and per group."""
    with app.engine.connect() as conn:
        report = analytics.funnel_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                         principal=who, by=by, item=item)
    return analytics.funnel_summary(report)


@router.get("/time-in-stage", response_model=TimeInStageRead)
def time_in_stage_get(app: AppDep, who: Reader, by: ByQuery = None,
                      item: ItemQuery = None) -> dict[str, Any]:
    """Median and 90th percentile of the seconds spent in each stage (stays that ended),
    and the stays not ended yet, in total and per group."""
    with app.engine.connect() as conn:
        report = analytics.time_in_stage_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                                principal=who, by=by, item=item)
    return analytics.time_summary(report)


@router.get("/sla", response_model=SlaRead)
def sla_get(app: AppDep, who: Reader) -> dict[str, Any]:
    """Follow-up tasks per owner: done on time, done late, open and overdue, open not due
    yet; compliance = on time / (on time + late + overdue)."""
    with app.engine.connect() as conn:
        report = analytics.sla_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                      principal=who)
    return analytics.sla_summary(report)


class AttributionGroupRead(BaseModel):
    group: str | None = Field(description="None: converting contacts without a touch")
    customers: float = Field(description="Customers credited (shares under linear)")
    pipeline: dict[str, float] = Field(description="Open and won deal value, per currency")


class AttributionRead(BaseModel):
    model: str
    by: str
    customers: int
    pipeline: dict[str, float]
    groups: list[AttributionGroupRead]


@router.get("/attribution", response_model=AttributionRead)
def attribution_get(
    app: AppDep, who: Reader,
    model: Annotated[Literal["first", "last", "linear"], Query()] = "first",
    by: Annotated[Literal["source", "campaign", "content"], Query()] = "source",
) -> dict[str, Any]:
    """Customers (1 each) and pipeline value (open and won deals) credited to the sources,
    campaigns or content items that touched each contact before it converted: all to the
    first touch, all to the last, or equal shares (linear)."""
    with app.engine.connect() as conn:
        report = attribution.attribution_report(reads=SqlAttributionReads(conn),
                                                ctx=app.ctx, principal=who, model=model,
                                                by=by)
    return attribution.attribution_summary(report)
