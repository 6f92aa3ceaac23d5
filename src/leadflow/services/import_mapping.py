"""What an import mapping says: how the columns of a file become contacts and events.

The mapping is read from YAML by ``leadflow.adapters.csv_mapping``; every part keeps ``where``,
its location in that file, so that problems found later still point at the line to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

VALUE_TYPES = ("text", "int", "float", "bool", "date", "datetime")
IDENTITY_KINDS = ("external_id", "user_id")
OTHER_POLICIES = ("keep", "missing", "error")
TEMPLATE_RE = re.compile(r"\{([^{}]+)\}")


def template_columns(template: str | None) -> list[str]:
    """The columns a template such as ``/landing/{landing_page_id}`` reads."""
    return TEMPLATE_RE.findall(template) if template else []


@dataclass(frozen=True)
class ValueSpec:
    """One value: read from a column (or a constant), mapped, then converted to a type."""

    where: str
    column: str | None = None
    constant: Any = None
    type: str = "text"
    map: Mapping[str, Any] | None = None
    other: str = "keep"  # what a value the map does not list becomes
    missing: frozenset[str] = frozenset()  # more values meaning "not given", besides the file's
    required: bool = False
    default: Any = None
    format: str | None = None  # strptime format of a date or datetime column


@dataclass(frozen=True)
class RowCondition:
    """When an event happens: a column holds one of some values (or any value), and/or the
    row has (or has not) a match in the joined file."""

    where: str
    column: str | None = None
    equals: tuple[str, ...] = ()
    joined: bool | None = None


@dataclass(frozen=True)
class EventSpec:
    where: str
    key: str  # part of each event's message id, so a re-import finds what it already wrote
    type: str | None = None
    type_from: ValueSpec | None = None  # the event type read from a column, through a map
    count: ValueSpec | None = None  # a whole number: that many events (default one)
    max_count: int = 1000
    when: RowCondition | None = None
    at: ValueSpec | None = None  # default: the mapping's fixed time
    premium: bool | None = None
    templates: Mapping[str, str] = field(default_factory=dict)  # url, campaign, utm_*...
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdSpec:
    where: str
    column: str
    kind: str = "external_id"


@dataclass(frozen=True)
class StageSpec:
    where: str
    key: str | None = None
    role: str | None = None
    reason: str | None = None
    at: ValueSpec | None = None


@dataclass(frozen=True)
class JoinSpec:
    """A second file whose row with the same key adds its columns to the row."""

    where: str
    file: str
    key: str
    file_key: str


@dataclass(frozen=True)
class LabelSpec:
    """The outcome a predictive model learns, kept as a boolean contact attribute."""

    where: str
    attribute: str
    value: ValueSpec | None = None
    joined: bool = False  # true exactly when the row has a match in the joined file


@dataclass(frozen=True)
class ModelSpec:
    """What a predictive model may not read: attributes or columns known only after the
    outcome (``leaking``) and identifiers that are no features (``ignore``)."""

    where: str
    leaking: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportMapping:
    source: str  # where the mapping came from, for messages
    name: str
    stage: StageSpec
    id: IdSpec | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    missing: frozenset[str] = frozenset({""})
    timezone: str = "UTC"
    time: float | None = None  # when undated behaviour happened
    contact: Mapping[str, ValueSpec] = field(default_factory=dict)
    attributes: Mapping[str, ValueSpec] = field(default_factory=dict)
    account: Mapping[str, ValueSpec] = field(default_factory=dict)
    consent: Mapping[str, ValueSpec] = field(default_factory=dict)
    consent_source: str = "import"
    events: tuple[EventSpec, ...] = ()
    join: JoinSpec | None = None
    label: LabelSpec | None = None
    model: ModelSpec | None = None

    def value_specs(self) -> Iterator[ValueSpec]:
        for group in (self.contact, self.attributes, self.account, self.consent):
            yield from group.values()
        for ev in self.events:
            yield from (s for s in (ev.type_from, ev.count, ev.at) if s is not None)
        for spec in (self.stage.at, self.label.value if self.label else None):
            if spec is not None:
                yield spec

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads, with where it is read first."""
        out: dict[str, str] = {}
        if self.id is not None:
            out.setdefault(self.id.column, self.id.where)
        if self.join is not None:
            out.setdefault(self.join.key, self.join.where)
        for spec in self.value_specs():
            if spec.column is not None:
                out.setdefault(spec.column, spec.where)
        for ev in self.events:
            if ev.when is not None and ev.when.column is not None:
                out.setdefault(ev.when.column, ev.when.where)
            for template in (*ev.templates.values(), *ev.properties.values()):
                for column in template_columns(template):
                    out.setdefault(column, ev.where)
        return out
