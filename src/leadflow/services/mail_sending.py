"""Sending queued email: claim what is due under the frequency cap and the consent rules, then
render and send each claimed message once.

Claiming happens in one transaction that holds each contact's mail lock while it counts what
was sent in the cap window and marks the next message ``sending``; so several workers sending
at once never go over the cap, and a message is claimed by one of them only. A claimed
message is sent at most once: a worker that dies between the SMTP hand-over and recording it
leaves the message ``sending``, and ``sweep_interrupted`` marks it failed rather than risk a
second copy in the contact's mailbox.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from leadflow.domain.content import ContentItem
from leadflow.domain.errors import Unavailable, Undeliverable
from leadflow.domain.identity import suppression_hash
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.mail_policy import (
    BOUNCED,
    CAPPED,
    FAILED,
    NEWSLETTER,
    SENT,
    SKIPPED,
    TRANSACTIONAL,
    MailMessage,
    cap_decision,
    refusal,
)
from leadflow.domain.model import Contact
from leadflow.domain.ports import Mailer, OutgoingMail, UnitOfWork, UnitOfWorkFactory
from leadflow.domain.users import User
from leadflow.services.context import Context

MAX_ATTEMPTS = 5
RETRY_SECONDS = 60.0
INTERRUPTED_AFTER = 900.0  # a message `sending` this long was cut short mid-send
RECORD_EVERY = 50  # sent messages recorded per transaction (a crash leaves these `sending`)
READ_SLICE = 500   # contacts read per query when a claimed batch is rendered


class Rendered(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html(self) -> str: ...


class Renderer(Protocol):
    def render(self, template: str, language: str | None, values: dict[str, Any]
               ) -> Rendered: ...


@dataclass(frozen=True)
class Postage:
    """What sending needs besides the database: the mailer, templates, link signer and who
    the email is from."""

    mailer: Mailer
    renderer: Renderer
    links: LinkSigner
    sender: str
    company: str


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _suppressed(uow: UnitOfWork, ctx: Context, contact: Contact) -> bool:
    if not contact.email:
        return False
    return uow.suppressions.is_suppressed(
        [suppression_hash("email", contact.email, ctx.suppression_salt)])


def _still_wanted(uow: UnitOfWork, ctx: Context, contact: Contact,
                  message: MailMessage) -> str | None:
    """Why a message queued before the contact moved on must not go, if it must not."""
    if message.category == TRANSACTIONAL:
        return None
    role = ctx.config.role_of(contact.stage) if ctx.config.has_stage(contact.stage) else ""
    if role == "won" and message.category != NEWSLETTER:
        return "customers get only the newsletter"
    if role in ("excluded", "erased"):
        return f"the contact is in {contact.stage}"
    if message.track_key:
        status = {e.track_key: e.status for e in uow.enrollments.of_contact(contact.id or 0)}
        if status.get(message.track_key) == "left":
            return f"the contact left track {message.track_key}"
    return None


def claim_due(*, uow: UnitOfWork, ctx: Context, batch_size: int, report: SendReport
              ) -> tuple[list[MailMessage], int]:
    """Claim due messages (inside the caller's unit of work, which commits); also how many
    due messages it looked at."""
    now = ctx.clock.now()
    policy = ctx.config.nurture
    by_contact: dict[int, list[MailMessage]] = defaultdict(list)
    due = uow.mail.due(now, batch_size)
    for message in due:
        by_contact[message.contact_id].append(message)
    claimed: list[MailMessage] = []
    for contact_id in sorted(by_contact):  # one lock order for every worker: no deadlock
        uow.serialize(f"mail-cap:{contact_id}")
        contact = uow.contacts.get(contact_id)
        suppressed = contact is not None and _suppressed(uow, ctx, contact)
        for message in sorted(by_contact[contact_id], key=lambda m: (-m.priority, m.id or 0)):
            assert message.id is not None
            if contact is None:
                uow.mail.finish(message.id, status=SKIPPED, at=now, reason="no such contact")
                report.skip("no such contact")
                continue
            if message.expires_at is not None and now > message.expires_at:
                uow.mail.finish(message.id, status=SKIPPED, at=now, reason="expired")
                report.skip("expired")
                continue
            reason = refusal(category=message.category, email=contact.email,
                             consent=contact.consent, source=contact.source,
                             mail_status=contact.mail_status, suppressed=suppressed,
                             policy=policy.consent) or _still_wanted(uow, ctx, contact, message)
            if reason is not None:
                uow.mail.finish(message.id, status=SKIPPED, at=now, reason=reason)
                report.skip(reason)
                continue
            if message.category in CAPPED:
                sent_at = uow.mail.capped_sent_at(contact_id, now - policy.cap.window, CAPPED)
                decision = cap_decision(sent_at, now=now, policy=policy.cap)
                if not decision.allowed:
                    if decision.free_at is None or (
                            message.expires_at is not None
                            and decision.free_at > message.expires_at):
                        uow.mail.finish(message.id, status=SKIPPED, at=now,
                                        reason="over the frequency cap")
                        report.skip("over the frequency cap")
                    else:
                        uow.mail.hold(message.id, decision.free_at)
                        report.held += 1
                    continue
            header = f"<m{message.id}.{secrets.token_hex(6)}@leadflow>"
            if uow.mail.claim(message.id, at=now, message_id_header=header):
                message.message_id, message.claimed_at = header, now
                claimed.append(message)
    return claimed, len(due)


@dataclass
class _BatchData:
    """What rendering a claimed batch needs, read in one unit of work right after the claim:
    its contacts, content items and senders."""

    contacts: dict[int, Contact]
    items: dict[int, ContentItem]
    owners: dict[int, User | None]


def _read_batch(uow: UnitOfWork, messages: list[MailMessage]) -> _BatchData:
    ids = sorted({m.contact_id for m in messages})
    contacts: dict[int, Contact] = {}
    for start in range(0, len(ids), READ_SLICE):
        for contact in uow.contacts.get_many(ids[start:start + READ_SLICE]):
            assert contact.id is not None
            contacts[contact.id] = contact
    items = uow.content.by_ids([m.item_id for m in messages if m.item_id])
    owners = {uid: uow.users.get(uid)
              for uid in sorted({m.sender_id for m in messages if m.sender_id is not None})}
    return _BatchData(contacts=contacts, items=items, owners=owners)


def _values(data: _BatchData, postage: Postage, contact: Contact, message: MailMessage,
            item: ContentItem | None) -> dict[str, Any]:
    assert message.id is not None
    links = postage.links
    item_url = None
    if item is not None:
        target = item.url if "://" in item.url else links.base_url.rstrip("/") + item.url
        item_url = links.click(message.id, target)
    sender_name = None
    if message.sender_id is not None:
        owner = data.owners.get(message.sender_id)
        sender_name = owner.name if owner else None
    profile_url = None
    if message.form_key and contact.id is not None:
        profile_url = links.profile(message.form_key, contact.id)
    marketing = message.category != TRANSACTIONAL
    return {"item": item, "item_url": item_url, "maturity": item.maturity if item else None,
            "first_name": contact.first_name, "last_name": contact.last_name,
            "company": postage.company, "sender_name": sender_name,
            "profile_url": profile_url,
            "unsubscribe_url": links.unsubscribe(message.id) if marketing else None,
            "open_pixel": links.open_pixel(message.id)}


def _outgoing(data: _BatchData, postage: Postage, message: MailMessage
              ) -> tuple[OutgoingMail | None, str | None]:
    contact = data.contacts.get(message.contact_id)
    if contact is None or not contact.email:
        return None, "no email address"
    item = data.items.get(message.item_id) if message.item_id else None
    values = _values(data, postage, contact, message, item)
    rendered = postage.renderer.render(message.template, contact.language, values)
    headers: dict[str, str] = {}
    assert message.id is not None
    assert message.message_id is not None
    if message.category != TRANSACTIONAL:
        headers["List-Unsubscribe"] = f"<{postage.links.unsubscribe(message.id)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    sender, reply_to = postage.sender, None
    if message.sender_id is not None:
        owner = data.owners.get(message.sender_id)
        if owner is not None:
            sender = f"{owner.name} <{postage.sender.split('<')[-1].rstrip('>')}>"
            reply_to = owner.email
    return OutgoingMail(sender=sender, to=contact.email, subject=rendered.subject,
                        text=rendered.text, html=rendered.html, message_id=message.message_id,
                        reply_to=reply_to, headers=headers), None


def send_claimed(*, uow: UnitOfWorkFactory, ctx: Context, postage: Postage,
                 messages: list[MailMessage], report: SendReport) -> None:
    """Render and send each claimed message once. What rendering needs is read for the whole
    batch at once; sent messages are recorded RECORD_EVERY at a time (and whatever happens,
    before this returns or raises)."""
    if not messages:
        return
    with uow() as work:
        data = _read_batch(work, messages)
    sent: list[tuple[int, float, str]] = []

    def record_sent() -> None:
        if not sent:
            return
        with uow() as work:
            for message_id, at, subject in sent:
                work.mail.finish(message_id, status=SENT, at=at, subject=subject)
            work.commit()
        report.sent += len(sent)
        sent.clear()

    try:
        _send_each(uow=uow, ctx=ctx, postage=postage, messages=messages, report=report,
                   data=data, sent=sent, record_sent=record_sent)
    finally:
        record_sent()


def _send_each(*, uow: UnitOfWorkFactory, ctx: Context, postage: Postage,
               messages: list[MailMessage], report: SendReport, data: _BatchData,
               sent: list[tuple[int, float, str]], record_sent: Callable[[], None]) -> None:
    for message in messages:
        assert message.id is not None
        outgoing, reason = _outgoing(data, postage, message)
        now = ctx.clock.now()
        if outgoing is None:
            with uow() as work:
                work.mail.finish(message.id, status=SKIPPED, at=now, reason=reason)
                work.commit()
            report.skip(reason or "")
            continue
        try:
            postage.mailer.send(outgoing)
        except Undeliverable as exc:
            with uow() as work:
                work.mail.finish(message.id, status=FAILED, at=now, reason=exc.message[:300])
                contact = work.contacts.get(message.contact_id)
                if contact is not None:
                    contact.mail_status = BOUNCED
                    work.contacts.save(contact)
                    work.history.add_audit(message.contact_id, now, "mail", "bounced",
                                           {"message": message.id, "reason": exc.message})
                work.commit()
            report.failed += 1
            continue
        except Unavailable as exc:
            with uow() as work:
                if message.attempts + 1 >= MAX_ATTEMPTS:
                    work.mail.finish(message.id, status=FAILED, at=now, reason=exc.message[:300])
                    report.failed += 1
                else:
                    delay = RETRY_SECONDS * 2 ** message.attempts
                    work.mail.retry(message.id, at=now + delay, reason=exc.message[:300])
                    report.retried += 1
                work.commit()
            continue
        sent.append((message.id, ctx.clock.now(), outgoing.subject[:500]))
        if len(sent) >= RECORD_EVERY:
            record_sent()


def send_due(*, uow: UnitOfWorkFactory, ctx: Context, postage: Postage, batch_size: int = 200,
             max_batches: int | None = None) -> SendReport:
    """Send what is due, batch after batch, until nothing due is left."""
    report = SendReport()
    batches = 0
    while max_batches is None or batches < max_batches:
        with uow() as work:
            claimed, looked_at = claim_due(uow=work, ctx=ctx, batch_size=batch_size,
                                           report=report)
            work.commit()
        batches += 1
        if not looked_at:
            break
        send_claimed(uow=uow, ctx=ctx, postage=postage, messages=claimed, report=report)
    return report


def sweep_interrupted(*, uow: UnitOfWorkFactory, ctx: Context, limit: int = 1000) -> int:
    """Messages left ``sending`` by a worker that died mid-send: failed, never sent twice."""
    now = ctx.clock.now()
    with uow() as work:
        stale = work.mail.stale_sending(now - INTERRUPTED_AFTER, limit)
        for message_id in stale:
            work.mail.finish(message_id, status=FAILED, at=now,
                             reason="interrupted while sending; not sent again, so that "
                                    "nobody gets it twice")
        work.commit()
    return len(stale)
