"""What comes back from sent email: opens and clicks (events that feed scoring), one-click
unsubscribes, bounces and spam complaints."""

from __future__ import annotations

import hashlib

from leadflow.domain.errors import InvalidInput, NotFound, Suppressed
from leadflow.domain.mail_policy import BOUNCED, CAPPED, COMPLAINED
from leadflow.domain.model import ConsentRecord
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.events import EventIn, record_in, validate_event

BOUNCE_KINDS = ("hard", "soft", "complaint")


def _record(uow: UnitOfWork, ctx: Context, *, contact_id: int, kind: str, message: int,
            dedupe: str, url: str | None = None) -> bool:
    contact = uow.contacts.get(contact_id)
    if contact is None or ctx.config.is_erased(contact.stage):
        return False
    event = validate_event(EventIn(type=kind, contact_id=contact_id, message_id=dedupe,
                                   url=url, properties={"mail_message": message}),
                           now=ctx.clock.now())
    try:
        record_in(uow=uow, ctx=ctx, event=event)
    except Suppressed:
        return False
    return True


def record_open(*, uow: UnitOfWork, ctx: Context, message_id: int) -> bool:
    """The open pixel was loaded: the first time, an ``email_opened`` event."""
    now = ctx.clock.now()
    with uow:
        uow.serialize("tracking")
        message = uow.mail.get(message_id)
        if message is None or not uow.mail.mark_opened(message_id, now):
            return False
        done = _record(uow, ctx, contact_id=message.contact_id, kind="email_opened",
                       message=message_id, dedupe=f"mail-open-{message_id}")
        uow.commit()
    return done


def record_click(*, uow: UnitOfWork, ctx: Context, message_id: int, url: str) -> bool:
    """A tracked link was followed: an ``email_clicked`` event at the link's URL (so a click
    on a content item counts as consuming it), once per message and link."""
    now = ctx.clock.now()
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    with uow:
        uow.serialize("tracking")
        message = uow.mail.get(message_id)
        if message is None:
            return False
        uow.mail.mark_clicked(message_id, now)
        done = _record(uow, ctx, contact_id=message.contact_id, kind="email_clicked",
                       message=message_id, dedupe=f"mail-click-{message_id}-{digest}", url=url)
        uow.commit()
    return done


def _unsubscribe_in(uow: UnitOfWork, ctx: Context, contact_id: int, *, source: str,
                    actor: str) -> bool:
    now = ctx.clock.now()
    contact = load_contact(uow, contact_id)
    if ctx.config.is_erased(contact.stage):
        return False
    already = contact.consent.get("email")
    if already is not None and not already.granted and already.source == source:
        return False
    for channel in ("email", "newsletter"):
        contact.consent[channel] = ConsentRecord(channel=channel, granted=False, source=source,
                                                 at=now)
    contact.updated_at = now
    uow.contacts.save(contact)
    uow.mail.skip_queued(contact_id, at=now, reason="unsubscribed", categories=CAPPED)
    uow.history.add_audit(contact_id, now, actor, "unsubscribed", {"source": source})
    _record(uow, ctx, contact_id=contact_id, kind="unsubscribed", message=0,
            dedupe=f"unsubscribed-{contact_id}-{int(now)}")
    return True


def unsubscribe(*, uow: UnitOfWork, ctx: Context, message_id: int) -> bool:
    """One click on the unsubscribe link (or the List-Unsubscribe-Post of the mail client):
    no more marketing email or newsletter, at once; queued ones are skipped."""
    with uow:
        uow.serialize("tracking")
        message = uow.mail.get(message_id)
        if message is None:
            raise NotFound("unknown email", field="message")
        done = _unsubscribe_in(uow, ctx, message.contact_id, source="unsubscribe",
                               actor="contact")
        uow.commit()
    return done


def record_bounce(*, uow: UnitOfWork, ctx: Context, kind: str, email: str | None = None,
                  message_id: int | None = None, actor: str = "mail") -> int:
    """A bounce or complaint reported by the mail provider. A hard bounce stops all email to
    the address; a complaint also unsubscribes; a soft bounce is only noted."""
    if kind not in BOUNCE_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(BOUNCE_KINDS)}", field="kind")
    if (email is None) == (message_id is None):
        raise InvalidInput("name the email address or the message, not both", field="email")
    now = ctx.clock.now()
    with uow:
        uow.serialize("tracking")
        if message_id is not None:
            message = uow.mail.get(message_id)
            if message is None:
                raise NotFound(f"no email {message_id}", field="message_id")
            contact_id = message.contact_id
        else:
            found = uow.contacts.get_by_email((email or "").strip().lower())
            if found is None or found.id is None:
                raise NotFound("no contact with this email", field="email")
            contact_id = found.id
        contact = load_contact(uow, contact_id)
        uow.history.add_audit(contact_id, now, actor, f"bounce_{kind}", {})
        if kind == "hard":
            contact.mail_status = BOUNCED
            uow.mail.skip_queued(contact_id, at=now, reason="the address bounced",
                                 categories=("transactional", *CAPPED))
        elif kind == "complaint":
            contact.mail_status = COMPLAINED
            _unsubscribe_in(uow, ctx, contact_id, source="complaint", actor=actor)
            contact = load_contact(uow, contact_id)
            contact.mail_status = COMPLAINED
        if kind != "soft":
            contact.updated_at = now
            uow.contacts.save(contact)
            _record(uow, ctx, contact_id=contact_id, kind="email_bounced", message=0,
                    dedupe=f"bounce-{kind}-{contact_id}-{int(now)}")
        uow.commit()
    return contact_id
