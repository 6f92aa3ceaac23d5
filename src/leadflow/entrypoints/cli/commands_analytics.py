"""Funnel analytics at the command line: conversion by group, time in stage, SLA per rep."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any

import typer

from leadflow.adapters.db.analytics_reads import SqlAnalyticsReads
from leadflow.adapters.db.attribution_reads import SqlAttributionReads
from leadflow.domain.analytics import BREAKDOWNS
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_sales import As, JsonOpt, principal
from leadflow.entrypoints.cli.output import console, print_json, table
from leadflow.services import analytics, attribution

analytics_app = typer.Typer(help="Funnel analytics: conversion, time in stage, SLA per rep.",
                            no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")

By = Annotated[str | None, typer.Option(
    "--by", help=f"Break down by {', '.join(BREAKDOWNS)}.")]
Item = Annotated[str | None, typer.Option(
    "--item", help="With --by content: contacts who consumed this content item (its key) "
                   "against the others.")]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    """3 min, 5.0 h, 2.3 d."""
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _group(name: str | None) -> str:
    return "(none)" if name is None else name


def _closing(g: dict[str, Any]) -> tuple[str, str]:
    p, o = g["prospects"], g["opportunities"]
    return (f"{_pct(p['closing_rate'])} ({p['won']}/{p['reached']})",
            f"{_pct(o['closing_rate'])} ({o['won']}/{o['won'] + o['lost']})")


@analytics_app.command("funnel")
@friendly_errors
def funnel_cmd(by: By = None, item: Item = None, as_user: As = None,
               as_json: JsonOpt = False) -> None:
    """Counts per stage, strict and cumulative conversion, closing rates, backward moves."""
    a = get_app()
    with a.engine.connect() as conn:
        report = analytics.funnel_report(reads=SqlAnalyticsReads(conn), ctx=a.ctx,
                                         principal=principal(as_user), by=by, item=item)
    body = analytics.funnel_summary(report)
    if as_json:
        print_json(body)
        return
    total = body["total"]
    if body["by"] is None:
        steps = {s["to"]: s for s in total["steps"]}
        rows = []
        for key, count in total["current"].items():
            step = steps.get(key)
            rows.append([key, count, total["reached"].get(key, "-"),
                         _pct(step["strict_rate"]) if step else "-",
                         _pct(step["cumulative_rate"]) if step else "-"])
        table(f"funnel: {total['contacts']:,} contacts", [
            "stage", "now", "reached", "strict from previous", "cumulative from previous"],
            rows)
    else:
        main = body["main_stages"]
        columns = ["group", "contacts", *[f"{a}→{b}" for a, b in pairwise(main)],
                   "prospects won", "deals won", "recycles", "disqualified"]
        rows = []
        for g in [*body["groups"], total]:
            rows.append([
                "all" if g is total else _group(g["group"]), g["contacts"],
                *[f"{_pct(s['strict_rate'])} / {_pct(s['cumulative_rate'])}"
                  for s in g["steps"]], *_closing(g),
                g["backward"]["recycles"], g["backward"]["disqualifications"]])
        what = f"content item {body['item']}" if body["item"] else body["by"]
        table(f"funnel by {what} (conversion: strict / cumulative)", columns, rows)
        if body["overlapping"]:
            console.print("a contact that consumed content of several maturities is in "
                          "each of their groups")
    prospects, deals = _closing(total)
    back = total["backward"]
    console.print(
        f"prospects won: {prospects}; deals won: {deals} ({total['opportunities']['open']} "
        f"open); backward moves: {back['recycles']} recycles ({back['recycled_contacts']} "
        f"contacts), {back['disqualifications']} disqualifications "
        f"({back['disqualified_contacts']} contacts), {back['other']} other")


@analytics_app.command("time-in-stage")
@friendly_errors
def time_cmd(by: By = None, item: Item = None, as_user: As = None,
             as_json: JsonOpt = False) -> None:
    """Median and 90th percentile of the time spent in each stage, by the stays that ended;
    how many are still in it."""
    a = get_app()
    with a.engine.connect() as conn:
        report = analytics.time_in_stage_report(
            reads=SqlAnalyticsReads(conn), ctx=a.ctx, principal=principal(as_user), by=by,
            item=item)
    body = analytics.time_summary(report)
    if as_json:
        print_json(body)
        return
    rows = [r for r in body["groups"] if r["left"] or r["still_in"]] if body["by"] else \
        body["total"]
    columns = ["stage", "left", "still in", "median", "p90"]
    if body["by"]:
        columns.insert(0, "group")
    table("time in stage" + (f" by {body['by']}" if body["by"] else ""), columns, [
        ([_group(r["group"])] if body["by"] else []) + [
            r["stage"], r["left"], r["still_in"], duration(r["median"]), duration(r["p90"])]
        for r in rows])


@analytics_app.command("sla")
@friendly_errors
def sla_cmd(as_user: As = None, as_json: JsonOpt = False) -> None:
    """Follow-up tasks per rep: done on time, late, open and overdue, open not yet due."""
    a = get_app()
    with a.engine.connect() as conn:
        report = analytics.sla_report(reads=SqlAnalyticsReads(conn), ctx=a.ctx,
                                      principal=principal(as_user))
    body = analytics.sla_summary(report)
    if as_json:
        print_json(body)
        return
    total = body["total"]
    table("SLA compliance of follow-up tasks", [
        "rep", "on time", "late", "overdue", "not due yet", "compliance"],
        [[r["name"] or r["email"] or r["owner_id"], r["on_time"], r["late"], r["overdue"],
          r["pending"], _pct(r["compliance"])] for r in body["reps"]]
        + [["all", total["on_time"], total["late"], total["overdue"], total["pending"],
            _pct(total["compliance"])]])


@analytics_app.command("attribution")
@friendly_errors
def attribution_cmd(
    model: Annotated[str, typer.Option("--model", help="first, last or linear.")] = "first",
    by: Annotated[str, typer.Option("--by", help="source, campaign or content.")] = "source",
    as_user: As = None, as_json: JsonOpt = False) -> None:
    """Customers and pipeline value credited to sources, campaigns or content: first-touch,
    last-touch or linear."""
    a = get_app()
    with a.engine.connect() as conn:
        report = attribution.attribution_report(
            reads=SqlAttributionReads(conn), ctx=a.ctx, principal=principal(as_user),
            model=model, by=by)
    body = attribution.attribution_summary(report)
    if as_json:
        print_json(body)
        return

    def money(values: dict[str, float]) -> str:
        return ", ".join(f"{v:,.2f} {cur}" for cur, v in sorted(values.items())) or "-"

    table(f"{body['model']}-touch attribution by {body['by']}"
          if body["model"] != "linear" else f"linear attribution by {body['by']}",
          [body["by"], "customers", "pipeline"],
          [[_group(g["group"]), f"{g['customers']:.2f}", money(g["pipeline"])]
           for g in body["groups"]]
          + [["all", body["customers"], money(body["pipeline"])]])
