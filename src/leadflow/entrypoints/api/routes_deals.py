"""REST: opportunities (create, change, win, lose, list) and the prospecting plan."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from leadflow.adapters.db.sales_read_models import SqlSalesReads
from leadflow.domain.users import SALES_ROLES
from leadflow.entrypoints.api.auth import AppDep, ContactWriter, Reader, Writer
from leadflow.entrypoints.api.schemas_sales import (
    OpportunityCreate,
    OpportunityLose,
    OpportunityPage,
    OpportunityRead,
    OpportunityUpdate,
    PlanRead,
)
from leadflow.services import opportunities as deals
from leadflow.services.access import visible_opportunity
from leadflow.services.plan import plan_summary, prospecting_plan

router = APIRouter(prefix="/api/v1")


@router.post("/contacts/{contact_id}/opportunities", response_model=OpportunityRead,
             status_code=201, tags=["opportunities"])
def opportunities_create(contact_id: int, body: OpportunityCreate, app: AppDep,
                         who: ContactWriter) -> dict[str, Any]:
    """The contact agreed to commit: a deal opens and the contact enters the commit stage."""
    return asdict(deals.create_opportunity(
        uow_factory=app.uow, ctx=app.ctx, contact_id=contact_id, actor=who.name,
        owner_id=who.user_id if who.role in SALES_ROLES else None, **body.model_dump()))


@router.get("/opportunities", response_model=OpportunityPage, tags=["opportunities"])
def opportunities_list(app: AppDep, who: Reader, status: str | None = None,
                       deal_stage: str | None = None, owner_id: int | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Deals the caller may see (a rep: theirs), newest first, with filters."""
    with app.engine.connect() as conn:
        items, total = deals.list_opportunities(
            reads=SqlSalesReads(conn), ctx=app.ctx, principal=who, status=status,
            deal_stage=deal_stage, owner_id=owner_id, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/opportunities/{opportunity_id}", response_model=OpportunityRead,
            tags=["opportunities"])
def opportunities_get(opportunity_id: int, app: AppDep, who: Reader) -> dict[str, Any]:
    return asdict(visible_opportunity(uow=app.reader(), principal=who,
                                      opportunity_id=opportunity_id))


@router.patch("/opportunities/{opportunity_id}", response_model=OpportunityRead,
              tags=["opportunities"])
def opportunities_update(opportunity_id: int, body: OpportunityUpdate, app: AppDep,
                         who: Writer) -> dict[str, Any]:
    """Amount, currency, close date, deal stage (its default probability follows unless
    one is given), probability, next step."""
    visible_opportunity(uow=app.reader(), principal=who, opportunity_id=opportunity_id)
    return asdict(deals.update_opportunity(uow=app.uow(), ctx=app.ctx,
                                           opportunity_id=opportunity_id, actor=who.name,
                                           changes=body.model_dump(exclude_unset=True)))


@router.post("/opportunities/{opportunity_id}/win", response_model=OpportunityRead,
             tags=["opportunities"])
def opportunities_win(opportunity_id: int, app: AppDep, who: Writer) -> dict[str, Any]:
    """Won: the contact becomes a customer."""
    visible_opportunity(uow=app.reader(), principal=who, opportunity_id=opportunity_id)
    return asdict(deals.win_opportunity(uow_factory=app.uow, ctx=app.ctx,
                                        opportunity_id=opportunity_id, actor=who.name))


@router.post("/opportunities/{opportunity_id}/lose", response_model=OpportunityRead,
             tags=["opportunities"])
def opportunities_lose(opportunity_id: int, body: OpportunityLose, app: AppDep,
                       who: Writer) -> dict[str, Any]:
    """Lost, with a configured reason; the contact goes back to nurture or is disqualified
    (never erased)."""
    visible_opportunity(uow=app.reader(), principal=who, opportunity_id=opportunity_id)
    return asdict(deals.lose_opportunity(uow_factory=app.uow, ctx=app.ctx,
                                         opportunity_id=opportunity_id, actor=who.name,
                                         **body.model_dump()))


@router.get("/plan", response_model=PlanRead, tags=["sales"])
def plan_get(app: AppDep, who: Reader,
             target: Annotated[float, Query(ge=0, description="In the reporting currency")],
             capacity: Annotated[int, Query(ge=0, description="Accounts the team can open")],
             budget: Annotated[float, Query(ge=0, description="Follow-up budget")],
             pool: Annotated[int | None, Query(ge=1, description="Look at the N most "
                                                               "engaged only")] = None
             ) -> dict[str, Any]:
    """The prospecting plan: whom to work, the expected sales volume (Σ probability ×
    value), the shortfall against the target, the new leads it takes, and each one's
    follow-up channel."""
    with app.engine.connect() as conn:
        plan = prospecting_plan(reads=SqlSalesReads(conn), ctx=app.ctx, principal=who,
                                target=target, capacity_accounts=capacity, budget=budget,
                                limit_pool=pool)
    return plan_summary(plan)
