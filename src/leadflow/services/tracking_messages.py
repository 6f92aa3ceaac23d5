"""Segment / RudderStack tracking messages, read into leadflow's own calls.

A message is one JSON object of the Segment HTTP Tracking API (``identify``, ``track``,
``page``, ``screen``, ``group``, ``alias``). Reading checks each message on its own, so a batch
keeps its valid messages when one is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.domain.errors import InvalidInput
from leadflow.services.contacts import AccountIn
from leadflow.services.events import EventIn, IdentifyIn

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
SHORT_TYPES = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group",
               "a": "alias"}
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

# Segment's spec'd traits, by leadflow's contact field.
TRAIT_FIELDS = {"firstName": "first_name", "first_name": "first_name",
                "lastName": "last_name", "last_name": "last_name", "phone": "phone",
                "title": "title", "seniority": "seniority", "language": "language",
                "country": "country", "region": "region"}
NAME_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass
class TrackCall:
    event: EventIn


@dataclass
class IdentifyCall:
    identify: IdentifyIn
    event: EventIn  # the identify itself, stored for the timeline and messageId dedupe
    company: AccountIn | None = None  # Segment's traits.company, when it names one


@dataclass
class GroupCall:
    account: AccountIn
    group_id: str
    event: EventIn


@dataclass
class AliasCall:
    previous_id: str
    user_id: str
    event: EventIn


Call = TrackCall | IdentifyCall | GroupCall | AliasCall


@dataclass
class Rejected:
    index: int
    message_id: str | None
    field: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "field": self.field,
                "error": self.error}


@dataclass
class Envelope:
    """What a request says about all its messages: received when, from where."""

    received_at: float
    context: dict[str, Any] = field(default_factory=dict)
    sent_at: Any = None
    ip: str | None = None


def parse_time(value: Any, name: str) -> float | None:
    """ISO-8601 (as the SDKs send) or seconds since the epoch."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"expected a date and time, got {value!r}", field=name)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"expected a date and time, got {value!r}", field=name)
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidInput(f"expected an ISO-8601 date and time, got {value!r}",
                               field=name) from None
        if moment.tzinfo is None:
            raise InvalidInput(f"the time {value!r} has no time zone", field=name)
        return moment.timestamp()
    raise InvalidInput(f"expected a date and time, got {value!r}", field=name)


