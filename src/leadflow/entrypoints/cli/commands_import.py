"""`leadflow import contacts FILE --mapping MAP`: the rows of a CSV file become contacts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from leadflow.adapters.csv_mapping import load_mapping, shipped_mappings
from leadflow.adapters.csv_source import open_csv
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import RichProgress, console, print_json
from leadflow.services.importing import import_contacts, import_stage

import_app = typer.Typer(help="Import contacts and their behaviour from files.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("contacts")
@friendly_errors
def import_contacts_cmd(
    file: Annotated[Path, typer.Argument(help="The CSV file (header on line 1).")],
    mapping: Annotated[str, typer.Option(
        "--mapping", "-m",
        help=f"Mapping YAML file, or a shipped mapping: {', '.join(shipped_mappings())}.")],
    join_file: Annotated[Path | None, typer.Option(
        help="The second file the mapping joins (default: its join.file, in FILE's folder).")]
    = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000,
                                            help="Rows written per transaction.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Create or update one contact per row, with its behaviour as events.

    Importing the same file again updates the contacts and duplicates nothing.

    Bad rows are listed with their line number and left out: the exit code is then 1.

    A file that is not CSV, or lacks a mapped column, is refused (exit 2): nothing is written.
    """
    a = get_app()
    spec = load_mapping(mapping)
    import_stage(mapping=spec, config=a.config)
    source = open_csv(file, spec, join_path=join_file)
    started = time.perf_counter()
    report = import_contacts(uow_factory=a.uow, ctx=a.ctx, mapping=spec, rows=source.rows(),
                             total=source.total, progress=RichProgress(enabled=not as_json),
                             chunk_size=chunk_size)
    seconds = round(time.perf_counter() - started, 2)
    if as_json:
        print_json({
            "file": str(file), "mapping": spec.source, "rows": report.rows,
            "imported": report.imported, "updated": report.updated,
            "unchanged": report.unchanged, "events": report.events, "seconds": seconds,
            "skipped": [{"line": i.line, "reason": i.reason} for i in report.skipped],
            "bad_rows": [{"line": i.line, "column": i.column, "reason": i.reason}
                         for i in report.bad],
        })
    else:
        console.print(
            f"{report.rows:,} rows in {seconds:g} s: imported {report.imported:,}, "
            f"updated {report.updated:,}, unchanged {report.unchanged:,}, "
            f"skipped {len(report.skipped):,}, bad {len(report.bad):,}; "
            f"{report.events:,} events written", highlight=False, soft_wrap=True)
        for issue in report.skipped:
            console.print(f"skipped line {issue.line}: {issue.reason}", highlight=False,
                          markup=False, soft_wrap=True)
        for issue in report.bad:
            column = f" [{issue.column}]" if issue.column else ""
            console.print(f"bad line {issue.line}{column}: {issue.reason}", highlight=False,
                          markup=False, soft_wrap=True)
    if report.bad:
        raise typer.Exit(1)
