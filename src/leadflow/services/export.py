"""A contact's data, exported: everything leadflow holds about one person, as JSON-able data.

The export starts from what ``contact show`` explains (fields, consent, identities, account,
scores with their breakdown, the timeline with each event's properties) and adds the full
records behind it: stage history, milestones, tasks, activities, deals, nurture enrollments,
the emails sent or queued, and the content consumed. An erased contact exports what is left
after erasure: ids, times, stages and counts, nothing personal.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from leadflow.domain.content import Consumed
from leadflow.domain.mail_policy import MailMessage
from leadflow.domain.nurture import Enrollment
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import Activity
from leadflow.services.common import load_contact
from leadflow.services.contact_view import contact_view
from leadflow.services.context import Context

FORMAT = "leadflow.contact-export"
VERSION = 1
# No limit in practice: an export holds every record of the contact.
EVERYTHING = 10_000_000
VIEW_SECTIONS = ("consent", "identities", "owner", "tasks", "opportunities", "timeline")
SCORES = ("engagement", "fit", "qualification")


def _email(message: MailMessage, item_keys: dict[int, str]) -> dict[str, Any]:
    return {"id": message.id, "category": message.category, "template": message.template,
            "status": message.status, "subject": message.subject,
            "item": item_keys.get(message.item_id) if message.item_id else None,
            "track": message.track_key, "step": message.step, "form": message.form_key,
            "created_at": message.created_at, "sent_at": message.sent_at,
            "opened_at": message.opened_at, "clicked_at": message.clicked_at,
            "reason": message.reason}


def _enrollment(enrollment: Enrollment) -> dict[str, Any]:
    return {"track": enrollment.track_key, "status": enrollment.status,
            "step": enrollment.step, "next_at": enrollment.next_at,
            "entered_at": enrollment.entered_at, "updated_at": enrollment.updated_at,
            "reason": enrollment.reason}


def _consumed(consumed: Consumed) -> dict[str, Any]:
    item = consumed.item
    return {"key": item.key, "title": item.title, "url": item.url,
            "maturity": item.maturity, "format": item.format, "last_at": consumed.at}


def _records(uow: UnitOfWork, contact_id: int) -> dict[str, Any]:
    """What the contact view leaves out or shortens, in full."""
    with uow:
        contact = load_contact(uow, contact_id)
        account = uow.accounts.get(contact.account_id) if contact.account_id else None
        changes = uow.history.stage_changes(contact_id)
        activities: list[Activity] = uow.activities.of_contact(contact_id, EVERYTHING)
        enrollments = uow.enrollments.of_contact(contact_id)
        emails = uow.mail.of_contact(contact_id, EVERYTHING)
        items = uow.content.by_ids([m.item_id for m in emails if m.item_id])
        consumed = uow.content.consumed(contact_id)
    return {
        "contact": contact, "account": None if account is None else asdict(account),
        "stage_history": [asdict(c) for c in changes],
        "activities": [asdict(a) for a in activities],
        "enrollments": [_enrollment(e) for e in enrollments],
        "emails": [_email(m, {i: item.key for i, item in items.items()}) for m in emails],
        "content_consumed": [_consumed(c) for c in consumed],
    }


def export_contact(*, uow: UnitOfWork, ctx: Context, contact_id: int) -> dict[str, Any]:
    """Everything held about one contact (NotFound, or Merged naming the survivor)."""
    view = contact_view(uow=uow, ctx=ctx, contact_id=contact_id, timeline_limit=EVERYTHING)
    records = _records(uow, contact_id)
    contact = records.pop("contact")
    fields = {k: v for k, v in view.items()
              if k not in VIEW_SECTIONS + SCORES + ("account", "milestones")}
    return {
        "format": FORMAT, "version": VERSION, "exported_at": ctx.clock.now(),
        "contact": {**fields, "first_name": contact.first_name,
                    "last_name": contact.last_name, "region": contact.region,
                    "created_at": contact.created_at, "updated_at": contact.updated_at,
                    "last_event_at": contact.last_event_at, "mail_status": contact.mail_status,
                    "erased": ctx.config.is_erased(contact.stage)},
        **{k: view[k] for k in VIEW_SECTIONS if k != "timeline"},
        "account": records.pop("account"),
        "scores": {k: view[k] for k in SCORES},
        "milestones": [{"key": k, "at": at} for k, at in view["milestones"].items()],
        **records,
        "timeline": view["timeline"],
    }
