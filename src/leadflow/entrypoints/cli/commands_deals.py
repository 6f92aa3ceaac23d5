"""Opportunities (deals) and the prospecting plan at the command line."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from leadflow.adapters.db.sales_read_models import SqlSalesReads
from leadflow.domain.users import SALES_ROLES
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_sales import As, JsonOpt, Ref, contact_for, principal
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import opportunities as deals
from leadflow.services.access import visible_opportunity
from leadflow.services.plan import plan_summary, prospecting_plan

deal_app = typer.Typer(help="Opportunities: create, list, change, win, lose.",
                       no_args_is_help=True)
app.add_typer(deal_app, name="deal")
DealId = Annotated[int, typer.Argument(help="Opportunity id")]


def _show(deal: Any, as_json: bool) -> None:
    if as_json:
        print_json(asdict(deal))
        return
    console.print(f"deal {deal.id} ({deal.status}): {deal.name}, {deal.amount:,.2f} "
                  f"{deal.currency}, {deal.deal_stage} at {deal.probability:.0%}")


@deal_app.command("create")
@friendly_errors
def deal_create(ref: Ref, name: Annotated[str, typer.Option("--name")],
                amount: Annotated[float, typer.Option("--amount")],
                currency: Annotated[str, typer.Option("--currency")] = "EUR",
                stage: Annotated[str | None, typer.Option("--stage")] = None,
                close: Annotated[str | None, typer.Option(
                    "--close", help="Expected close date (YYYY-MM-DD)")] = None,
                next_step: Annotated[str | None, typer.Option("--next-step")] = None,
                as_user: As = None, as_json: JsonOpt = False) -> None:
    """The contact agreed to commit: open a deal (the contact becomes an opportunity)."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    _show(deals.create_opportunity(uow_factory=a.uow, ctx=a.ctx, contact_id=cid, name=name,
                                   amount=amount, currency=currency, deal_stage=stage,
                                   expected_close=close, next_step=next_step, actor=who.name,
                                   owner_id=who.user_id if who.role in SALES_ROLES else None),
          as_json)


@deal_app.command("list")
@friendly_errors
def deal_list(status: Annotated[str | None, typer.Option(help="open, won or lost")] = None,
              stage: Annotated[str | None, typer.Option("--stage")] = None,
              limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
              as_user: As = None, as_json: JsonOpt = False) -> None:
    """Deals you may see, newest first."""
    a = get_app()
    with a.engine.connect() as conn:
        items, total = deals.list_opportunities(
            reads=SqlSalesReads(conn), ctx=a.ctx, principal=principal(as_user), status=status,
            deal_stage=stage, limit=limit)
    if as_json:
        print_json({"items": items, "total": total})
        return
    table(f"opportunities ({total})", ["id", "contact", "name", "amount", "stage", "prob.",
                                       "status", "expected close", "created"],
          [[d["id"], d["contact_id"], d["name"], f"{d['amount']:,.2f} {d['currency']}",
            d["deal_stage"], f"{d['probability']:.0%}", d["status"], d["expected_close"],
            when(d["created_at"])] for d in items])


@deal_app.command("update")
@friendly_errors
def deal_update(deal_id: DealId,
                stage: Annotated[str | None, typer.Option("--stage")] = None,
                amount: Annotated[float | None, typer.Option("--amount")] = None,
                probability: Annotated[float | None, typer.Option("--probability")] = None,
                close: Annotated[str | None, typer.Option("--close")] = None,
                next_step: Annotated[str | None, typer.Option("--next-step")] = None,
                as_user: As = None, as_json: JsonOpt = False) -> None:
    """Change a deal: stage (its default probability follows), amount, probability..."""
    a = get_app()
    who = principal(as_user)
    visible_opportunity(uow=a.reader(), principal=who, opportunity_id=deal_id)
    changes = {k: v for k, v in (("deal_stage", stage), ("amount", amount),
                                 ("probability", probability), ("expected_close", close),
                                 ("next_step", next_step)) if v is not None}
    _show(deals.update_opportunity(uow=a.uow(), ctx=a.ctx, opportunity_id=deal_id,
                                   changes=changes, actor=who.name), as_json)


@deal_app.command("win")
@friendly_errors
def deal_win(deal_id: DealId, as_user: As = None, as_json: JsonOpt = False) -> None:
    """Won: the contact becomes a customer."""
    a = get_app()
    who = principal(as_user)
    visible_opportunity(uow=a.reader(), principal=who, opportunity_id=deal_id)
    _show(deals.win_opportunity(uow_factory=a.uow, ctx=a.ctx, opportunity_id=deal_id,
                                actor=who.name), as_json)


@deal_app.command("lose")
@friendly_errors
def deal_lose(deal_id: DealId, reason: Annotated[str, typer.Option("--reason", "-r")],
              then: Annotated[str | None, typer.Option(
                  "--then", help="nurture or disqualify (default: sales.lost_next)")] = None,
              as_user: As = None, as_json: JsonOpt = False) -> None:
    """Lost, with a configured reason: the contact goes back to nurture or is disqualified."""
    a = get_app()
    who = principal(as_user)
    visible_opportunity(uow=a.reader(), principal=who, opportunity_id=deal_id)
    _show(deals.lose_opportunity(uow_factory=a.uow, ctx=a.ctx, opportunity_id=deal_id,
                                 reason=reason, then=then, actor=who.name), as_json)


@app.command("plan")
@friendly_errors
def plan(target: Annotated[float, typer.Option("--target", help="Sales target")],
         capacity: Annotated[int, typer.Option("--capacity", help="Accounts the team can "
                                                                  "open")],
         budget: Annotated[float, typer.Option("--budget", help="Follow-up budget")],
         pool: Annotated[int | None, typer.Option(help="Only the N most engaged")] = None,
         show: Annotated[int, typer.Option(help="Rows to show")] = 20,
         as_user: As = None, as_json: JsonOpt = False) -> None:
    """The prospecting plan: whom to work, expected volume, shortfall, new leads needed."""
    a = get_app()
    with a.engine.connect() as conn:
        made = prospecting_plan(reads=SqlSalesReads(conn), ctx=a.ctx,
                                principal=principal(as_user), target=target,
                                capacity_accounts=capacity, budget=budget, limit_pool=pool)
    body = plan_summary(made)
    if as_json:
        print_json(body)
        return
    cur = body["reporting_currency"]
    table(f"plan: {len(body['items'])} to work", ["contact", "name", "stage", "temp.",
                                                  "prob.", "value", "expected", "channel"],
          [[i["contact_id"], i["name"], i["stage"], i["temperature"],
            f"{i['probability']:.1%}", f"{i['value']:,.0f}", f"{i['expected']:,.0f}",
            i["channel"]] for i in body["items"][:show]])
    needed = body["new_leads_needed"]
    console.print(
        f"expected volume {body['expected_volume']:,.0f} {cur} of {body['target']:,.0f}; "
        f"shortfall {body['shortfall']:,.0f} {cur}; accounts {body['accounts_used']}; "
        f"budget used {body['budget_used']:,.0f}; new leads needed: "
        + ("unknown (no conversion history)" if needed is None else f"{needed:,}"))
