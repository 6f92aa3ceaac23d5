"""Set-up and whole-database commands: init, config check, rescore, funnel, prospects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadflow.adapters.config_file import DEFAULT_NAME, load_config
from leadflow.adapters.db.read_models import funnel, hottest_prospects, late_contacts
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import RichProgress, console, print_json, table
from leadflow.services.rescore import check_scores, rescore_all
from leadflow.services.temperatures import refresh_expired_temperatures

config_app = typer.Typer(help="Check the lifecycle configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@app.command()
@friendly_errors
def init() -> None:
    """Create the database (or bring its schema up to date)."""
    a = get_app()
    a.engine  # noqa: B018  (creating the engine migrates the schema)
    console.print(f"database ready: {a.settings.resolved_database_url}")
    console.print(f"lifecycle configuration {a.config.config_version} "
                  f"({a.settings.pipeline_in_use or DEFAULT_NAME})")


@config_app.command("check")
@friendly_errors
def config_check(
    path: Annotated[Path | None, typer.Argument(help="YAML file (default: the one in use)")] = None,
) -> None:
    """Validate a lifecycle configuration file; name every problem with its location."""
    target = path or get_app().settings.pipeline_in_use
    cfg = load_config(target)
    console.print(f"[green]ok[/green] {target or DEFAULT_NAME}: version {cfg.config_version}, "
                  f"{len(cfg.stages)} stages, {len(cfg.milestones)} milestones, "
                  f"{len(cfg.engagement.rules)} scoring rules, {len(cfg.fit.personas)} personas")


@app.command()
@friendly_errors
def rescore(
    check: Annotated[bool, typer.Option("--check", help="Compare with stored scores; "
                                        "write nothing; exit 1 on any difference.")] = False,
    limit: Annotated[int, typer.Option(help="Differences to list at most.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every contact's engagement from raw events under the current rules."""
    a = get_app()
    progress = RichProgress(enabled=not as_json)
    if check:
        report = check_scores(scoring=a.bulk_scoring(), progress=progress, limit=limit)
        if as_json:
            print_json({"differing_contacts": report.differing_contacts,
                        "differences": [d.__dict__ for d in report.differences]})
        else:
            for d in report.differences:
                console.print(f"contact {d.contact_id} {d.field}: stored {d.stored!r}, "
                              f"recomputed {d.recomputed!r}", highlight=False)
            console.print(f"{report.differing_contacts} contact(s) differ")
        if report.differing_contacts:
            raise typer.Exit(1)
        return
    with a.engine.connect() as conn:
        def late(watermark: int) -> list[int]:
            return late_contacts(conn, watermark)

        report = rescore_all(scoring=a.bulk_scoring(), progress=progress, uow_factory=a.uow,
                             ctx=a.ctx, late_contacts=late)
    if as_json:
        print_json({"contacts_changed": report.contacts_changed, "caught_up": report.caught_up})
    else:
        console.print(f"rescored every contact: {report.contacts_changed} changed "
                      f"({report.caught_up} caught up after events that arrived meanwhile)")


@app.command("funnel")
@friendly_errors
def funnel_cmd(as_json: JsonOpt = False) -> None:
    """Contacts per stage and the conversion between consecutive stages."""
    a = get_app()
    with a.engine.connect() as conn:
        data = funnel(conn, a.config)
    if as_json:
        print_json(data)
        return
    reached = {r["stage"]: r["count"] for r in data["reached"]}
    conv = {c["to"]: c["conversion"] for c in data["conversion"]}
    rows = []
    for s in data["stages"]:
        rate = conv.get(s["stage"])
        rows.append([s["name"], s["role"], f"{s['count']:,}",
                     f"{reached[s['stage']]:,}" if s["stage"] in reached else "",
                     f"{rate:.1%}" if rate is not None else ""])
    table("Funnel", ["stage", "role", "now", "ever reached", "conversion from previous"], rows)
    table(None, ["milestone", "contacts"],
          [[m["milestone"], f"{m['count']:,}"] for m in data["milestones"]])


@app.command()
@friendly_errors
def prospects(
    limit: Annotated[int, typer.Option(help="How many.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Prospects in work-queue order: hottest first, then by engagement."""
    a = get_app()
    refresh_expired_temperatures(uow_factory=a.uow, ctx=a.ctx)
    with a.engine.connect() as conn:
        rows = hottest_prospects(conn, a.config, now=a.clock.now(), limit=limit)
    if as_json:
        print_json(rows)
        return
    table(f"{len(rows)} hottest prospects", ["id", "name", "email", "temperature", "grade",
                                             "persona", "engagement"],
          [[r["id"], r["name"], r["email"], r["temperature"], r["fit_grade"], r["persona"],
            r["engagement"]] for r in rows])


@app.command("temperatures")
@friendly_errors
def temperatures(as_json: JsonOpt = False) -> None:
    """Refresh temperatures that time alone has changed (run it daily, or let lists do it)."""
    a = get_app()
    n = refresh_expired_temperatures(uow_factory=a.uow, ctx=a.ctx)
    if as_json:
        print_json({"refreshed": n})
    else:
        console.print(f"refreshed {n} temperature(s)")


@app.command()
@friendly_errors
def demo(
    contacts: Annotated[int, typer.Option(min=10, help="How many contacts to generate.")]
    = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same business.")] = 7,
    reset: Annotated[bool, typer.Option("--reset", help="Replace what the database holds.")]
    = False,
) -> None:
    """Generate a believable business: accounts, contacts on every stage, 6 months of events."""
    from leadflow.demo.install import install_demo
    from leadflow.demo.sales_team import DEMO_PASSWORD

    a = get_app()
    totals = install_demo(a, contacts=contacts, seed=seed, progress=RichProgress(),
                          replace=reset)
    console.print(f"demo ready: {totals['contacts']:,} contacts, {totals['accounts']:,} "
                  f"accounts, {totals['events']:,} events, {totals['stage_changes']:,} stage "
                  f"changes, {totals['mql']:,} MQLs in {a.settings.resolved_database_url}")
    console.print(f"sales: {totals['owned']:,} prospects, opportunities and customers owned by "
                  f"{totals['users'] - 2} sales users, {totals['tasks']:,} follow-up tasks, "
                  f"{totals['opportunities']:,} deals; log in as admin@leadflow.demo or "
                  f"fanny@leadflow.demo (a rep), password {DEMO_PASSWORD!r}")
