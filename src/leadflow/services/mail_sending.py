"""Sending queued email: claim what is due under the frequency cap and the consent rules, then
render and send each claimed message once.

Claiming happens in one transaction that holds each contact's mail lock while it reads the
contact's due messages afresh, counts what was sent in the cap window and marks the next
message ``claimed``; so several workers sending at once never go over the cap, and a message
is claimed by one of them only. Just before a group of claimed messages goes to the mailer it
becomes ``sending``: a message is sent at most once. A worker that dies leaves ``claimed``
messages, which ``sweep_interrupted`` queues again, and ``sending`` ones, which it marks
failed rather than risk a second copy in the contact's mailbox.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from typing import Any, Protocol

from leadflow.domain.content import ContentItem, allowed_maturities
from leadflow.domain.errors import DeliveryUnknown, Unavailable, Undeliverable
from leadflow.domain.identity import suppression_hash
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.mail_policy import (
    BOUNCED,
    CAPPED,
    FAILED,
    INTERRUPTED_WHILE_SENDING,
    NEWSLETTER,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    TRANSACTIONAL,
    MailMessage,
    cap_decision,
    refusal,
)
from leadflow.domain.model import Contact
from leadflow.domain.nurture import Track
from leadflow.domain.ports import Mailer, OutgoingMail, UnitOfWork, UnitOfWorkFactory
from leadflow.domain.users import User
from leadflow.services.context import Context
from leadflow.services.nurture import all_tracks

log = logging.getLogger("leadflow.mail")

MAX_ATTEMPTS = 5
RETRY_SECONDS = 60.0
INTERRUPTED_AFTER = 3600.0  # a message claimed or sending this long was cut short
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


@dataclass
class _Fit:
    """What deciding whether a queued message still fits its contact needs, read once per
    claim: the tracks and the library."""

    tracks: dict[str, Track]
    items: dict[int, ContentItem]


def _still_wanted(fit: _Fit, ctx: Context, contact: Contact,
                  message: MailMessage) -> str | None:
    """Why a message queued before the contact moved on must not go, if it must not: a
    customer gets only the newsletter; a track's email goes only to a contact still in the
    track's audience; content goes only where its maturity still fits the stage."""
    if message.category in (TRANSACTIONAL, NEWSLETTER):
        return None
    role = ctx.config.role_of(contact.stage) if ctx.config.has_stage(contact.stage) else ""
    if role == "won":
        return "customers get only the newsletter"
    if role in ("excluded", "erased"):
        return f"the contact is in {contact.stage}"
    if message.track_key:
        track = fit.tracks.get(message.track_key)
        if track is None:
            return f"track {message.track_key} was retired"
        owned = contact.owner_id is not None
        if role not in track.stage_roles or (track.audience == "sales") != owned:
            return f"no longer in the audience of track {message.track_key}"
    item = fit.items.get(message.item_id) if message.item_id else None
    if item is not None and item.maturity not in allowed_maturities(role):
        return f"{item.maturity} content does not fit a contact in {contact.stage}"
    return None


def claim_due(*, uow: UnitOfWork, ctx: Context, batch_size: int, report: SendReport
              ) -> tuple[list[MailMessage], int]:
    """Claim due messages (inside the caller's unit of work, which commits); also how many
    due messages it looked at."""
    now = ctx.clock.now()
    policy = ctx.config.nurture
    due = uow.mail.due(now, batch_size)
    contact_ids = sorted({m.contact_id for m in due})
    fit = _Fit(tracks={t.key: t for t in all_tracks(uow, ctx)},
               items={i.id: i for i in uow.content.active() if i.id is not None})
    claimed: list[MailMessage] = []

    def skip(message_id: int, reason: str) -> None:
        # Only a message still queued: another worker may have sent it since `due` was read.
        if uow.mail.finish(message_id, status=SKIPPED, at=now, reason=reason,
                           only_from=QUEUED):
            report.skip(reason)

    for contact_id in contact_ids:  # one lock order for every worker: no deadlock
        uow.serialize(f"mail-cap:{contact_id}")
    # Read under the locks (all of them held until commit, as one at a time would be).
    contacts: dict[int, Contact] = {}
    for start in range(0, len(contact_ids), READ_SLICE):
        for found in uow.contacts.get_many(contact_ids[start:start + READ_SLICE]):
            assert found.id is not None
            contacts[found.id] = found
    for contact_id in contact_ids:
        contact = contacts.get(contact_id)
        suppressed = contact is not None and _suppressed(uow, ctx, contact)
        # Read again under the lock: what another worker did meanwhile is seen.
        for message in uow.mail.due_for_contact(contact_id, now):
            assert message.id is not None
            if contact is None:
                skip(message.id, "no such contact")
                continue
            if message.expires_at is not None and now > message.expires_at:
                skip(message.id, "expired")
                continue
            reason = refusal(category=message.category, email=contact.email,
                             consent=contact.consent, source=contact.source,
                             mail_status=contact.mail_status, suppressed=suppressed,
                             policy=policy.consent) or _still_wanted(fit, ctx, contact, message)
            if reason is not None:
                skip(message.id, reason)
                continue
            if message.category in CAPPED:
                sent_at = uow.mail.capped_sent_at(contact_id, now - policy.cap.window, CAPPED)
                decision = cap_decision(sent_at, now=now, policy=policy.cap)
                if not decision.allowed:
                    if decision.free_at is None or (
                            message.expires_at is not None
                            and decision.free_at > message.expires_at):
                        skip(message.id, "over the frequency cap")
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
            sender = formataddr((owner.name, parseaddr(postage.sender)[1]))
            reply_to = owner.email
    return OutgoingMail(sender=sender, to=contact.email, subject=rendered.subject,
                        text=rendered.text, html=rendered.html, message_id=message.message_id,
                        reply_to=reply_to, headers=headers), None


