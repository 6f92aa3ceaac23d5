"""The content library at the command line (`leadflow content ...`), and for one contact its
next best content (`leadflow contact next-content`) and the export of its data
(`leadflow contact export`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from leadflow.domain.content import FORMATS, MATURITIES, ContentItem
from leadflow.domain.errors import InvalidInput
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_contacts import contact_app
from leadflow.entrypoints.cli.commands_sales import As, contact_for, principal
from leadflow.entrypoints.cli.output import console, print_json, table
from leadflow.services import content as content_services
from leadflow.services.content import MAX_RECOMMENDATIONS, ContentImport, NextContent
from leadflow.services.export import export_contact

content_app = typer.Typer(help="The content library: add, list, show, update, archive, import.",
                          no_args_is_help=True)
app.add_typer(content_app, name="content")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Key = Annotated[str, typer.Argument(help="The item's key, like crm-guide")]
Ref = Annotated[str, typer.Argument(help="Contact id or email")]
Topics = Annotated[list[str] | None, typer.Option(
    "--topic", "-t", help="A topic (repeatable).")]
MATURITY_HELP = f"One of {', '.join(MATURITIES)}."
FORMAT_HELP = f"One of {', '.join(FORMATS)}."


def item_dict(item: ContentItem) -> dict[str, Any]:
    return {"id": item.id, "key": item.key, "title": item.title, "url": item.url,
            "path": item.path, "maturity": item.maturity, "format": item.format,
            "premium": item.premium, "topics": list(item.topics), "language": item.language,
            "summary": item.summary, "archived": item.archived}


def _show_item(item: ContentItem, as_json: bool) -> None:
    if as_json:
        print_json(item_dict(item))
        return
    flags = ", premium" if item.premium else ""
    flags += ", ARCHIVED" if item.archived else ""
    console.print(f"[bold]{item.key}[/bold]  {escape(item.title)}", highlight=False)
    console.print(f"{item.maturity} {item.format} in {item.language}{flags}", highlight=False)
    console.print(f"url: {item.url} (page views of {item.path} consume it)", highlight=False,
                  markup=False)
    console.print(f"topics: {', '.join(item.topics) or '-'}", highlight=False, markup=False)
    if item.summary:
        console.print(item.summary, highlight=False, markup=False)


@content_app.command("add")
@friendly_errors
def add(
    key: Key,
    title: Annotated[str, typer.Option(help="What readers see.")],
    url: Annotated[str, typer.Option(help="An http(s) URL or a path like /guides/crm.")],
    maturity: Annotated[str, typer.Option(help=MATURITY_HELP)],
    format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)],
    premium: Annotated[bool, typer.Option(help="Gated behind a form.")] = False,
    topic: Topics = None,
    language: Annotated[str, typer.Option(help="Two letters.")] = "en",
    summary: Annotated[str, typer.Option()] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add an item to the library."""
    a = get_app()
    item = content_services.create_item(uow=a.uow(), ctx=a.ctx, item=ContentItem(
        key=key, title=title, url=url, maturity=maturity, format=format, premium=premium,
        topics=tuple(topic or ()), language=language, summary=summary))
    _show_item(item, as_json)


@content_app.command("list")
@friendly_errors
def list_cmd(
    maturity: Annotated[str | None, typer.Option(help=MATURITY_HELP)] = None,
    format: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    language: Annotated[str | None, typer.Option()] = None,
    topic: Annotated[str | None, typer.Option()] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived items.")]
    = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Items by key, with filters."""
    page = content_services.list_items(uow=get_app().reader(), maturity=maturity,
                                       format=format, language=language, topic=topic,
                                       include_archived=archived, limit=limit, offset=offset)
    if as_json:
        print_json({"total": page.total, "offset": offset,
                    "items": [item_dict(i) for i in page.items]})
        return
    table(f"{page.total:,} item(s); showing {offset + 1 if page.items else 0}–"
          f"{offset + len(page.items)}",
          ["key", "title", "maturity", "format", "premium", "lang.", "topics", "url"],
          [[i.key, i.title + (" (archived)" if i.archived else ""), i.maturity, i.format,
            "yes" if i.premium else "", i.language, ", ".join(i.topics), i.url]
           for i in page.items])


@content_app.command("show")
@friendly_errors
def show(key: Key, as_json: JsonOpt = False) -> None:
    """One item."""
    _show_item(content_services.get_item(uow=get_app().reader(), key=key), as_json)


@content_app.command("update")
@friendly_errors
def update(
    key: Key,
    title: Annotated[str | None, typer.Option()] = None,
    url: Annotated[str | None, typer.Option()] = None,
    maturity: Annotated[str | None, typer.Option(help=MATURITY_HELP)] = None,
    format: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    premium: Annotated[bool | None, typer.Option("--premium/--not-premium")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        "--topic", "-t", help="A topic (repeatable): replaces the item's topics.")] = None,
    no_topics: Annotated[bool, typer.Option("--no-topics", help="Remove every topic.")]
    = False,
    language: Annotated[str | None, typer.Option()] = None,
    summary: Annotated[str | None, typer.Option()] = None,
    restore: Annotated[bool, typer.Option("--restore", help="Bring an archived item back.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Change the fields given."""
    if topic and no_topics:
        raise InvalidInput("give --topic or --no-topics, not both", field="topics")
    changes: dict[str, Any] = {
        name: value for name, value in (
            ("title", title), ("url", url), ("maturity", maturity), ("format", format),
            ("premium", premium), ("language", language), ("summary", summary),
            ("topics", topic)) if value is not None}
    if no_topics:
        changes["topics"] = []
    if restore:
        changes["archived"] = False
    if not changes:
        raise InvalidInput("nothing to change: give at least one option (see --help)",
                           field="options")
    a = get_app()
    _show_item(content_services.update_item(uow=a.uow(), ctx=a.ctx, key=key,
                                            changes=changes), as_json)


@content_app.command("archive")
@friendly_errors
def archive(key: Key) -> None:
    """Take an item out of lists and recommendations (emails and forms keep their link;
    `content update KEY --restore` brings it back)."""
    a = get_app()
    item = content_services.archive_item(uow=a.uow(), ctx=a.ctx, key=key)
    console.print(f"archived {item.key}", highlight=False, markup=False)


def _read_text(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file.name} is not UTF-8 text: byte {exc.start} cannot be read; "
                           "is it really a CSV file?", field="file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}", field="file") from None


