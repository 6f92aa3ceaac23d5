"""Queueing email: one row per message with a dedupe key, so whatever asks twice (a retried
job, a replayed form, two workers) queues it once. Sending is services.mail_sending's."""

from __future__ import annotations

from leadflow.domain.content import ContentItem
from leadflow.domain.mail_policy import (
    PRIORITY_TRANSACTIONAL,
    TRANSACTIONAL,
    MailMessage,
)
from leadflow.domain.ports import UnitOfWork

ASSET_EXPIRES = 2 * 86400.0  # an asset delivery nobody could send in two days is stale


def queue_mail(uow: UnitOfWork, *, contact_id: int, category: str, template: str,
               dedupe_key: str, priority: int, at: float, item: ContentItem | None = None,
               track_key: str | None = None, step: int | None = None,
               form_key: str | None = None, sender_id: int | None = None,
               expires_in: float | None = None, not_before: float | None = None) -> int | None:
    """Queue one message inside the caller's transaction; None when it was queued before."""
    return uow.mail.add(MailMessage(
        contact_id=contact_id, category=category, priority=priority, dedupe_key=dedupe_key,
        template=template, not_before=at if not_before is None else not_before, created_at=at,
        item_id=item.id if item else None, track_key=track_key, step=step, form_key=form_key,
        sender_id=sender_id, expires_at=at + expires_in if expires_in else None))


def queue_asset(uow: UnitOfWork, *, contact_id: int, item: ContentItem, form_key: str,
                submission: str, at: float) -> int | None:
    """The email that delivers a gated asset the contact just asked for: transactional,
    outside the frequency cap. ``submission`` tells one request from its replays."""
    return queue_mail(uow, contact_id=contact_id, category=TRANSACTIONAL, template="asset",
                      dedupe_key=f"asset:{form_key}:{contact_id}:{submission}",
                      priority=PRIORITY_TRANSACTIONAL, at=at, item=item, form_key=form_key,
                      expires_in=ASSET_EXPIRES)