def send_claimed(*, uow: UnitOfWorkFactory, ctx: Context, postage: Postage,
                 messages: list[MailMessage], report: SendReport) -> None:
    """Render and send each claimed message once. What rendering needs is read for the whole
    batch at once; messages become ``sending`` RECORD_EVERY at a time just before they go,
    and are recorded sent as many at a time (whatever happens, before this returns or
    raises)."""
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
            # A contact erased while its email was on the way: forget the copy just made.
            sent_ids = {i for i, _, _ in sent}
            went = [m for m in messages if m.id in sent_ids and m.message_id]
            now_are = {c.id: c for c in work.contacts.get_many(
                sorted({m.contact_id for m in went}))}
            gone = [m.message_id for m in went
                    if m.message_id and _erased(ctx, now_are.get(m.contact_id))]
            work.commit()
        if gone:
            postage.mailer.forget(gone)
        report.sent += len(sent)
        sent.clear()

    try:
        for start in range(0, len(messages), RECORD_EVERY):
            group = messages[start:start + RECORD_EVERY]
            with uow() as work:
                going = work.mail.start_sending([m.id for m in group if m.id is not None])
                work.commit()
            _send_each(uow=uow, ctx=ctx, postage=postage, report=report, data=data,
                       messages=[m for m in group if m.id in going], sent=sent)
            record_sent()
    finally:
        record_sent()


def _erased(ctx: Context, contact: Contact | None) -> bool:
    return contact is None or ctx.config.is_erased(contact.stage)


def _send_each(*, uow: UnitOfWorkFactory, ctx: Context, postage: Postage,
               messages: list[MailMessage], report: SendReport, data: _BatchData,
               sent: list[tuple[int, float, str]]) -> None:
    for message in messages:
        assert message.id is not None
        now = ctx.clock.now()
        try:
            outgoing, reason = _outgoing(data, postage, message)
            if outgoing is None:
                with uow() as work:
                    work.mail.finish(message.id, status=SKIPPED, at=now, reason=reason)
                    work.commit()
                report.skip(reason or "")
                continue
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
        except DeliveryUnknown as exc:  # the server may have it: never send it again
            with uow() as work:
                work.mail.finish(message.id, status=FAILED, at=now, reason=exc.message[:300])
                work.commit()
            report.failed += 1
            continue
        except Exception as exc:
            if not isinstance(exc, Unavailable):
                log.exception("sending an email failed", extra={"mail_message": message.id})
            why = exc.message if isinstance(exc, Unavailable) else (
                f"{type(exc).__name__} while rendering or sending")
            with uow() as work:
                if message.attempts + 1 >= MAX_ATTEMPTS:  # `attempts` is from before the claim
                    work.mail.finish(message.id, status=FAILED, at=now, reason=why[:300])
                    report.failed += 1
                else:
                    delay = RETRY_SECONDS * 2 ** message.attempts
                    work.mail.retry(message.id, at=now + delay, reason=why[:300])
                    report.retried += 1
                work.commit()
            continue
        sent.append((message.id, ctx.clock.now(), outgoing.subject[:500]))


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
    """Messages a worker that died left behind: claimed ones (never handed to the mailer) are
    queued again; sending ones are marked failed, never sent twice. How many it found."""
    now = ctx.clock.now()
    with uow() as work:
        stale = work.mail.stale(now - INTERRUPTED_AFTER, limit)
        for message_id, status in stale:
            if status == SENDING:
                work.mail.finish(message_id, status=FAILED, at=now, only_from=SENDING,
                                 reason=INTERRUPTED_WHILE_SENDING)
            else:
                work.mail.retry(message_id, at=now, reason="its worker stopped before sending")
        work.commit()
    return len(stale)
