"""leadflow backtest: replay history under candidate scoring rules and MQL/SQL thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.adapters.config_file import parse_config_text, read_config_file
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.domain.backtest import DEFAULT_MIN_FLAGGED, METRICS, parse_thresholds
from leadflow.domain.choices import day_start
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_sales import As, JsonOpt, principal
from leadflow.entrypoints.cli.output import RichProgress, console, print_json, table
from leadflow.services.backtest import backtest_summary, run_backtest

KIND_NAMES = {"mql": "MQL", "sql": "SQL (hand-off)"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, form: str = ".3f") -> str:
    return "-" if value is None else format(value, form)


CURRENT, SUGGESTED = "•", "★"


def print_sweep(sweep: dict[str, Any]) -> None:
    """One row per threshold; narrow enough for 80 columns (a pipe's width)."""
    metric = sweep["metric"]
    suggested = sweep["suggested"]
    extra = metric not in ("precision", "recall")  # else its column is there already
    rows = []
    for r in sweep["thresholds"]:
        marks = (CURRENT if r["current"] else "") + (
            SUGGESTED if suggested is not None and r["threshold"] == suggested["threshold"]
            else "")
        rows.append([f"{r['threshold']:g} {marks}".strip(), f"{r['flagged']:,}",
                     f"{r['converted']:,}", _pct(r["precision"]), _pct(r["recall"]),
                     *([_num(r["scores"][metric])] if extra else []),
                     _num(r["lift"], ".1f"), _num(r["median_days_saved"], ".1f"),
                     _num(r["median_days_ahead"], ".1f")])
    kind = KIND_NAMES.get(sweep["kind"], sweep["kind"])
    table(f"{kind} threshold ({sweep['rule']}): base rate {_pct(sweep['base_rate'])}",
          ["score ≥", "flagged", "buyers", "prec.", "recall", *([metric] if extra else []),
           "lift", "days\nsaved", "days\nahead"], rows)
    if suggested is None:
        console.print(f"No {kind} threshold flags {sweep['min_flagged']} contacts or more: "
                      "nothing to suggest.", highlight=False)
    else:
        console.print(
            f"{SUGGESTED} suggested {kind} threshold: {suggested['threshold']:g} ({metric} "
            f"{_num(suggested['scores'][metric])}); {CURRENT} current: "
            f"{sweep['current']:g}.", highlight=False)


@app.command("backtest")
@friendly_errors
def backtest_cmd(
    config: Annotated[Path | None, typer.Option(
        "--config", help="Candidate configuration (YAML) to replay history under; "
                         "default: the one in force.")] = None,
    mql: Annotated[str | None, typer.Option(
        "--mql", help="MQL thresholds to try: 20,30,45 or from:to:step (10:120:10); "
                      "default: a quarter of the current threshold to three times it.")] = None,
    sql: Annotated[str | None, typer.Option(
        "--sql", help="Thresholds to try on the hand-off (SQL) rule's engagement test, "
                      "written as --mql.")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", help=f"What the suggestion maximises: {', '.join(METRICS)}.")] = "f1",
    min_flagged: Annotated[int, typer.Option(
        "--min-flagged", help="A suggested threshold flags at least this many contacts."
    )] = DEFAULT_MIN_FLAGGED,
    created_before: Annotated[str | None, typer.Option(
        "--created-before", help="Only contacts created before this day (2026-06-01): "
                                 "cohorts old enough to have bought.")] = None,
    as_user: As = None, as_json: JsonOpt = False,
) -> None:
    """Replay every contact's events under candidate scoring rules: for each MQL and SQL
    threshold, how many contacts it flags, precision and recall of flagged → customer, median
    days saved against the configuration in force, and the threshold that maximises a metric."""
    a = get_app()
    candidate = None
    if config is not None:
        candidate = parse_config_text(read_config_file(config), source=str(config))
    thresholds = {"mql": parse_thresholds(mql, field_name="mql") if mql else None,
                  "sql": parse_thresholds(sql, field_name="sql") if sql else None}
    before = day_start(created_before, field="created-before") if created_before else None
    with a.engine.connect() as conn:
        report = run_backtest(
            reads=SqlBacktestReads(conn), ctx=a.ctx, principal=principal(as_user),
            progress=RichProgress(enabled=not as_json), candidate=candidate,
            mql_thresholds=thresholds["mql"], sql_thresholds=thresholds["sql"],
            metric=metric.strip().lower(), min_flagged=min_flagged,
            created_before=before)
    body = backtest_summary(report)
    if as_json:
        print_json(body)
        return
    source = "the configuration in force" if body["in_force"] else str(config)
    console.print(f"Replayed {body['contacts']:,} contacts ({body['customers']:,} became "
                  f"customers) under {source}, {body['config_version']}.", highlight=False)
    if body["left_out"]:
        console.print(f"Left out: {body['left_out']:,} customers imported as such or with no "
                      "behaviour recorded before they bought (no threshold could flag them "
                      "first).", highlight=False)
    for sweep in body["sweeps"]:
        print_sweep(sweep)
    if len(body["sweeps"]) == 1:
        console.print("The hand-off rule tests no engagement: no SQL threshold to vary.",
                      highlight=False)
    console.print("Flagged: contacts the rule would have picked (buyers: before they bought); "
                  "precision: share of the flagged contacts that became customers; recall: "
                  "share of customers flagged before they bought; lift: precision over the base "
                  "rate; days saved: median, over the customers flagged, of how much sooner "
                  "than the configuration in force (or than the purchase, where it missed "
                  "them); days ahead: median time from the flag to the purchase.",
                  highlight=False, style="dim")
