"""Recording what contacts do, and knowing who they are (identify, merge)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leadflow.domain.errors import InvalidInput, LeadflowError, NotFound, Suppressed
from leadflow.domain.identity import normalize_email
from leadflow.domain.lifecycle import (
    apply_event_in_order,
    evaluate,
    move,
    rebuild_from_history,
)
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Contact, Event, StageChange
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.webhooks import CONTACT_MERGED, merge_payload
from leadflow.services.common import ensure_not_suppressed, load_contact, persist_outcome, refit
from leadflow.services.contacts import ContactIn, new_contact, normalize_contact_fields
from leadflow.services.context import Context

EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
MAX_FUTURE_SKEW = 300.0  # seconds an event may claim to lie in the future


@dataclass
class EventIn:
    type: str
    contact_id: int | None = None
    email: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    ts: float | None = None
    message_id: str | None = None
    url: str | None = None
    content_stage: str | None = None
    premium: bool | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def identities(self) -> list[tuple[str, str]]:
        """The ids the event names, in the order that decides who it is about."""
        return [(kind, value) for kind, value in (("user_id", self.user_id),
                                                  ("email", self.email),
                                                  ("anonymous_id", self.anonymous_id)) if value]

    @property
    def shape(self) -> EventShape:
        """What scoring rules and signals see of this event."""
        return EventShape(type=self.type, url=self.url, content_stage=self.content_stage,
                          premium=self.premium, campaign=self.campaign,
                          utm_source=self.utm_source, utm_medium=self.utm_medium,
                          utm_campaign=self.utm_campaign)


@dataclass
class EventResult:
    contact_id: int
    event_id: int | None
    duplicate: bool = False
    created_contact: bool = False
    awarded: dict[str, float] = field(default_factory=dict)
    milestones: list[str] = field(default_factory=list)
    stage_changes: list[StageChange] = field(default_factory=list)


def _opt(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


MAX_ID = 2**31 - 1
TEXT_LIMITS = {"message_id": 200, "anonymous_id": 320, "user_id": 320, "content_stage": 50,
               "campaign": 200, "utm_source": 200, "utm_medium": 200, "utm_campaign": 200}


def _text(event: EventIn, name: str, prefix: str) -> str | None:
    value = getattr(event, name)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"expected text, got {value!r}", field=f"{prefix}{name}")
    text = _opt(str(value))
    if text is not None and len(text) > TEXT_LIMITS[name]:
        raise InvalidInput(f"longer than {TEXT_LIMITS[name]} characters", field=f"{prefix}{name}")
    return text


def validate_event(event: EventIn, *, now: float, prefix: str = "") -> EventIn:
    """Normalise an incoming event; raise InvalidInput naming the offending field.

    UTM parameters in the URL's query string fill the UTM fields that were not given; the
    full URL stays in the properties.
    """
    kind = str(event.type or "").strip().lower()
    if not EVENT_TYPE_RE.match(kind):
        raise InvalidInput(f"event type must look like 'page_view', got {event.type!r}",
                           field=f"{prefix}type")
    ts = now if event.ts is None else event.ts
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise InvalidInput(f"expected a timestamp, got {event.ts!r}", field=f"{prefix}timestamp")
    if ts > now + MAX_FUTURE_SKEW:
        raise InvalidInput("the event lies in the future", field=f"{prefix}timestamp")
    if ts < 0:
        raise InvalidInput("the event predates 1970", field=f"{prefix}timestamp")
    if event.premium is not None and not isinstance(event.premium, bool):
        raise InvalidInput("expected true or false", field=f"{prefix}premium")
    if event.contact_id is not None and (isinstance(event.contact_id, bool) or not isinstance(
            event.contact_id, int) or not 0 < event.contact_id <= MAX_ID):
        raise InvalidInput(f"expected a contact id, got {event.contact_id!r}",
                           field=f"{prefix}contact_id")
    if not isinstance(event.properties or {}, dict):
        raise InvalidInput("expected an object of properties", field=f"{prefix}properties")
    properties = dict(event.properties or {})
    if event.url is not None and not isinstance(event.url, str):
        raise InvalidInput(f"expected a URL, got {event.url!r}", field=f"{prefix}url")
    url = _opt(event.url)
    query: dict[str, list[str]] = {}
    if url is not None:
        if "?" in url:
            properties.setdefault("url", url)
            query = parse_qs(urlsplit(url).query)
        url = url.split("#", 1)[0]
        if "://" in url:
            url = "/" + url.split("://", 1)[1].partition("/")[2]
        url = url.split("?", 1)[0] or "/"
    email = None
    if event.email is not None:
        if not isinstance(event.email, str):
            raise InvalidInput(f"not a valid email address: {event.email!r}",
                               field=f"{prefix}email")
        email = normalize_email(event.email, field=f"{prefix}email")
    texts = {name: _text(event, name, prefix) for name in TEXT_LIMITS}
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        if texts[name] is None and query.get(name):
            texts[name] = query[name][0][:TEXT_LIMITS[name]]
    if not (event.contact_id or email or texts["anonymous_id"] or texts["user_id"]):
        raise InvalidInput("an event needs a contact id, email, userId or anonymousId",
                           field=f"{prefix}contact")
    return EventIn(
        type=kind, contact_id=event.contact_id, email=email,
        anonymous_id=texts["anonymous_id"], user_id=texts["user_id"], ts=float(ts),
        message_id=texts["message_id"], url=url,
        content_stage=(texts["content_stage"] or "").lower() or None, premium=event.premium,
        campaign=texts["campaign"], utm_source=texts["utm_source"],
        utm_medium=texts["utm_medium"], utm_campaign=texts["utm_campaign"],
        properties=properties,
    )


def _resolve(uow: UnitOfWork, ctx: Context, event: EventIn, *, at: float
             ) -> tuple[Contact, bool]:
    if event.contact_id is not None:
        contact = uow.contacts.get(event.contact_id)
        if contact is None:
            raise NotFound(f"event for an unknown contact id {event.contact_id}",
                           field="contact_id")
        if ctx.config.is_erased(contact.stage):
            raise Suppressed("this person asked to be forgotten; their data may not come back",
                             field="contact_id")
        return contact, False
    ensure_not_suppressed(uow, salt=ctx.suppression_salt, email=event.email,
                          user_id=event.user_id, anonymous_id=event.anonymous_id)
    for kind, value in event.identities:
        found = uow.contacts.find_by_identity(kind, value)
        if found is not None:
            contact = load_contact(uow, found)
            for k, v in (("user_id", event.user_id), ("anonymous_id", event.anonymous_id)):
                if v and uow.contacts.find_by_identity(k, v) is None:
                    uow.contacts.add_identity(found, k, v)
            return contact, False
    contact, _ = new_contact(
        uow=uow, ctx=ctx, data=ContactIn(email=event.email, anonymous_id=event.anonymous_id,
                                         user_id=event.user_id, source=event.utm_source),
        actor="tracking", at=at)
    return contact, True


def record_in(*, uow: UnitOfWork, ctx: Context, event: EventIn) -> EventResult:
    """Record one validated event inside an open unit of work."""
    if event.message_id and uow.events.has_message(event.message_id):
        return EventResult(contact_id=event.contact_id or 0, event_id=None, duplicate=True)
    assert event.ts is not None
    contact, created = _resolve(uow, ctx, event, at=event.ts)
    assert contact.id is not None
    shape = event.shape
    now = ctx.clock.now()
    event_id = uow.events.add(Event(contact_id=contact.id, ts=event.ts, shape=shape,
                                    message_id=event.message_id, properties=event.properties,
                                    received_at=now))
    if contact.last_event_at is None or event.ts >= contact.last_event_at:
        awarded = apply_event_in_order(contact, ts=event.ts, shape=shape, config=ctx.config).awarded
    else:
        # A late event: replay the whole history so caps and decay are exact.
        rebuild_from_history(contact, uow.events.history(contact.id), ctx.config)
        awarded = {}
    outcome = evaluate(contact, ctx.config, at=event.ts, now=now)
    contact.updated_at = now
    persist_outcome(uow, contact, outcome, ctx.config, actor="rule")
    return EventResult(contact_id=contact.id, event_id=event_id, created_contact=created,
                       awarded=awarded, milestones=outcome.milestones,
                       stage_changes=outcome.stage_changes)


def record_event(*, uow: UnitOfWork, ctx: Context, event: EventIn) -> EventResult:
    """Record one event: dedupe, resolve the contact, score, apply the pipeline rules."""
    valid = validate_event(event, now=ctx.clock.now())
    with uow:
        uow.serialize("tracking")
        result = record_in(uow=uow, ctx=ctx, event=valid)
        uow.commit()
    return result


def record_events(*, uow: UnitOfWork, ctx: Context, events: Sequence[EventIn]
                  ) -> list[EventResult]:
    """Record a batch atomically: every event is valid and stored, or nothing is."""
    now = ctx.clock.now()
    valid = [validate_event(e, now=now, prefix=f"events[{i}].") for i, e in enumerate(events)]
    order = sorted(range(len(valid)), key=lambda i: valid[i].ts or 0.0)
    results: list[EventResult | None] = [None] * len(valid)
    with uow:
        uow.serialize("tracking")
        for i in order:
            try:
                results[i] = record_in(uow=uow, ctx=ctx, event=valid[i])
            except LeadflowError as exc:
                exc.field = f"events[{i}].{exc.field}" if exc.field else f"events[{i}]"
                raise
        uow.commit()
    return [r for r in results if r is not None]


@dataclass
class IdentifyIn:
    anonymous_id: str | None = None
    user_id: str | None = None
    email: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)


def merge_contacts(*, uow: UnitOfWork, ctx: Context, survivor: Contact, absorbed: Contact,
                   actor: str) -> Contact:
    """Fold ``absorbed`` (usually an anonymous visitor) into ``survivor``; keep all history."""
    assert survivor.id is not None
    assert absorbed.id is not None
    now = ctx.clock.now()
    uow.events.reassign(absorbed.id, survivor.id)
    uow.contacts.move_identities(absorbed.id, survivor.id)
    uow.history.reassign(absorbed.id, survivor.id)
    uow.tasks.reassign(absorbed.id, survivor.id)
    uow.activities.reassign(absorbed.id, survivor.id)
    uow.opportunities.reassign(absorbed.id, survivor.id)
    uow.mail.reassign(absorbed.id, survivor.id)
    for name in ("email", "phone", "first_name", "last_name", "title", "seniority",
                 "account_role", "country", "region", "language", "source", "account_id",
                 "referred_by_id", "owner_id"):
        if getattr(survivor, name) is None and getattr(absorbed, name) is not None:
            if name == "email":
                continue  # the absorbed row still holds it until deleted; copied below
            setattr(survivor, name, getattr(absorbed, name))
    email = survivor.email or absorbed.email
    for key, value in absorbed.attributes.items():
        survivor.attributes.setdefault(key, value)
    for key, at in absorbed.milestones.items():
        survivor.milestones.setdefault(key, at)
    for channel, record in absorbed.consent.items():
        mine = survivor.consent.get(channel)
        if mine is None or record.at > mine.at:  # the latest word on consent wins
            survivor.consent[channel] = record
    if not survivor.qualification.answers and absorbed.qualification.answers:
        survivor.qualification = absorbed.qualification
    if absorbed.recycled_at is not None and (survivor.recycled_at is None
                                             or absorbed.recycled_at > survivor.recycled_at):
        survivor.recycled_at = absorbed.recycled_at
    if survivor.referred_by_id == absorbed.id:
        survivor.referred_by_id = None
    uow.contacts.move_referrals(absorbed.id, survivor.id)
    if survivor.owner_id is not None:  # the absorbed contact's open work is the owner's now
        uow.tasks.reassign_open(survivor.id, survivor.owner_id)
        uow.opportunities.reassign_owner(survivor.id, survivor.owner_id)
    stage_change = None
    if ctx.config.rank(absorbed.stage) > ctx.config.rank(survivor.stage) >= 0:
        stage_change = move(survivor, absorbed.stage, at=now, actor=actor, config=ctx.config,
                            reason=f"merged with contact {absorbed.id}", kind="forward")
    uow.contacts.delete(absorbed.id)
    uow.contacts.record_merge(absorbed.id, survivor.id, now, actor)
    survivor.email = email
    rebuild_from_history(survivor, uow.events.history(survivor.id), ctx.config)
    refit(uow, survivor, ctx.config)
    outcome = evaluate(survivor, ctx.config, at=now, now=now)
    if stage_change is not None:
        outcome.stage_changes.insert(0, stage_change)
    persist_outcome(uow, survivor, outcome, ctx.config, actor=actor)
    uow.history.add_audit(survivor.id, now, actor, "merged", {"absorbed_contact": absorbed.id})
    uow.outbox.add(topic=CONTACT_MERGED, contact_id=survivor.id,
                   payload=merge_payload(survivor, absorbed.id, now), at=now)
    return survivor


def identify(*, uow: UnitOfWork, ctx: Context, data: IdentifyIn, actor: str = "tracking"
             ) -> Contact:
    """Tie an anonymous visitor to a known person, merging their histories; apply traits."""
    with uow:
        contact = identify_in(uow=uow, ctx=ctx, data=data, actor=actor)
        uow.commit()
    return contact


def identify_in(*, uow: UnitOfWork, ctx: Context, data: IdentifyIn, actor: str = "tracking"
                ) -> Contact:
    """``identify`` inside an open unit of work."""
    anonymous_id, user_id = _opt(data.anonymous_id), _opt(data.user_id)
    traits = dict(data.traits)
    email = normalize_contact_fields({"email": data.email or traits.pop("email", None)})["email"]
    traits.pop("email", None)
    if not (anonymous_id or user_id or email):
        raise InvalidInput("identify needs an anonymousId, a userId or an email",
                           field="userId")
    known_fields = normalize_contact_fields(
        {k: v for k, v in traits.items() if k in ("phone", "first_name", "last_name", "title",
                                                  "seniority", "account_role", "country",
                                                  "region", "language")})
    attributes = {k: v for k, v in traits.items() if k not in known_fields}
    ensure_not_suppressed(uow, salt=ctx.suppression_salt, email=email, user_id=user_id,
                          anonymous_id=anonymous_id)
    anon_id = uow.contacts.find_by_identity("anonymous_id", anonymous_id) if anonymous_id \
        else None
    user_owner = uow.contacts.find_by_identity("user_id", user_id) if user_id else None
    email_owner = uow.contacts.find_by_identity("email", email) if email else None
    known_id = user_owner or email_owner
    if user_owner and email_owner and user_owner != email_owner:
        # Two contacts turn out to be one person: the one known by user id takes the other
        # in, unless it already has another email (then the email stays where it is).
        holder = load_contact(uow, user_owner)
        if holder.email is None:
            merge_contacts(uow=uow, ctx=ctx, survivor=holder,
                           absorbed=load_contact(uow, email_owner),
                           actor=actor)
    now = ctx.clock.now()
    if known_id is not None and anon_id is not None and known_id != anon_id:
        contact = merge_contacts(uow=uow, ctx=ctx, survivor=load_contact(uow, known_id),
                                 absorbed=load_contact(uow, anon_id), actor=actor)
    elif known_id is not None or anon_id is not None:
        contact = load_contact(uow, known_id or anon_id or 0)
    else:
        contact, _ = new_contact(uow=uow, ctx=ctx, data=ContactIn(anonymous_id=anonymous_id),
                                 actor=actor)
    assert contact.id is not None
    for kind, value in (("anonymous_id", anonymous_id), ("user_id", user_id)):
        if value:
            uow.contacts.add_identity(contact.id, kind, value)
    if email and contact.email is None and uow.contacts.find_by_identity(
            "email", email) in (None, contact.id):
        contact.email = email
        uow.contacts.add_identity(contact.id, "email", email)
    diff = {}
    for key, value in known_fields.items():
        if value is not None and getattr(contact, key) != value:
            diff[key] = [getattr(contact, key), value]
            setattr(contact, key, value)
    for key, value in attributes.items():
        if contact.attributes.get(key) != value:
            diff[f"attributes.{key}"] = [contact.attributes.get(key), value]
            contact.attributes[key] = value
    contact.updated_at = now
    refit(uow, contact, ctx.config)
    outcome = evaluate(contact, ctx.config, at=now, now=now)
    persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
    if diff:
        uow.history.add_audit(contact.id, now, actor, "identified", diff)
    return contact
