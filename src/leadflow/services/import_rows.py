"""One file row, planned: who it is, what we know of them, and what they did (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from leadflow.domain.errors import InvalidInput
from leadflow.services.contacts import AccountIn, ContactIn, normalize_contact_fields
from leadflow.services.events import EventIn
from leadflow.services.import_mapping import EventSpec, ImportMapping
from leadflow.services.import_values import RowReader, plain

MAX_MESSAGE_ID = 200


@dataclass(frozen=True)
class SourceRow:
    """A record of the file: its physical line (header = 1) and its values by column."""

    line: int
    values: Mapping[str, str]
    joined: bool = False  # a row of the joined file matched it
    problem: str | None = None  # the record itself is broken (wrong number of fields...)


@dataclass
class RowPlan:
    line: int
    identity_kind: str
    identity_value: str
    contact: ContactIn
    entry_at: float
    events: list[EventIn] = field(default_factory=list)


def plan_row(mapping: ImportMapping, row: SourceRow, *, now: float, tz: tzinfo) -> RowPlan:
    """Read a row as the mapping says; InvalidInput names the column at fault."""
    if row.problem is not None:
        raise InvalidInput(row.problem, line=row.line)
    reader = RowReader(row.values, missing=mapping.missing, tz=tz, joined=row.joined)
    contact = _contact(mapping, reader)
    kind, value, key = _identity(mapping, reader, contact)
    default_time = mapping.time if mapping.time is not None else now
    entry_at = default_time
    if mapping.stage.at is not None:
        entry_at = reader.timestamp(mapping.stage.at, now=now) or default_time
    events: list[EventIn] = []
    for spec in mapping.events:
        events += _events(mapping, spec, reader, key, default_time=default_time, now=now)
    events.sort(key=lambda e: e.ts or 0.0)
    return RowPlan(line=row.line, identity_kind=kind, identity_value=value, contact=contact,
                   entry_at=entry_at, events=events)


def _text(value: Any) -> str | None:
    return None if value is None else str(plain(value))


def _contact(mapping: ImportMapping, reader: RowReader) -> ContactIn:
    raw = {name: _text(reader.read(spec)) for name, spec in mapping.contact.items()}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values.update(normalize_contact_fields({name: value}))
        except InvalidInput as exc:
            exc.field = mapping.contact[name].column or name
            raise
    attributes = {name: plain(v) for name, spec in mapping.attributes.items()
                  if (v := reader.read(spec)) is not None}
    if mapping.label is not None:
        label = reader.joined if mapping.label.joined else (
            reader.read(mapping.label.value) if mapping.label.value else None)
        if label is not None:
            attributes[mapping.label.attribute] = bool(label)
    consent = {channel: bool(v) for channel, spec in mapping.consent.items()
               if (v := reader.read(spec)) is not None}
    values.setdefault("source", "import")
    return ContactIn(**values, attributes=attributes, account=_account(mapping, reader),
                     consent=consent, consent_source=mapping.consent_source)


def _account(mapping: ImportMapping, reader: RowReader) -> AccountIn | None:
    if not mapping.account:
        return None
    values = {name: reader.read(spec) for name, spec in mapping.account.items()}
    if values.get("name") is None:
        return None
    return AccountIn(**{k: plain(v) for k, v in values.items()})


def _identity(mapping: ImportMapping, reader: RowReader, contact: ContactIn
              ) -> tuple[str, str, str]:
    """The identity kind and value to find the contact by, and the key of its message ids."""
    if mapping.id is not None:
        found = reader.raw(mapping.id.column)
        if found is None:
            raise InvalidInput("the id is missing", field=mapping.id.column)
        if mapping.id.kind == "user_id":
            contact.user_id = found
            return "user_id", found, found
        return mapping.id.kind, f"{mapping.name}:{found}", found
    if contact.email is None:
        column = mapping.contact["email"].column if "email" in mapping.contact else "email"
        raise InvalidInput("no email: the row cannot be told apart from others", field=column)
    return "email", contact.email, contact.email


def _message_id(*parts: str) -> str:
    text = ":".join(("import", *parts))
    if len(text) <= MAX_MESSAGE_ID:
        return text
    return "import:" + hashlib.sha256(text.encode()).hexdigest()


def _events(mapping: ImportMapping, spec: EventSpec, reader: RowReader, key: str, *,
            default_time: float, now: float) -> list[EventIn]:
    if spec.when is not None and not reader.holds(spec.when):
        return []
    kind = spec.type
    if spec.type_from is not None:
        kind = _text(reader.read(spec.type_from))
    if kind is None:
        return []
    count = 1
    if spec.count is not None:
        found = reader.read(spec.count)
        count = 0 if found is None else int(found)
        if not 0 <= count <= spec.max_count:
            raise InvalidInput(f"expected between 0 and {spec.max_count} {kind} events, "
                               f"got {count}", field=spec.count.column)
    if count == 0:
        return []
    ts = default_time
    if spec.at is not None:
        found_ts = reader.timestamp(spec.at, now=now)
        if found_ts is None:
            raise InvalidInput(f"the time of the {kind} event is missing", field=spec.at.column)
        ts = found_ts
    filled = {name: reader.fill(t) for name, t in spec.templates.items()}
    properties = {name: v for name, t in spec.properties.items()
                  if (v := reader.fill(t)) is not None}
    return [EventIn(type=kind, ts=ts,
                    message_id=_message_id(mapping.name, key, spec.key, kind, str(n)),
                    url=filled.get("url"), content_stage=filled.get("content_stage"),
                    premium=spec.premium, campaign=filled.get("campaign"),
                    utm_source=filled.get("utm_source"), utm_medium=filled.get("utm_medium"),
                    utm_campaign=filled.get("utm_campaign"), properties=dict(properties))
            for n in range(1, count + 1)]
