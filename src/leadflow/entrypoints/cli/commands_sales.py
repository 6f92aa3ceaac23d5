"""Sales at the command line: the rep's queue, the cracks list, hand-off sweeps,
reassignment, accept/reject, tasks, activities, personal and inbound email.

``--as USER`` acts as that user, with their rights (a rep reaches only their own contacts);
without it the command runs as the local operator, who sees everything.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from leadflow.adapters.db.work_queues import falling_through_cracks, rep_queue
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import OPERATOR, Principal
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_contacts import resolve
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import activities, assignments, followup, users
from leadflow.services.access import ensure_contact_access, visible_task

task_app = typer.Typer(help="Follow-up tasks: add, complete.", no_args_is_help=True)
activity_app = typer.Typer(help="Log calls, emails, meetings and notes.", no_args_is_help=True)
email_app = typer.Typer(help="Personal email to a contact; inbound email.",
                        no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(activity_app, name="activity")
app.add_typer(email_app, name="email")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
As = Annotated[str | None, typer.Option("--as", help="Act as this user (email or id)")]
Ref = Annotated[str, typer.Argument(help="Contact id or email")]


def principal(as_user: str | None) -> Principal:
    if as_user is None:
        return OPERATOR
    return users.acting_as(uow=get_app().reader(), ref=as_user)


def contact_for(ref: str, who: Principal) -> int:
    cid = resolve(ref)
    ensure_contact_access(uow=get_app().reader(), principal=who, contact_id=cid)
    return cid


def parse_when(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"expected a time like 2026-12-01T14:00 (UTC unless an offset "
                           f"is given), got {value!r}", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@app.command("queue")
@friendly_errors
def queue(as_user: As = None, owner: Annotated[str | None, typer.Option(
              help="Whose queue (default: the --as user)")] = None,
          limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
          as_json: JsonOpt = False) -> None:
    """A rep's work queue: open tasks by due time; prospects hot first, then by score."""
    a = get_app()
    who = principal(as_user)
    target = users.get_user(uow=a.reader(), ref=owner).id if owner else who.user_id
    if target is None:
        raise InvalidInput("whose queue? give --as or --owner", field="owner")
    if not who.sees_owner(target):
        raise InvalidInput("that queue is not yours to see", field="owner")
    with a.engine.connect() as conn:
        found = rep_queue(conn, a.config, owner_id=target, now=a.clock.now(), limit=limit)
    if as_json:
        print_json({"owner_id": target, **found})
        return
    table(f"open tasks ({len(found['tasks'])} shown)", ["task", "contact", "kind", "title",
                                                        "due", ""],
          [[x["id"], x["contact_id"], x["kind"], x["title"], when(x["due_at"]),
            "OVERDUE" if x["overdue"] else ""] for x in found["tasks"]])
    table(f"prospects and opportunities ({found['total']})",
          ["id", "name", "stage", "temperature", "grade", "engagement", "next task due"],
          [[x["id"], x["name"], x["stage"], x["temperature"], x["grade"], x["engagement"],
            when(x["next_task_due_at"]) + (" (overdue)" if x["overdue"] else "")]
           for x in found["prospects"]])


@app.command("cracks")
@friendly_errors
def cracks(as_user: As = None, as_json: JsonOpt = False) -> None:
    """Falling through the cracks: owned prospects without an open task, unassigned ones."""
    a = get_app()
    who = principal(as_user)
    who.need_role("admin", "marketer", "sales_manager", what="see the cracks list")
    with a.engine.connect() as conn:
        found = falling_through_cracks(conn, a.config, owners=who.visible_owners)
    if as_json:
        print_json(found)
        return
    for title, key in (("owned, without an open task", "without_open_task"),
                       ("owned by a deactivated user", "owner_inactive"),
                       ("unassigned", "unassigned")):
        table(title, ["id", "name", "stage", "temperature", "owner", "in stage since"],
              [[x["id"], x["name"], x["stage"], x["temperature"], x["owner_id"],
                when(x["stage_entered_at"])] for x in found[key]])


@app.command("handoff")
@friendly_errors
def handoff() -> None:
    """Hand off unowned prospects now, then remind, escalate and apply the breach policy
    (the worker does this every minute)."""
    a = get_app()
    assigned = assignments.assign_unowned(uow_factory=a.uow, ctx=a.ctx)
    report = followup.sweep_follow_ups(uow_factory=a.uow, ctx=a.ctx)
    console.print(f"assigned {assigned}; reminded {report.reminded}, escalated "
                  f"{report.escalated}, recycled {report.recycled}")


@app.command("assign")
@friendly_errors
def assign(ref: Ref, to: Annotated[str, typer.Option("--to", help="Sales user (email or id)")],
           reason: Annotated[str, typer.Option("--reason", "-r")], as_user: As = None) -> None:
    """Reassign a contact and its open tasks to another sales user, with a reason."""
    a = get_app()
    who = principal(as_user)
    who.need_role("admin", "marketer", "sales_manager", what="reassign contacts")
    cid = contact_for(ref, who)
    assignments.reassign(uow=a.uow(), ctx=a.ctx, contact_id=cid, owner=to, reason=reason,
                         actor=who.name, principal=who)
    console.print(f"contact {cid} now belongs to {to}")