def _print_import(report: ContentImport, as_json: bool) -> None:
    if as_json:
        print_json({"rows": report.rows, "created": report.created, "updated": report.updated,
                    "unchanged": report.unchanged,
                    "bad_rows": [{"line": i.line, "field": i.field, "reason": i.reason}
                                 for i in report.bad]})
        return
    console.print(f"{report.rows:,} rows: created {report.created:,}, updated "
                  f"{report.updated:,}, unchanged {report.unchanged:,}, bad {len(report.bad):,}",
                  highlight=False, soft_wrap=True)
    for issue in report.bad:
        column = f" [{issue.field}]" if issue.field else ""
        console.print(f"bad line {issue.line}{column}: {issue.reason}", highlight=False,
                      markup=False, soft_wrap=True)


@content_app.command("import")
@friendly_errors
def import_cmd(
    file: Annotated[Path, typer.Argument(help="The CSV file (header on line 1).")],
    as_json: JsonOpt = False,
) -> None:
    """Create or update one item per row of a CSV file.

    Columns: key, title, url, maturity, format; optionally premium (yes/no), topics
    (separated by ';' or '|'), language, summary. A key already in the library updates that
    item (an archived item stays archived).

    Bad rows are listed with their line number and field and left out: the exit code is
    then 1. A file that is not CSV, or whose header is wrong, is refused (exit 2).
    """
    a = get_app()
    report = content_services.import_items(uow=a.uow(), ctx=a.ctx, text=_read_text(file))
    _print_import(report, as_json)
    if report.bad:
        raise typer.Exit(1)


def _print_next(found: NextContent) -> None:
    allowed = " and ".join(found.maturities) or "nothing"
    console.print(f"contact #{found.contact_id}: stage {found.stage} ({found.stage_role}), "
                  f"language {found.language}; offered {allowed}", highlight=False)
    if found.consumed:
        console.print(f"consumed: {', '.join(found.consumed)}", highlight=False, markup=False)
    if found.note:
        console.print(found.note, highlight=False)
    for rank, rec in enumerate(found.recommendations, 1):
        item = rec.item
        premium = ", premium" if item.premium else ""
        console.print(f"{rank}. [bold]{item.key}[/bold] — {escape(item.title)} ({item.maturity} "
                      f"{item.format}{premium}) score {rec.score:g}", highlight=False)
        console.print(f"   {item.url}", highlight=False, markup=False)
        for reason in rec.reasons:
            console.print(f"   - {reason}", highlight=False, markup=False)


@contact_app.command("next-content")
@friendly_errors
def next_content(
    ref: Ref,
    limit: Annotated[int, typer.Option(min=1, max=MAX_RECOMMENDATIONS)] = 5,
    as_user: As = None,
    as_json: JsonOpt = False,
) -> None:
    """The unseen content that fits the contact's stage, language and topics, with why."""
    a = get_app()
    cid = contact_for(ref, principal(as_user))
    found = content_services.next_best_for(uow=a.reader(), ctx=a.ctx, contact_id=cid,
                                           limit=limit)
    if not as_json:
        _print_next(found)
        return
    print_json({"contact_id": found.contact_id, "stage": found.stage,
                "stage_role": found.stage_role, "language": found.language,
                "maturities": list(found.maturities), "consumed": list(found.consumed),
                "recommendations": [{"item": item_dict(r.item), "score": r.score,
                                     "reasons": list(r.reasons)}
                                    for r in found.recommendations],
                "note": found.note})


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read: it holds a person's data."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.chmod(path, 0o600)  # an existing file would keep its mode otherwise
            handle.write(text)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}",
                           field="output") from None


@contact_app.command("export")
@friendly_errors
def export(
    ref: Ref,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the JSON to this file (readable by you only) instead "
                               "of printing it.")] = None,
    as_user: As = None,
) -> None:
    """Everything held about one contact, as JSON: fields, consent, account, scores with
    their breakdown, stage history, milestones, timeline, tasks, activities, deals, nurture,
    emails and content consumed."""
    a = get_app()
    cid = contact_for(ref, principal(as_user))
    data = export_contact(uow=a.reader(), ctx=a.ctx, contact_id=cid)
    if output is None:
        print_json(data)
        return
    _write_private(output, json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    console.print(f"exported contact #{cid} to {output}", highlight=False, markup=False)