def event_type_of(name: Any) -> str:
    """'Form Submitted' → 'form_submitted', the way leadflow's rules name event types."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a track call needs an event name", field="event")
    kind = NAME_CHARS.sub("_", name.strip().lower()).strip("_")
    if not kind or not kind[0].isalpha():
        raise InvalidInput(f"an event name must start with a letter, got {name!r}",
                           field="event")
    return kind[:100]


def _object(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"expected an object, got {type(value).__name__}", field=name)
    return value


def _id(message: dict[str, Any], name: str) -> str | None:
    value = message.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"expected a string, got {value!r}", field=name)
    return str(value)


def _timestamp(message: dict[str, Any], envelope: Envelope) -> float:
    """The event's time, corrected for the sender's clock skew as Segment does:
    received − (sentAt − timestamp)."""
    stamp = parse_time(message.get("timestamp") or message.get("originalTimestamp"),
                       "timestamp")
    sent = parse_time(message.get("sentAt") or envelope.sent_at, "sentAt")
    if stamp is None:
        return envelope.received_at
    if sent is None:
        return stamp
    return envelope.received_at - (sent - stamp)


def _merged_context(message: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    context = dict(envelope.context)
    context.update(_object(message, "context"))
    return context


def _inner(context: dict[str, Any], name: str) -> dict[str, Any]:
    value = context.get(name)
    return value if isinstance(value, dict) else {}


def _event(message: dict[str, Any], envelope: Envelope, kind: str,
           properties: dict[str, Any]) -> EventIn:
    context = _merged_context(message, envelope)
    page, campaign, traits = (_inner(context, name) for name in ("page", "campaign", "traits"))
    url = properties.get("url") or page.get("url")
    stored = dict(properties)
    for key, value in (("referrer", properties.get("referrer") or page.get("referrer")),
                       ("title", properties.get("title") or page.get("title")),
                       ("user_agent", context.get("userAgent")),
                       ("ip", context.get("ip") or envelope.ip),
                       ("library", (context.get("library") or {}).get("name")
                        if isinstance(context.get("library"), dict) else None)):
        if value and key not in stored:
            stored[key] = value
    email = traits.get("email") if kind != "identify" else None
    premium = properties.get("premium")
    return EventIn(
        type=kind, email=email if isinstance(email, str) else None,
        anonymous_id=_id(message, "anonymousId"), user_id=_id(message, "userId"),
        ts=_timestamp(message, envelope), message_id=_id(message, "messageId"),
        url=url if isinstance(url, str) else None,
        content_stage=properties.get("content_stage"),
        premium=premium if isinstance(premium, bool) else None,
        campaign=properties.get("campaign") if isinstance(properties.get("campaign"), str)
        else None,
        utm_source=campaign.get("source"), utm_medium=campaign.get("medium"),
        utm_campaign=campaign.get("name"), properties=stored,
    )


def _account(traits: dict[str, Any], group_id: str) -> AccountIn:
    website = traits.get("website") or traits.get("domain")
    domain = None
    if isinstance(website, str) and website.strip():
        domain = website.strip().lower().split("://", 1)[-1].split("/", 1)[0]
        domain = domain.removeprefix("www.")
    employees = traits.get("employees")
    industry = traits.get("industry")
    known = {"name", "website", "domain", "employees", "industry"}
    return AccountIn(
        name=str(traits.get("name") or domain or group_id),
        domain=domain, industry=industry if isinstance(industry, str) else None,
        employees=employees if isinstance(employees, int) else None,
        attributes={"group_id": group_id,
                    **{k: v for k, v in traits.items() if k not in known}})


def read_message(message: Any, envelope: Envelope, *, kind: str | None = None) -> Call:
    """One message into a leadflow call; InvalidInput names what is wrong."""
    if not isinstance(message, dict):
        raise InvalidInput("a message must be a JSON object", field="message")
    declared = message.get("type", kind)
    kind = SHORT_TYPES.get(declared, declared) if isinstance(declared, str) else None
    if kind not in MESSAGE_TYPES:
        raise InvalidInput(f"unknown message type {declared!r}", field="type")
    if not (_id(message, "userId") or _id(message, "anonymousId")):
        raise InvalidInput("a message needs a userId or an anonymousId", field="userId")
    properties = _object(message, "properties")
    if kind == "track":
        return TrackCall(_event(message, envelope, event_type_of(message.get("event")),
                                properties))
    if kind in ("page", "screen"):
        named = dict(properties)
        for key in ("name", "category"):
            if isinstance(message.get(key), str) and key not in named:
                named[key] = message[key]
        return TrackCall(_event(message, envelope, f"{kind}_view" if kind == "screen"
                                else "page_view", named))
    traits = _object(message, "traits")
    if kind == "identify":
        context_traits = _merged_context(message, envelope).get("traits")
        merged = {**(context_traits if isinstance(context_traits, dict) else {}), **traits}
        fields: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        company = merged.get("company")
        account = None
        if isinstance(company, dict) and (company.get("name") or company.get("website")):
            # Segment's spec: company {name, id, industry, employee_count, plan, website}
            named = {**company, "employees": company.get("employee_count",
                                                         company.get("employees"))}
            account = _account({k: v for k, v in named.items()
                                if k not in ("id", "employee_count")},
                               str(company.get("id") or company.get("name")))
        for key, value in merged.items():
            if key == "email" or (key == "company" and account is not None):
                continue
            if key in TRAIT_FIELDS and (value is None or isinstance(value, str)):
                fields[TRAIT_FIELDS[key]] = value
            else:
                attributes[key] = value
        email = merged.get("email")
        if email is not None and not isinstance(email, str):
            raise InvalidInput(f"not a valid email address: {email!r}", field="traits.email")
        return IdentifyCall(
            IdentifyIn(anonymous_id=_id(message, "anonymousId"), user_id=_id(message, "userId"),
                       email=email, traits={**attributes, **fields}),
            _event(message, envelope, "identify", {"traits": merged}), account)
    if kind == "group":
        group_id = _id(message, "groupId")
        if not group_id:
            raise InvalidInput("a group call needs a groupId", field="groupId")
        return GroupCall(_account(traits, group_id), group_id,
                         _event(message, envelope, "group", {"group_id": group_id,
                                                             "traits": traits}))
    previous = _id(message, "previousId")
    user_id = _id(message, "userId")
    if not previous or not user_id:
        raise InvalidInput("an alias call needs a previousId and a userId",
                           field="previousId" if not previous else "userId")
    return AliasCall(previous, user_id, _event(message, envelope, "alias",
                                                {"previous_id": previous}))
