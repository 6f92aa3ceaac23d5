"""Who may be sent which email, and when: consent, unsubscribe, bounces, suppression and the
per-contact frequency cap over all marketing email (newsletter included).

An email that delivers what the contact has just asked for is transactional: it is outside the
cap and the marketing consent, though a bounce or suppression still stops it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lifecycle configuration imports this module before the model exists
    from leadflow.domain.model import ConsentRecord

TRANSACTIONAL = "transactional"
MARKETING = "marketing"
NEWSLETTER = "newsletter"
CATEGORIES = (TRANSACTIONAL, MARKETING, NEWSLETTER)
CAPPED = (MARKETING, NEWSLETTER)

PRIORITY_TRANSACTIONAL = 100
PRIORITY_AUTORESPONDER = 50
PRIORITY_SALES_TRACK = 40
PRIORITY_MARKETING_TRACK = 30
PRIORITY_NEWSLETTER = 10

BOUNCED = "bounced"
COMPLAINED = "complained"


# queued → claimed (counted by the cap; not yet handed to the mailer) → sending (handed over,
# so never sent again) → sent; or skipped (never to go) or failed.
QUEUED, CLAIMED, SENDING = "queued", "claimed", "sending"
SENT, SKIPPED, FAILED = "sent", "skipped", "failed"
# Why a message a worker stopped while sending is failed: it may have gone out, so it is never
# sent again, and it counts against the frequency cap as if it had.
INTERRUPTED_WHILE_SENDING = ("interrupted while sending; not sent again, so that nobody gets it "
                             "twice")


@dataclass
class MailMessage:
    """One email to one contact, from queued to sent (or skipped, or failed). It keeps no
    address and no body: those are rendered from the contact when it goes."""

    contact_id: int
    category: str
    priority: int
    dedupe_key: str
    template: str
    not_before: float
    created_at: float
    status: str = QUEUED
    item_id: int | None = None
    track_key: str | None = None
    step: int | None = None
    form_key: str | None = None
    sender_id: int | None = None
    expires_at: float | None = None
    claimed_at: float | None = None
    sent_at: float | None = None
    attempts: int = 0
    message_id: str | None = None
    subject: str | None = None
    reason: str | None = None
    opened_at: float | None = None
    clicked_at: float | None = None
    id: int | None = None


@dataclass(frozen=True)
class CapPolicy:
    emails: int = 3
    days: float = 30.0

    @property
    def window(self) -> float:
        return self.days * 86400.0


@dataclass(frozen=True)
class CapDecision:
    allowed: bool
    free_at: float | None = None  # when the next capped email may go, if not now


def cap_decision(sent_at: Sequence[float], *, now: float, policy: CapPolicy) -> CapDecision:
    """May one more capped email go now, given when the capped ones in the window went?"""
    # A send leaves the window at exactly t + window (the same sum free_at is built from).
    recent = sorted(t for t in sent_at if t + policy.window > now)
    if len(recent) < policy.emails:
        return CapDecision(allowed=True)
    if policy.emails <= 0:
        return CapDecision(allowed=False)
    # The slot frees when enough of the oldest sends leave the window.
    return CapDecision(allowed=False,
                       free_at=recent[len(recent) - policy.emails] + policy.window)


@dataclass(frozen=True)
class ConsentPolicy:
    """Sources (``contacts.source``) whose contacts get marketing email only after opt-in:
    purchased lists and trade-fair scans, by default."""

    opt_in_required: tuple[str, ...] = ("purchased_list", "list_import", "import", "trade_fair")


def refusal(*, category: str, email: str | None, consent: Mapping[str, ConsentRecord],
            source: str | None, mail_status: str | None, suppressed: bool,
            policy: ConsentPolicy) -> str | None:
    """Why this email may not go to this contact, or None when it may."""
    if not email:
        return "no email address"
    if suppressed:
        return "suppressed"
    if mail_status == BOUNCED:
        return "the address bounced"
    if mail_status == COMPLAINED and category != TRANSACTIONAL:
        return "marked an email as spam"
    if category == TRANSACTIONAL:
        return None
    mail = consent.get("email")
    if mail is not None and not mail.granted:
        return "unsubscribed" if mail.source == "unsubscribe" else "does not want email"
    if category == NEWSLETTER:
        subscribed = consent.get("newsletter")
        if subscribed is None or not subscribed.granted:
            return "not subscribed to the newsletter"
        return None
    if (source or "").lower() in policy.opt_in_required and (mail is None or not mail.granted):
        return f"contacts from {source} need to opt in first"
    return None


def counts_to_cap(category: str, capped: Collection[str] = CAPPED) -> bool:
    return category in capped
