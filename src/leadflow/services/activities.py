"""Activities on a contact's timeline: calls, emails, meetings and notes logged by sales; a
personal email sent from leadflow; emails BCC'd or forwarded to the inbound address. A reply
or an answered call is also an event, so it scores."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime

from leadflow.domain.errors import InvalidInput, MoveNotAllowed, NotFound
from leadflow.domain.ports import Mailer, OutgoingMail, UnitOfWork
from leadflow.domain.sales import ACTIVITY_KINDS, DIRECTIONS, Activity, activity_event
from leadflow.domain.users import Principal
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.events import EventIn, record_in

MAX_BODY = 100_000


@dataclass(frozen=True)
class ActivityIn:
    kind: str
    direction: str | None = None
    at: float | None = None
    subject: str | None = None
    body: str | None = None
    outcome: str | None = None


def _clean(data: ActivityIn, now: float) -> ActivityIn:
    if data.kind not in ACTIVITY_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(ACTIVITY_KINDS)}", field="kind")
    if data.direction is not None and data.direction not in DIRECTIONS:
        raise InvalidInput(f"direction is one of {', '.join(DIRECTIONS)}", field="direction")
    if data.at is not None and (not math.isfinite(data.at) or data.at < 0):
        raise InvalidInput("a time in UTC seconds", field="at")
    if data.at is not None and data.at > now + 300:
        raise InvalidInput("an activity cannot be logged in the future", field="at")
    if data.subject and len(data.subject) > 500:
        raise InvalidInput("at most 500 characters", field="subject")
    if data.body and len(data.body) > MAX_BODY:
        raise InvalidInput(f"at most {MAX_BODY} characters", field="body")
    if data.outcome and len(data.outcome) > 100:
        raise InvalidInput("at most 100 characters", field="outcome")
    return data


def _log(uow: UnitOfWork, ctx: Context, contact_id: int, data: ActivityIn, *, at: float,
         actor: str, user_id: int | None, message_id: str | None) -> Activity:
    """Within the caller's transaction: the activity, and the event it stands for."""
    contact = load_contact(uow, contact_id)
    if ctx.config.is_erased(contact.stage):
        raise MoveNotAllowed("this contact was erased at its own request", field="contact_id")
    activity = uow.activities.add(
        contact_id=contact_id, user_id=user_id, kind=data.kind, direction=data.direction,
        at=at, subject=(data.subject or "").strip() or None, body=data.body,
        outcome=(data.outcome or "").strip() or None, message_id=message_id, by=actor)
    event_type = activity_event(data.kind, data.direction, data.outcome)
    if event_type is not None:
        record_in(uow=uow, ctx=ctx, event=EventIn(
            type=event_type, contact_id=contact_id, ts=at,
            message_id=f"activity:{activity.id}",
            properties={"activity_id": activity.id, "kind": data.kind}))
    return activity


def log_activity(*, uow: UnitOfWork, ctx: Context, contact_id: int, data: ActivityIn,
                 principal: Principal) -> Activity:
    """Log a call, email, meeting or note; replies and answered calls score."""
    now = ctx.clock.now()
    data = _clean(data, now)
    with uow:
        uow.serialize("tracking")
        activity = _log(uow, ctx, contact_id, data, at=data.at or now, actor=principal.name,
                        user_id=principal.user_id, message_id=None)
        uow.commit()
    return activity


def list_activities(*, uow: UnitOfWork, contact_id: int, limit: int = 100) -> list[Activity]:
    with uow:
        load_contact(uow, contact_id)
        return uow.activities.of_contact(contact_id, limit)


