"""Nurture and email at the command line: a nurture pass, tracks and their members, sending
queued email, the email log, bounces and newsletter issues."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from leadflow.domain.mail_policy import CATEGORIES
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_contacts import resolve
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import mail_feedback, nurture
from leadflow.services.mail_sending import send_due

nurture_app = typer.Typer(help="Nurture tracks: run a pass, list tracks and members.",
                          no_args_is_help=True)
mail_app = typer.Typer(help="Email: send what is due, the log, bounces.", no_args_is_help=True)
newsletter_app = typer.Typer(help="Newsletter issues.", no_args_is_help=True)
app.add_typer(nurture_app, name="nurture")
app.add_typer(mail_app, name="mail")
app.add_typer(newsletter_app, name="newsletter")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@nurture_app.command("run")
@friendly_errors
def run(send: Annotated[bool, typer.Option("--send", help="Then send the email that is due")]
        = False, json_out: JsonOpt = False) -> None:
    """One nurture pass: members follow their stages, milestones get their autoresponders,
    due steps queue email (the worker does this every minute)."""
    leadflow = get_app()
    report = asdict(nurture.tick(uow=leadflow.uow, ctx=leadflow.ctx))
    if send:
        report["mail"] = asdict(send_due(uow=leadflow.uow, ctx=leadflow.ctx,
                                         postage=leadflow.postage,
                                         batch_size=leadflow.settings.mail_batch_size))
    if json_out:
        print_json(report)
        return
    console.print(f"entered {report['entered']}, left {report['left']}, advanced "
                  f"{report['advanced']}, queued {report['queued']} emails, "
                  f"{report['tasks']} tasks, {report['autoresponses']} autoresponses")
    if send:
        mail = report["mail"]
        console.print(f"sent {mail['sent']}, held by the cap {mail['held']}, skipped "
                      f"{mail['skipped']}, failed {mail['failed']}")


@nurture_app.command("tracks")
@friendly_errors
def tracks(json_out: JsonOpt = False) -> None:
    """Every track, its audience and stages, and how many contacts are in it."""
    leadflow = get_app()
    with leadflow.reader() as uow:
        counts = uow.enrollments.counts()
        found = nurture.all_tracks(uow, leadflow.ctx)
    if json_out:
        print_json([{**asdict(t), "members": counts.get(t.key, {})} for t in found])
        return
    table(None, ["track", "audience", "stages", "steps", "active", "done", "left", "source"],
          [[t.key, t.audience, ", ".join(t.stage_roles), str(len(t.steps)),
            str(counts.get(t.key, {}).get("active", 0)), str(counts.get(t.key, {}).get("done", 0)),
            str(counts.get(t.key, {}).get("left", 0)), t.source] for t in found])


@nurture_app.command("members")
@friendly_errors
def members(track: str, status: Annotated[str | None, typer.Option(
                help="active, done or left")] = None,
            limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
            json_out: JsonOpt = False) -> None:
    """Contacts in a track, newest first, with their step and next run."""
    with get_app().reader() as uow:
        rows = uow.enrollments.members(track, status=status, limit=limit, offset=0)
    if json_out:
        print_json([asdict(e) for e in rows])
        return
    table(None, ["contact", "status", "step", "next", "entered", "reason"],
          [[str(e.contact_id), e.status, str(e.step), when(e.next_at), when(e.entered_at),
            e.reason or ""] for e in rows])


@mail_app.command("send")
@friendly_errors
def send(json_out: JsonOpt = False) -> None:
    """Send the queued email that is due, within consent and the frequency cap."""
    leadflow = get_app()
    report = send_due(uow=leadflow.uow, ctx=leadflow.ctx, postage=leadflow.postage,
                      batch_size=leadflow.settings.mail_batch_size)
    if json_out:
        print_json(asdict(report))
        return
    console.print(f"sent {report.sent}, held by the cap {report.held}, skipped "
                  f"{report.skipped}, retried later {report.retried}, failed {report.failed}")
    for reason, n in sorted(report.reasons.items()):
        console.print(f"  skipped {n}: {reason}")


@mail_app.command("list")
@friendly_errors
def mail_list(status: Annotated[str | None, typer.Option(
                  help="queued, sending, sent, skipped or failed")] = None,
              category: Annotated[str | None, typer.Option(
                  help=", ".join(CATEGORIES))] = None,
              contact: Annotated[str | None, typer.Option(help="Contact id or email")] = None,
              limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
              json_out: JsonOpt = False) -> None:
    """The email log: what was queued, sent, held or skipped, and why."""
    leadflow = get_app()
    with leadflow.reader() as uow:
        if contact is not None:
            rows = uow.mail.of_contact(resolve(contact), limit)
        else:
            rows = uow.mail.search(status=status, category=category, limit=limit, offset=0)
    if json_out:
        print_json([asdict(m) for m in rows])
        return
    table(None, ["id", "contact", "category", "template", "status", "queued", "sent", "subject",
           "reason"],
          [[str(m.id), str(m.contact_id), m.category, m.template, m.status, when(m.created_at),
            when(m.sent_at), m.subject or "", m.reason or ""] for m in rows])


@mail_app.command("bounce")
@friendly_errors
def bounce(email: str, kind: Annotated[str, typer.Option(
               help="hard (stops all email), soft (noted) or complaint (also unsubscribes)")]
           = "hard") -> None:
    """Record a bounce or spam complaint the mail provider reported."""
    leadflow = get_app()
    cid = mail_feedback.record_bounce(uow=leadflow.uow(), ctx=leadflow.ctx, kind=kind,
                                      email=email, actor="cli")
    console.print(f"contact {cid}: {kind} bounce recorded")


@newsletter_app.command("send")
@friendly_errors
def newsletter_send(item: Annotated[str, typer.Argument(
        help="Key of a content item of format newsletter_issue")]) -> None:
    """Queue a newsletter issue for every subscriber; the worker sends it within the cap."""
    leadflow = get_app()
    queued = nurture.send_newsletter(uow=leadflow.uow(), ctx=leadflow.ctx, item_key=item)
    console.print(f"queued for {queued} subscribers")
