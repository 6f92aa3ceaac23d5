"""Forms and their landing pages at the command line (`leadflow forms ...`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

import typer

from leadflow.bootstrap import App
from leadflow.domain.forms import Form
from leadflow.domain.nurture_config import PROFILE_FIELDS
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import console, print_json, table
from leadflow.services import forms as form_services

forms_app = typer.Typer(help="Forms and their landing pages (/p/<key>): add, list, show, "
                             "update.", no_args_is_help=True)
app.add_typer(forms_app, name="forms")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Key = Annotated[str, typer.Argument(help="The form's key: its page is /p/<key>")]
FIELDS_HELP = (f"A profiling field, asked in the order given (repeatable): "
               f"{', '.join(PROFILE_FIELDS)}. None: the configuration's.")


def form_dict(a: App, form: Form) -> dict[str, Any]:
    asks, at_most = form_services.effective_fields(a.ctx, form)
    return {**asdict(form), "fields": list(form.fields),
            "url": f"{a.settings.public_url.rstrip('/')}/p/{quote(form.key)}",
            "asks": asks, "asks_at_most": at_most}


def _show(a: App, form: Form, as_json: bool) -> None:
    data = form_dict(a, form)
    if as_json:
        print_json(data)
        return
    state = "" if form.active else "  (inactive: the page answers 404)"
    console.print(f"{form.key}  {form.name}{state}", highlight=False, markup=False)
    for label, value in (
            ("page", data["url"]), ("headline", form.headline or "-"),
            ("gates", form.item_key or "nothing"),
            ("asks", f"at most {data['asks_at_most']} of {', '.join(data['asks'])}"
                     + ("" if form.fields else " (the configuration's)")),
            ("consent box", form.consent_label),
            ("newsletter box", "yes" if form.newsletter else "no"),
            ("language", form.language)):
        console.print(f"{label}: {value}", highlight=False, markup=False)
    if form.pitch:
        console.print(form.pitch, highlight=False, markup=False)


@forms_app.command("add")
@friendly_errors
def add(
    key: Key,
    name: Annotated[str, typer.Option(help="What marketers call it.")],
    headline: Annotated[str, typer.Option(help="The page's title.")] = "",
    pitch: Annotated[str, typer.Option(help="Plain text; a blank line starts a "
                                            "paragraph.")] = "",
    item: Annotated[str | None, typer.Option(help="The content item it gates (its key).")]
    = None,
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help=FIELDS_HELP)]
    = None,
    max_fields: Annotated[int, typer.Option(help="At most this many at a time; 0: the "
                                                 "configuration's.")] = 0,
    consent_label: Annotated[str, typer.Option(help="The email consent box's label.")]
    = form_services.FormIn.consent_label,
    newsletter: Annotated[bool, typer.Option(help="Offer the newsletter too.")] = False,
    language: Annotated[str, typer.Option(help="Two letters (en, fr).")] = "en",
    active: Annotated[bool, typer.Option("--active/--inactive")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Add a form; its landing page is live at once (unless --inactive)."""
    a = get_app()
    form = form_services.create_form(uow=a.uow(), ctx=a.ctx, data=form_services.FormIn(
        key=key, name=name, headline=headline, pitch=pitch, item_key=item,
        fields=list(field or []), max_fields=max_fields, consent_label=consent_label,
        newsletter=newsletter, language=language, active=active))
    _show(a, form, as_json)


@forms_app.command("list")
@friendly_errors
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every form, with its page and what it gates."""
    a = get_app()
    found = form_services.list_forms(uow=a.reader())
    if as_json:
        print_json([form_dict(a, f) for f in found])
        return
    table(f"{len(found)} form(s)", ["key", "name", "gates", "asks", "active", "page"],
          [[d["key"], d["name"], d["item_key"] or "", f"{d['asks_at_most']} of "
            f"{len(d['asks'])}", "yes" if d["active"] else "no", d["url"]]
           for d in (form_dict(a, f) for f in found)])


@forms_app.command("show")
@friendly_errors
def show(key: Key, as_json: JsonOpt = False) -> None:
    """One form: its page, what it gates and the fields it asks."""
    a = get_app()
    _show(a, form_services.get_form(uow=a.reader(), key=key), as_json)


@forms_app.command("update")
@friendly_errors
def update(
    key: Key,
    name: Annotated[str | None, typer.Option()] = None,
    headline: Annotated[str | None, typer.Option()] = None,
    pitch: Annotated[str | None, typer.Option()] = None,
    item: Annotated[str | None, typer.Option(help="The content item it gates.")] = None,
    no_item: Annotated[bool, typer.Option("--no-item", help="Gate nothing any more.")]
    = False,
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help=FIELDS_HELP)]
    = None,
    default_fields: Annotated[bool, typer.Option(
        "--default-fields", help="Ask the configuration's fields.")] = False,
    max_fields: Annotated[int | None, typer.Option()] = None,
    consent_label: Annotated[str | None, typer.Option()] = None,
    newsletter: Annotated[bool | None, typer.Option("--newsletter/--no-newsletter")] = None,
    language: Annotated[str | None, typer.Option()] = None,
    active: Annotated[bool | None, typer.Option(
        "--active/--inactive", help="--inactive takes the page down.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change what is given; the rest stays."""
    changes: dict[str, Any] = {
        k: v for k, v in (("name", name), ("headline", headline), ("pitch", pitch),
                          ("item_key", item), ("max_fields", max_fields),
                          ("consent_label", consent_label), ("newsletter", newsletter),
                          ("language", language), ("active", active)) if v is not None}
    if no_item:
        changes["item_key"] = None
    if field:
        changes["fields"] = list(field)
    elif default_fields:
        changes["fields"] = []
    a = get_app()
    _show(a, form_services.update_form(uow=a.uow(), ctx=a.ctx, key=key, changes=changes),
          as_json)
