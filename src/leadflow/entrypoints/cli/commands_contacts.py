"""Commands on contacts: show, list, create, update, enter a lead, move, qualify, erase."""

from __future__ import annotations

from typing import Annotated

import typer

from leadflow.adapters.db.read_models import (
    SORTS,
    ContactFilters,
    contact_id_for,
    list_contacts,
    parse_grades,
)
from leadflow.domain.errors import InvalidInput, NotFound
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import contacts as contact_services
from leadflow.services import moves
from leadflow.services.contact_view import contact_view
from leadflow.services.contacts import AccountIn, ContactIn
from leadflow.services.temperatures import refresh_expired_temperatures

contact_app = typer.Typer(help="One contact: show, create, update, move, qualify.",
                          no_args_is_help=True)
contacts_app = typer.Typer(help="Many contacts: list with filters.", no_args_is_help=True)
lead_app = typer.Typer(help="Enter a lead by hand.", no_args_is_help=True)
app.add_typer(contact_app, name="contact")
app.add_typer(contacts_app, name="contacts")
app.add_typer(lead_app, name="lead")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Ref = Annotated[str, typer.Argument(help="Contact id or email")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (required).")]
By = Annotated[str, typer.Option("--by", help="Who does it (recorded on the timeline).")]


def resolve(ref: str) -> int:
    a = get_app()
    with a.engine.connect() as conn:
        cid = contact_id_for(conn, ref)
    if cid is None:
        raise NotFound(f"no contact {ref!r}", field="contact")
    return cid


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InvalidInput(f"expected key=value, got {item!r}", field=what)
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _show(cid: int, as_json: bool) -> None:
    a = get_app()
    view = contact_view(uow=a.uow(), ctx=a.ctx, contact_id=cid)
    if as_json:
        print_json(view)
        return
    console.print(f"[bold]#{view['id']} {view['name']}[/bold]  {view['email'] or ''}  "
                  f"{view['phone'] or ''}", highlight=False)
    acc = view["account"]
    if acc:
        console.print(f"account: {acc['name']} ({acc['domain'] or '-'}, {acc['industry'] or '-'},"
                      f" {acc['employees'] or '?'} employees)", highlight=False)
    console.print(f"stage: [bold]{view['stage_name']}[/bold] ({view['stage_role']}) since "
                  f"{when(view['stage_entered_at'])}"
                  + (f"; recycled {when(view['recycled_at'])}" if view["recycled_at"] else ""))
    ms = ", ".join(f"{k} ({when(v)})" for k, v in view["milestones"].items()) or "none"
    console.print(f"milestones: {ms}")
    console.print(f"temperature: {view['temperature'] or '-'} — {view['temperature_reason']}")
    eng = view["engagement"]
    console.print(f"engagement: [bold]{eng['score']:.1f}[/bold] "
                  f"(half-life {eng['half_life_days']:g} days)")
    for rule, value in eng["breakdown"].items():
        console.print(f"  {value:+8.2f}  {rule}", highlight=False)
    fit = view["fit"]
    excluded = f", excluded: {fit['exclusion_reason']}" if fit["excluded_by"] else ""
    console.print(f"fit: [bold]{fit['score']:.0f}[/bold] grade {fit['grade']} "
                  f"persona {fit['persona'] or '-'}{excluded}")
    for part in fit["breakdown"]:
        state = {True: "met", False: "not met", None: "unknown"}[part.get("met")]
        console.print(f"  {part['points']:+8.2f}  {part['label']} = {part['value']!r} ({state})",
                      highlight=False)
    q = view["qualification"]
    if q["answers"]:
        console.print(f"qualification: {'passed' if q['passed'] else 'not passed'}; "
                      f"answers {q['answers']}; missing {q['missing']}; failed {q['failed']}",
                      highlight=False)
    rows = []
    for item in view["timeline"][:40]:
        detail = ""
        if item["kind"] == "event":
            pts = sum(item["points"].values()) if item["points"] else 0
            detail = f"{item['url'] or ''} {pts:+g} pts" if item["points"] else (item["url"]
                                                                                 or "")
        elif item["kind"] == "stage":
            detail = f"by {item['by']}" + (f": {item['reason']}" if item["reason"] else "")
        elif item["kind"] == "change":
            detail = f"by {item['by']}: {item['details']}"
        elif item["kind"] == "email":
            seen = " opened" if item["opened_at"] else ""
            seen += " clicked" if item["clicked_at"] else ""
            detail = (f"{item['status']}{seen}: {item['subject'] or ''}"
                      + (f" [{item['track']}]" if item["track"] else "")
                      + (f" ({item['reason']})" if item["reason"] else ""))
        elif item["kind"] == "activity":
            detail = " ".join(str(p) for p in (item["direction"], item["subject"],
                                               item["outcome"]) if p)
        rows.append([when(item["at"]), item["kind"], item["what"], detail])
    table("timeline (newest first)", ["when", "kind", "what", "detail"], rows)
    if view["nurture"]:
        console.print("nurture: " + "; ".join(
            f"{n['track']} {n['status']} at step {n['step']}"
            + (f", next {when(n['next_at'])}" if n["next_at"] else "")
            for n in view["nurture"]), highlight=False)


@contact_app.command("show")
@friendly_errors
def show(ref: Ref, as_json: JsonOpt = False) -> None:
    """Stage, milestones, scores with breakdown, temperature and timeline."""
    _show(resolve(ref), as_json)


@contacts_app.command("list")
@friendly_errors
def list_cmd(
    stage: Annotated[list[str] | None, typer.Option(help="Stage key (repeatable).")] = None,
    temperature: Annotated[list[str] | None, typer.Option(help="hot, warm, new, cold.")] = None,
    grade: Annotated[str | None, typer.Option(help="'A,B' or 'B+' (B or better).")] = None,
    min_score: Annotated[float | None, typer.Option(help="Engagement now at least.")] = None,
    milestone: Annotated[str | None, typer.Option(help="Reached this milestone.")] = None,
    source: Annotated[str | None, typer.Option(help="Source, e.g. website.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in name or email.")] = None,
    sort: Annotated[str, typer.Option(help=f"One of {', '.join(SORTS)}.")] = "score",
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List contacts with filters, sorted (default: engagement now, highest first)."""
    a = get_app()
    filters = ContactFilters(stage=stage, temperature=temperature,
                             grade=parse_grades(grade) if grade else None, min_score=min_score,
                             milestone=milestone, source=source, search=search)
    refresh_expired_temperatures(uow_factory=a.uow, ctx=a.ctx)
    with a.engine.connect() as conn:
        rows, total = list_contacts(conn, a.config, filters, now=a.clock.now(), sort=sort,
                                    limit=limit, offset=offset)
    if as_json:
        print_json({"total": total, "offset": offset, "items": rows})
        return
    table(f"{total:,} contact(s); showing {offset + 1 if rows else 0}–{offset + len(rows)}",
          ["id", "name", "email", "stage", "temp.", "grade", "fit", "engagement", "source",
           "last activity"],
          [[r["id"], r["name"], r["email"], r["stage"], r["temperature"], r["fit_grade"],
            f"{r['fit_score']:.0f}", r["engagement"], r["source"], when(r["last_event_at"])]
           for r in rows])


def _contact_in(email: str | None, phone: str | None, first_name: str | None,
                last_name: str | None, title: str | None, seniority: str | None,
                country: str | None, source: str | None, company: str | None,
                domain: str | None, industry: str | None, employees: int | None,
                attr: list[str] | None) -> ContactIn:
    account = None
    if company or domain:
        account = AccountIn(name=company or (domain or ""), domain=domain, industry=industry,
                            employees=employees)
    return ContactIn(email=email, phone=phone, first_name=first_name, last_name=last_name,
                     title=title, seniority=seniority, country=country, source=source,
                     account=account, attributes=_pairs(attr, "attr"))


Opt = typer.Option


@contact_app.command("create")
@friendly_errors
def create(
    email: Annotated[str | None, Opt()] = None, phone: Annotated[str | None, Opt()] = None,
    first_name: Annotated[str | None, Opt()] = None,
    last_name: Annotated[str | None, Opt()] = None, title: Annotated[str | None, Opt()] = None,
    seniority: Annotated[str | None, Opt()] = None, country: Annotated[str | None, Opt()] = None,
    source: Annotated[str | None, Opt()] = None, company: Annotated[str | None, Opt()] = None,
    domain: Annotated[str | None, Opt()] = None, industry: Annotated[str | None, Opt()] = None,
    employees: Annotated[int | None, Opt()] = None,
    attr: Annotated[list[str] | None, Opt(help="key=value (repeatable)")] = None,
    by: By = "cli", as_json: JsonOpt = False,
) -> None:
    """Create a contact (it enters at the entry stage)."""
    a = get_app()
    c = contact_services.create_contact(
        uow=a.uow(), ctx=a.ctx, actor=by,
        data=_contact_in(email, phone, first_name, last_name, title, seniority, country, source,
                         company, domain, industry, employees, attr))
    assert c.id is not None
    _show(c.id, as_json)


@lead_app.command("add")
@friendly_errors
def lead_add(
    reason: Reason,
    email: Annotated[str | None, Opt()] = None, phone: Annotated[str | None, Opt()] = None,
    first_name: Annotated[str | None, Opt()] = None,
    last_name: Annotated[str | None, Opt()] = None, title: Annotated[str | None, Opt()] = None,
    seniority: Annotated[str | None, Opt()] = None, country: Annotated[str | None, Opt()] = None,
    source: Annotated[str | None, Opt()] = None, company: Annotated[str | None, Opt()] = None,
    domain: Annotated[str | None, Opt()] = None, industry: Annotated[str | None, Opt()] = None,
    employees: Annotated[int | None, Opt()] = None,
    referred_by: Annotated[str | None, Opt(help="Contact id or email of the referrer")] = None,
    attr: Annotated[list[str] | None, Opt(help="key=value (repeatable)")] = None,
    by: By = "cli", as_json: JsonOpt = False,
) -> None:
    """A rep heard of someone: enter them as a lead, with the reason and who referred them."""
    a = get_app()
    referrer = resolve(referred_by) if referred_by else None
    c = contact_services.create_manual_lead(
        uow=a.uow(), ctx=a.ctx, reason=reason, referred_by_id=referrer, actor=by,
        data=_contact_in(email, phone, first_name, last_name, title, seniority, country, source,
                         company, domain, industry, employees, attr))
    assert c.id is not None
    _show(c.id, as_json)


@contact_app.command("update")
@friendly_errors
def update(
    ref: Ref,
    set_: Annotated[list[str] | None, Opt("--set", help="field=value (repeatable)")] = None,
    attr: Annotated[list[str] | None, Opt(help="key=value (repeatable)")] = None,
    company: Annotated[str | None, Opt()] = None, domain: Annotated[str | None, Opt()] = None,
    industry: Annotated[str | None, Opt()] = None, employees: Annotated[int | None, Opt()] = None,
    by: By = "cli", as_json: JsonOpt = False,
) -> None:
    """Change fields (email, title, seniority, country...) or attributes; rules re-apply."""
    a = get_app()
    account = None
    if company or domain:
        account = AccountIn(name=company or (domain or ""), domain=domain, industry=industry,
                            employees=employees)
    cid = resolve(ref)
    contact_services.update_contact(uow=a.uow(), ctx=a.ctx, contact_id=cid,
                                    changes=_pairs(set_, "set"), attributes=_pairs(attr, "attr"),
                                    account=account, actor=by)
    _show(cid, as_json)


@contact_app.command("move")
@friendly_errors
def move_cmd(ref: Ref, stage: Annotated[str, typer.Argument(help="Target stage key")],
             reason: Reason, by: By = "cli", as_json: JsonOpt = False) -> None:
    """Move a contact by hand, forward or backward, with a reason."""
    a = get_app()
    cid = resolve(ref)
    moves.move_stage(uow=a.uow(), ctx=a.ctx, contact_id=cid, to_stage=stage, reason=reason,
                     actor=by)
    _show(cid, as_json)


@contact_app.command("disqualify")
@friendly_errors
def disqualify_cmd(ref: Ref, reason: Reason, by: By = "cli", as_json: JsonOpt = False) -> None:
    """Not for us: move to the excluded stage with a reason."""
    a = get_app()
    cid = resolve(ref)
    moves.disqualify(uow=a.uow(), ctx=a.ctx, contact_id=cid, reason=reason, actor=by)
    _show(cid, as_json)


@contact_app.command("recycle")
@friendly_errors
def recycle_cmd(ref: Ref, reason: Reason, by: By = "cli", as_json: JsonOpt = False) -> None:
    """Back to nurture: older evidence no longer counts for the hand-off."""
    a = get_app()
    cid = resolve(ref)
    moves.recycle(uow=a.uow(), ctx=a.ctx, contact_id=cid, reason=reason, actor=by)
    _show(cid, as_json)


@contact_app.command("qualify")
@friendly_errors
def qualify_cmd(
    ref: Ref,
    answers: Annotated[list[str], typer.Argument(help="question=answer, e.g. budget=approved "
                                                "timeline=2026-12-31 need=yes")],
    by: By = "cli", as_json: JsonOpt = False,
) -> None:
    """Record BANT and prerequisite answers; passing sets the qualified milestone."""
    a = get_app()
    cid = resolve(ref)
    moves.qualify(uow=a.uow(), ctx=a.ctx, contact_id=cid, answers=_pairs(answers, "answers"),
                  actor=by)
    _show(cid, as_json)


@contact_app.command("erase")
@friendly_errors
def erase_cmd(
    ref: Ref, reason: Reason, by: By = "cli",
    yes: Annotated[bool, Opt("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """The person asked to be forgotten: delete personal data, keep only suppression hashes."""
    a = get_app()
    cid = resolve(ref)
    if not yes:
        typer.confirm(f"Erase contact {cid} for good?", abort=True)
    moves.erase(uow=a.uow(), ctx=a.ctx, contact_id=cid, reason=reason, actor=by,
                mailer=a.mailer)
    console.print(f"contact {cid} erased")