def send_personal_email(*, uow: UnitOfWork, ctx: Context, mailer: Mailer, contact_id: int,
                        subject: str, text: str, principal: Principal,
                        inbound_address: str | None = None) -> Activity:
    """A one-to-one email from the rep to a contact, sent over SMTP (or the file outbox) and
    logged on the timeline. Replies go to the rep; a BCC to the inbound address, when one is
    configured, brings the thread back. Refused when the contact opted out of email."""
    subject, text = (subject or "").strip(), text or ""
    if not subject or len(subject) > 500:
        raise InvalidInput("a subject of 1 to 500 characters", field="subject")
    if not text.strip() or len(text) > MAX_BODY:
        raise InvalidInput(f"a text of 1 to {MAX_BODY} characters", field="text")
    if principal.user_id is None:
        raise InvalidInput("a personal email is sent by a user", field="authorization")
    with uow:
        contact = load_contact(uow, contact_id)
        sender = uow.users.get(principal.user_id)
    if sender is None:
        raise NotFound("the sending user is gone", field="authorization")
    if not contact.email:
        raise InvalidInput("this contact has no email address", field="email")
    consent = contact.consent.get("email")
    if consent is not None and not consent.granted:
        raise MoveNotAllowed("this contact does not want email", field="consent")
    message_id = f"<{uuid.uuid4().hex}@leadflow>"
    mailer.send(OutgoingMail(sender=f"{sender.name} <{sender.email}>", to=contact.email,
                             subject=subject, text=text, message_id=message_id,
                             reply_to=sender.email, bcc=inbound_address))
    now = ctx.clock.now()
    with uow:
        uow.serialize("tracking")
        activity = _log(uow, ctx, contact_id, ActivityIn(
            kind="email", direction="outbound", subject=subject, body=text), at=now,
            actor=principal.name, user_id=sender.id, message_id=message_id)
        uow.commit()
    return activity


def _addresses(msg: EmailMessage, *headers: str) -> list[str]:
    values = [str(v) for h in headers for v in msg.get_all(h, [])]
    return [addr.strip().lower() for _, addr in getaddresses(values) if "@" in addr]


def _forwarded_sender(body: str) -> str | None:
    """The original sender of a forwarded email: the first ``From:`` line in its body."""
    for line in body.splitlines():
        stripped = line.strip().lstrip(">").strip()
        if stripped.lower().startswith("from:"):
            found = [a for _, a in getaddresses([stripped[5:]]) if "@" in a]
            if found:
                return found[0].lower()
    return None


@dataclass(frozen=True)
class InboundResult:
    activity: Activity | None
    duplicate: bool = False


def log_inbound_email(*, uow: UnitOfWork, ctx: Context, raw: bytes) -> InboundResult:
    """Log an email sent to the inbound address. From a contact: their reply (it scores).
    From a user: BCC'd on their email to a contact (logged outbound), or a contact's reply
    they forwarded (logged inbound, from the first ``From:`` line of the body). Each
    Message-ID is logged once."""
    try:
        parsed = message_from_bytes(raw, policy=default_policy)
    except Exception:  # the stdlib parser is lenient; anything it raises is a bad message
        raise InvalidInput("not an email message", field="body") from None
    assert isinstance(parsed, EmailMessage)
    message_id = str(parsed.get("Message-ID", "")).strip() or None
    if message_id is not None and len(message_id) > 300:
        raise InvalidInput("a Message-ID of at most 300 characters", field="Message-ID")
    try:
        body_part = parsed.get_body(preferencelist=("plain", "html"))
        body = str(body_part.get_content()) if body_part is not None else ""
    except (LookupError, ValueError, AttributeError):  # an unknown charset or broken part
        raise InvalidInput("the message body cannot be decoded", field="body") from None
    senders = _addresses(parsed, "From")
    if not senders:
        raise InvalidInput("the message has no From address", field="From")
    subject = str(parsed.get("Subject", "")).strip()[:500] or None
    try:
        at = parsedate_to_datetime(str(parsed["Date"])).timestamp() if parsed["Date"] else None
    except (TypeError, ValueError):
        at = None
    now = ctx.clock.now()
    at = min(at, now) if at is not None else now
    with uow:
        uow.serialize("tracking")
        if message_id and uow.activities.has_message(message_id):
            return InboundResult(activity=None, duplicate=True)
        user = uow.users.get_by_email(senders[0])
        direction, contact_email = "inbound", senders[0]
        if user is not None:
            original = _forwarded_sender(body)
            if original is not None:
                contact_email = original
            else:
                direction = "outbound"
                recipients = _addresses(parsed, "To", "Cc")
                known = [r for r in recipients if uow.contacts.get_by_email(r) is not None]
                if not known:
                    raise NotFound("no contact among the recipients", field="To")
                contact_email = known[0]
        contact = uow.contacts.get_by_email(contact_email)
        if contact is None or contact.id is None:
            raise NotFound(f"no contact with email {contact_email}", field="From")
        activity = _log(uow, ctx, contact.id, ActivityIn(
            kind="email", direction=direction, subject=subject, body=body[:MAX_BODY]), at=at,
            actor=f"user:{user.email}" if user is not None else "inbound-email",
            user_id=user.id if user is not None else None, message_id=message_id)
        uow.commit()
    return InboundResult(activity=activity)