@app.command("accept")
@friendly_errors
def accept(ref: Ref, as_user: As = None) -> None:
    """The owner accepts a prospect (milestone sal)."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    followup.accept(uow=a.uow(), ctx=a.ctx, contact_id=cid, principal=who)
    console.print(f"contact {cid} accepted")


@app.command("reject")
@friendly_errors
def reject(ref: Ref, reason: Annotated[str, typer.Option("--reason", "-r")],
           as_user: As = None) -> None:
    """Send a prospect back to marketing with a reason (recycled)."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    followup.reject(uow=a.uow(), ctx=a.ctx, contact_id=cid, reason=reason, principal=who)
    console.print(f"contact {cid} rejected and recycled")


@task_app.command("add")
@friendly_errors
def task_add(ref: Ref, title: Annotated[str | None, typer.Option("--title")] = None,
             kind: Annotated[str, typer.Option("--kind")] = "follow_up",
             due: Annotated[str | None, typer.Option(
                 "--due", help="ISO time (default: the cadence)")] = None,
             as_user: As = None) -> None:
    """Add a task on a contact for its owner."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    made = followup.create_task(uow=a.uow(), ctx=a.ctx, contact_id=cid, kind=kind, title=title,
                                due_at=parse_when(due, "due"), actor=who.name)
    console.print(f"task {made.id} due {when(made.due_at)}")


@task_app.command("done")
@friendly_errors
def task_done(task_id: int, outcome: Annotated[str | None, typer.Option("--outcome")] = None,
              next_due: Annotated[str | None, typer.Option(
                  "--next-due", help="When the next follow-up is due (ISO time)")] = None,
              as_user: As = None) -> None:
    """Complete a task; the next follow-up opens when it was the contact's last."""
    a = get_app()
    who = principal(as_user)
    visible_task(uow=a.reader(), principal=who, task_id=task_id)
    following = followup.complete_task(uow=a.uow(), ctx=a.ctx, task_id=task_id,
                                       outcome=outcome, actor=who.name,
                                       next_due_at=parse_when(next_due, "next-due"))
    console.print(f"task {task_id} done" + (
        f"; next follow-up {following.id} due {when(following.due_at)}" if following else ""))


@activity_app.command("log")
@friendly_errors
def activity_log(ref: Ref, kind: Annotated[str, typer.Option("--kind", help="call, email, "
                                                            "meeting or note")],
                 direction: Annotated[str | None, typer.Option("--direction")] = None,
                 subject: Annotated[str | None, typer.Option("--subject")] = None,
                 body: Annotated[str | None, typer.Option("--body")] = None,
                 outcome: Annotated[str | None, typer.Option(
                     "--outcome", help="For calls: no_answer, voicemail... score nothing")
                 ] = None,
                 at: Annotated[str | None, typer.Option("--at", help="ISO time")] = None,
                 as_user: As = None) -> None:
    """Log a call, email, meeting or note on a contact (replies and answered calls score)."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    made = activities.log_activity(uow=a.uow(), ctx=a.ctx, contact_id=cid, principal=who,
                                   data=activities.ActivityIn(
                                       kind=kind, direction=direction, subject=subject,
                                       body=body, outcome=outcome, at=parse_when(at, "at")))
    console.print(f"logged {made.kind} {made.id} on contact {cid}")


@email_app.command("send")
@friendly_errors
def email_send(ref: Ref, subject: Annotated[str, typer.Option("--subject")],
               text: Annotated[str, typer.Option("--text")],
               as_user: Annotated[str, typer.Option("--as", help="The sending user")]) -> None:
    """Send a personal email to a contact (SMTP, or the file outbox), logged on its
    timeline."""
    a = get_app()
    who = principal(as_user)
    cid = contact_for(ref, who)
    made = activities.send_personal_email(uow=a.uow(), ctx=a.ctx, mailer=a.mailer,
                                          contact_id=cid, subject=subject, text=text,
                                          principal=who,
                                          inbound_address=a.settings.inbound_address)
    console.print(f"sent {made.message_id} to contact {cid}")


@email_app.command("inbound")
@friendly_errors
def email_inbound(path: Annotated[Path, typer.Argument(help="An .eml file; '-' for stdin")],
                  as_json: JsonOpt = False) -> None:
    """Log an email BCC'd or forwarded to the inbound address (a reply scores)."""
    raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    a = get_app()
    result = activities.log_inbound_email(uow=a.uow(), ctx=a.ctx, raw=raw)
    if as_json:
        print_json({"duplicate": result.duplicate,
                    "activity": asdict(result.activity) if result.activity else None})
        return
    if result.duplicate:
        console.print("already logged")
    elif result.activity is not None:
        console.print(f"logged {result.activity.direction} email on contact "
                      f"{result.activity.contact_id}")
