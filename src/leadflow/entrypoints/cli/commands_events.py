"""Commands that record behaviour: track one event or a batch file, identify a visitor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.domain.errors import InvalidInput
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.commands_contacts import _pairs, resolve
from leadflow.entrypoints.cli.output import console, print_json
from leadflow.services.events import EventIn, IdentifyIn, identify, record_event, record_events

Opt = typer.Option
EVENT_KEYS = {"type", "contact_id", "email", "anonymous_id", "user_id", "timestamp",
              "message_id", "url", "content_stage", "premium", "campaign", "utm_source",
              "utm_medium", "utm_campaign", "properties"}


def parse_time(value: Any, *, field: str = "timestamp") -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"expected an ISO 8601 time, got {value!r}", field=field) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def event_from_mapping(data: Any, *, line: int | None = None) -> EventIn:
    if not isinstance(data, dict):
        raise InvalidInput("expected a JSON object", line=line)
    unknown = set(data) - EVENT_KEYS
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(sorted(unknown))}", line=line,
                           field=sorted(unknown)[0])
    try:
        return EventIn(
            type=str(data.get("type") or ""), contact_id=data.get("contact_id"),
            email=data.get("email"), anonymous_id=data.get("anonymous_id"),
            user_id=data.get("user_id"), ts=parse_time(data.get("timestamp")),
            message_id=data.get("message_id"), url=data.get("url"),
            content_stage=data.get("content_stage"), premium=data.get("premium"),
            campaign=data.get("campaign"), utm_source=data.get("utm_source"),
            utm_medium=data.get("utm_medium"), utm_campaign=data.get("utm_campaign"),
            properties=data.get("properties") or {},
        )
    except InvalidInput as exc:
        exc.line = line
        raise


@app.command()
@friendly_errors
def track(
    event_type: Annotated[str | None, typer.Argument(help="e.g. page_view, form_submitted")]
    = None,
    contact: Annotated[str | None, Opt(help="Contact id or email of a known contact")] = None,
    email: Annotated[str | None, Opt(help="Email (creates the contact if new)")] = None,
    anonymous_id: Annotated[str | None, Opt(help="Anonymous visitor id")] = None,
    user_id: Annotated[str | None, Opt(help="Your user id for this person")] = None,
    at: Annotated[str | None, Opt(help="When (ISO 8601); default now")] = None,
    message_id: Annotated[str | None, Opt(help="Idempotency key")] = None,
    url: Annotated[str | None, Opt()] = None,
    content_stage: Annotated[str | None, Opt(help="discovery, evaluation, decision")] = None,
    premium: Annotated[bool | None, Opt("--premium/--open")] = None,
    campaign: Annotated[str | None, Opt()] = None,
    utm_source: Annotated[str | None, Opt()] = None,
    utm_medium: Annotated[str | None, Opt()] = None,
    utm_campaign: Annotated[str | None, Opt()] = None,
    prop: Annotated[list[str] | None, Opt(help="key=value property (repeatable)")] = None,
    batch: Annotated[Path | None, Opt(help="JSON-lines file of events, stored atomically")]
    = None,
    as_json: Annotated[bool, Opt("--json")] = False,
) -> None:
    """Record an event (or a batch file); scores and stages update at once."""
    a = get_app()
    if batch is not None:
        events = []
        try:
            lines = batch.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInput(f"cannot read {batch}: {exc.strerror}", field="batch") from None
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{batch} is not UTF-8 text (byte {exc.start})",
                               field="batch") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"not valid JSON: {exc.msg}", line=n) from None
            events.append(event_from_mapping(data, line=n))
        results = record_events(uow=a.uow(), ctx=a.ctx, events=events)
        stored = sum(1 for r in results if not r.duplicate)
        if as_json:
            print_json({"stored": stored, "duplicates": len(results) - stored})
        else:
            console.print(f"stored {stored} event(s), {len(results) - stored} duplicate(s)")
        return
    if not event_type:
        raise InvalidInput("give an event type, or --batch FILE", field="type")
    result = record_event(uow=a.uow(), ctx=a.ctx, event=EventIn(
        type=event_type, contact_id=resolve(contact) if contact else None, email=email,
        anonymous_id=anonymous_id, user_id=user_id, ts=parse_time(at, field="at"),
        message_id=message_id, url=url, content_stage=content_stage, premium=premium,
        campaign=campaign, utm_source=utm_source, utm_medium=utm_medium,
        utm_campaign=utm_campaign, properties=_pairs(prop, "prop")))
    if as_json:
        print_json({"contact_id": result.contact_id, "event_id": result.event_id,
                    "duplicate": result.duplicate, "points": result.awarded,
                    "milestones": result.milestones,
                    "stage_changes": [f"{c.from_stage} -> {c.to_stage}"
                                      for c in result.stage_changes]})
        return
    if result.duplicate:
        console.print(f"duplicate message id {message_id}: already recorded, nothing changed")
        return
    console.print(f"event {result.event_id} recorded for contact {result.contact_id}"
                  + (" (new contact)" if result.created_contact else "")
                  + (f"; points {result.awarded}" if result.awarded else ""), highlight=False)
    for m in result.milestones:
        console.print(f"milestone reached: {m}")
    for ch in result.stage_changes:
        console.print(f"stage: {ch.from_stage} → {ch.to_stage}")


@app.command("identify")
@friendly_errors
def identify_cmd(
    anonymous_id: Annotated[str | None, Opt()] = None,
    user_id: Annotated[str | None, Opt()] = None,
    email: Annotated[str | None, Opt()] = None,
    trait: Annotated[list[str] | None, Opt(help="key=value (repeatable)")] = None,
    as_json: Annotated[bool, Opt("--json")] = False,
) -> None:
    """Tie an anonymous visitor to a known person; their histories merge."""
    a = get_app()
    c = identify(uow=a.uow(), ctx=a.ctx, data=IdentifyIn(
        anonymous_id=anonymous_id, user_id=user_id, email=email, traits=_pairs(trait, "trait")))
    if as_json:
        print_json({"contact_id": c.id, "stage": c.stage})
    else:
        console.print(f"contact {c.id} ({c.display_name}) is in stage {c.stage}")
