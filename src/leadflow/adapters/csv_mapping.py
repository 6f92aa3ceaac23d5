"""Reading an import mapping from YAML: every problem is named with its location and line.

A mapping is a file path or the name of one shipped in ``leadflow/mappings`` (``x_education``,
``olist``). The shipped ones are the reference for the format; in short::

    name: my_list                 # namespaces ids and event message ids
    missing: ["", "Select"]       # values meaning "not given", in every column
    id: Customer ID               # or {column: ..., kind: external_id | user_id}
    stage: {role: interest, reason: "imported from ..."}
    time: 2020-01-01T00:00:00Z    # when undated behaviour happened
    contact: {country: {column: Country, map: {India: IN}, other: missing}}
    attributes: {visits: {column: Visits, type: int}}
    consent: {email: {column: Do Not Email, map: {"Yes": false, "No": true}}}
    events: [{type: page_view, count: Visits}]
    join: {file: other.csv, key: id}
    label: {attribute: won, joined: true}
    model: {leaking: [won_date], ignore: [seller_id]}   # never read by a predictive model
"""

from __future__ import annotations

import codecs
import re
from dataclasses import replace
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from leadflow.adapters.config_file import read_yaml, with_lines
from leadflow.domain.config import ROLES
from leadflow.domain.errors import ConfigInvalid, ConfigProblem, InvalidInput
from leadflow.services.contacts import CONSENT_CHANNELS, CONTACT_FIELDS
from leadflow.services.events import EVENT_TYPE_RE
from leadflow.services.import_mapping import (
    IDENTITY_KINDS,
    OTHER_POLICIES,
    VALUE_TYPES,
    EventSpec,
    IdSpec,
    ImportMapping,
    JoinSpec,
    LabelSpec,
    ModelSpec,
    RowCondition,
    StageSpec,
    ValueSpec,
)
from leadflow.services.import_values import zone

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TOP_KEYS = ("name", "csv", "missing", "timezone", "time", "id", "stage", "contact",
            "attributes", "account", "consent", "consent_source", "events", "join", "label",
            "model")
VALUE_KEYS = ("column", "value", "type", "map", "other", "missing", "required", "default",
              "format")
EVENT_KEYS = ("type", "key", "count", "max_count", "when", "at", "premium", "properties")
TEMPLATE_FIELDS = ("url", "content_stage", "campaign", "utm_source", "utm_medium",
                   "utm_campaign")
ACCOUNT_TYPES = {"name": "text", "domain": "text", "industry": "text", "employees": "int",
                 "country": "text", "annual_revenue": "float"}
QUOTE_HINT = "quote it: YAML reads yes, no, on, off and numbers as other things"


def shipped_mappings() -> list[str]:
    folder = resources.files("leadflow").joinpath("mappings")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_mapping(ref: str | Path) -> ImportMapping:
    """The mapping in the file ``ref``, or the shipped mapping of that name."""
    path = Path(ref)
    if path.is_file():
        try:
            return parse_mapping_text(path.read_text(encoding="utf-8"), source=str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read the mapping {path}: {exc}", field="mapping") \
                from None
    if str(ref) in shipped_mappings():
        text = resources.files("leadflow").joinpath(f"mappings/{ref}.yaml").read_text("utf-8")
        return parse_mapping_text(text, source=f"{ref} (shipped mapping)")
    raise InvalidInput(f"no mapping file {str(ref)!r}, and no shipped mapping of that name "
                       f"(shipped: {', '.join(shipped_mappings())})", field="mapping")


def parse_mapping_text(text: str, *, source: str) -> ImportMapping:
    doc = read_yaml(text, source=source)
    parser = _Parser(source, doc.lines)
    mapping = parser.mapping(doc.data)
    if doc.duplicates or parser.problems or mapping is None:
        raise ConfigInvalid(source, doc.located(parser.problems))
    return mapping


class _Parser:
    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path or "(top)", message))

    def where(self, path: str) -> str:
        return with_lines([ConfigProblem(path, "")], self.lines)[0].location

    def table(self, value: Any, path: str, keys: tuple[str, ...] | None = None
              ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, "expected a mapping of keys to values")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"key {key!r}: {QUOTE_HINT}")
            elif keys is not None and key not in keys:
                self.add(f"{path}.{key}" if path else key,
                         f"unknown key (allowed: {', '.join(keys)})")
        return {k: v for k, v in value.items() if isinstance(k, str)}

    def text(self, value: Any, path: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.add(path, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected text, got {value!r}" + ("" if isinstance(value, str)
                                                              else f"; {QUOTE_HINT}"))
            return None
        return value

    def texts(self, value: Any, path: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.add(f"{path}[{i}]" if isinstance(value, list) else path,
                         f"expected text, got {item!r}; {QUOTE_HINT}")
            else:
                out.append(item)
        return tuple(out)

    def flag(self, value: Any, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.add(path, f"expected true or false, got {value!r}")
        return None

    def mapping(self, data: Any) -> ImportMapping | None:
        if not isinstance(data, dict):
            self.add("(top)", "expected a mapping (name:, id:, contact:, events: ...)")
            return None
        top = self.table(data, "", TOP_KEYS)
        name = self.text(top.get("name"), "name", required=True) or "import"
        if not NAME_RE.match(name):
            self.add("name", "use lower-case letters, digits and _ (it prefixes ids)")
        csv_opts = self.table(top.get("csv"), "csv", ("delimiter", "encoding"))
        delimiter = self.text(csv_opts.get("delimiter", ","), "csv.delimiter") or ","
        if len(delimiter) != 1:
            self.add("csv.delimiter", "expected one character")
        encoding = self.text(csv_opts.get("encoding", "utf-8"), "csv.encoding") or "utf-8"
        try:
            codecs.lookup(encoding)
        except LookupError:
            self.add("csv.encoding", f"unknown encoding {encoding!r}")
        tz_name = self.text(top.get("timezone", "UTC"), "timezone") or "UTC"
        try:
            zone(tz_name)
        except (ValueError, LookupError):
            self.add("timezone", f"unknown time zone {tz_name!r}")
            tz_name = "UTC"
        join = self.join(top.get("join"))
        contact = self.fields(top.get("contact"), "contact", dict.fromkeys(CONTACT_FIELDS, "text"))
        consent = self.fields(top.get("consent"), "consent",
                              dict.fromkeys(CONSENT_CHANNELS, "bool"), force_type="bool")
        mapping = ImportMapping(
            source=self.source, name=name, stage=self.stage(top.get("stage")),
            id=self.identity(top.get("id")), delimiter=delimiter, encoding=encoding,
            missing=frozenset({"", *self.texts(top.get("missing", []), "missing")}),
            timezone=tz_name, time=self.time(top.get("time"), tz_name),
            contact=contact, attributes=self.fields(top.get("attributes"), "attributes", None),
            account=self.fields(top.get("account"), "account", ACCOUNT_TYPES),
            consent=consent,
            consent_source=self.text(top.get("consent_source"), "consent_source")
            or f"import:{name}",
            events=self.events(top.get("events"), joined=join is not None), join=join,
            label=self.label(top.get("label"), joined=join is not None),
        )
        if "model" in top:
            mapping = replace(mapping, model=self.model(top["model"], mapping))
        if mapping.id is None and "email" not in contact:
            self.add("(top)", "no id: give an id column, or map contact.email, so that "
                     "importing the file again finds its contacts instead of duplicating them")
        if mapping.account and "name" not in mapping.account:
            self.add("account", "an account needs a name")
        return mapping

    def value(self, data: Any, path: str, *, default_type: str = "text",
              types: tuple[str, ...] = VALUE_TYPES) -> ValueSpec | None:
        if isinstance(data, str):
            data = {"column": data}
        if not isinstance(data, dict):
            self.add(path, "expected a column name, or {column: ..., type: ...}")
            return None
        spec = self.table(data, path, VALUE_KEYS)
        column = self.text(spec.get("column"), f"{path}.column")
        if (column is None) == ("value" not in spec):
            self.add(path, "give either a column or a constant value")
        kind = spec.get("type", default_type)
        if kind not in types:
            self.add(f"{path}.type", f"unknown type {kind!r} (allowed: {', '.join(types)})")
            kind = default_type
        table = spec.get("map")
        if table is not None:
            table = self.table(table, f"{path}.map")
            for key, mapped in table.items():
                if mapped is not None and not isinstance(mapped, str | int | float | bool):
                    self.add(f"{path}.map.{key}", "expected a plain value")
        other = spec.get("other", "keep")
        if other not in OTHER_POLICIES:
            self.add(f"{path}.other", f"expected one of {', '.join(OTHER_POLICIES)}")
        fmt = self.text(spec.get("format"), f"{path}.format")
        if fmt is not None and kind not in ("date", "datetime"):
            self.add(f"{path}.format", "a format is for date and datetime columns")
        return ValueSpec(
            where=self.where(path), column=column, constant=spec.get("value"), type=kind,
            map=table, other=other,
            missing=frozenset(self.texts(spec.get("missing", []), f"{path}.missing")),
            required=bool(self.flag(spec.get("required"), f"{path}.required")),
            default=spec.get("default"), format=fmt)

    def fields(self, data: Any, path: str, targets: dict[str, str] | None, *,
               force_type: str | None = None) -> dict[str, ValueSpec]:
        out = {}
        for name, item in self.table(data, path).items():
            here = f"{path}.{name}"
            if targets is not None and name not in targets:
                self.add(here, f"unknown field (allowed: {', '.join(targets)})")
                continue
            if targets is None and not NAME_RE.match(name):
                self.add(here, "use lower-case letters, digits and _ in attribute names")
            default_type = targets[name] if targets else "text"
            spec = self.value(item, here, default_type=default_type,
                              types=(force_type,) if force_type else VALUE_TYPES)
            if spec is not None and force_type == "bool" and spec.map:
                for key, mapped in spec.map.items():
                    if mapped is not None and not isinstance(mapped, bool):
                        self.add(f"{here}.map.{key}", "expected true, false or null")
            if spec is not None:
                out[name] = spec
        return out

    def identity(self, data: Any) -> IdSpec | None:
        if data is None:
            return None
        spec = self.table({"column": data} if isinstance(data, str) else data, "id",
                          ("column", "kind"))
        column = self.text(spec.get("column"), "id.column", required=True)
        kind = spec.get("kind", "external_id")
        if kind not in IDENTITY_KINDS:
            self.add("id.kind", f"expected one of {', '.join(IDENTITY_KINDS)}")
        return IdSpec(where=self.where("id"), column=column or "", kind=kind)

    def stage(self, data: Any) -> StageSpec:
        spec = self.table(data, "stage", ("key", "role", "reason", "at"))
        key = self.text(spec.get("key"), "stage.key")
        role = self.text(spec.get("role"), "stage.role")
        if key and role:
            self.add("stage", "give a stage key or a role, not both")
        if role and role not in ROLES:
            self.add("stage.role", f"unknown role {role!r} (allowed: {', '.join(ROLES)})")
        at = spec.get("at")
        return StageSpec(where=self.where("stage" if data is not None else ""), key=key,
                         role=role, reason=self.text(spec.get("reason"), "stage.reason"),
                         at=None if at is None else self.value(
                             at, "stage.at", default_type="datetime", types=("date", "datetime")))

    def time(self, data: Any, tz_name: str) -> float | None:
        if data is None:
            return None
        try:
            if isinstance(data, str):
                data = datetime.fromisoformat(data.replace("Z", "+00:00"))
            if isinstance(data, date) and not isinstance(data, datetime):
                data = datetime.combine(data, datetime.min.time())
            if not isinstance(data, datetime):
                raise ValueError
        except ValueError:
            self.add("time", f"expected an ISO 8601 time, got {data!r}")
            return None
        moment: datetime = data
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone(tz_name))
        return moment.timestamp()

    def join(self, data: Any) -> JoinSpec | None:
        if data is None:
            return None
        spec = self.table(data, "join", ("file", "key", "file_key"))
        file = self.text(spec.get("file"), "join.file", required=True) or ""
        key = self.text(spec.get("key"), "join.key", required=True) or ""
        file_key = self.text(spec.get("file_key", key), "join.file_key") or key
        return JoinSpec(where=self.where("join"), file=file, key=key, file_key=file_key)

    def label(self, data: Any, *, joined: bool) -> LabelSpec | None:
        if data is None:
            return None
        spec = self.table(data, "label", ("attribute", "joined", *VALUE_KEYS))
        attribute = self.text(spec.pop("attribute", None), "label.attribute",
                              required=True) or "label"
        from_join = bool(self.flag(spec.pop("joined", None), "label.joined"))
        if from_join and not joined:
            self.add("label.joined", "there is no join section")
        if from_join == bool(spec):
            self.add("label", "give either joined: true or a column")
        value = self.value(spec, "label", default_type="bool", types=("bool",)) if spec else None
        return LabelSpec(where=self.where("label"), attribute=attribute, value=value,
                         joined=from_join)

    def model(self, data: Any, mapping: ImportMapping) -> ModelSpec:
        spec = self.table(data, "model", ("leaking", "ignore"))
        known = {*mapping.contact, *mapping.attributes, *mapping.account, *mapping.columns()}
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("leaking", "ignore"):
            names = self.texts(spec.get(key, []), f"model.{key}")
            for i, name in enumerate(names):
                if name not in known:
                    self.add(f"model.{key}[{i}]", f"{name!r} is neither an attribute nor a "
                             "column of this mapping")
            lists[key] = names
        return ModelSpec(where=self.where("model"), leaking=lists["leaking"],
                         ignore=lists["ignore"])

    def events(self, data: Any, *, joined: bool) -> tuple[EventSpec, ...]:
        if data is None:
            return ()
        if not isinstance(data, list):
            self.add("events", "expected a list of events")
            return ()
        out: list[EventSpec] = []
        for i, item in enumerate(data):
            spec = self.event(item, f"events[{i}]", joined=joined)
            if spec is None:
                continue
            if any(e.key == spec.key for e in out):
                self.add(f"events[{i}].key", f"two events have the key {spec.key!r}; "
                         "give each its own (it makes their message ids)")
            out.append(spec)
        return tuple(out)

    def event(self, data: Any, path: str, *, joined: bool) -> EventSpec | None:
        spec = self.table(data, path, (*EVENT_KEYS, *TEMPLATE_FIELDS))
        if not spec:
            self.add(path, "expected an event with at least a type")
            return None
        raw_type = spec.get("type")
        kind = type_from = None
        if isinstance(raw_type, str):
            kind = raw_type
            if not EVENT_TYPE_RE.match(kind):
                self.add(f"{path}.type", "an event type looks like 'page_view'")
        elif isinstance(raw_type, dict):
            type_from = self.value(raw_type, f"{path}.type")
            if type_from is not None:
                if not type_from.map or type_from.column is None:
                    self.add(f"{path}.type", "an event type read from a column needs a map")
                for key, mapped in (type_from.map or {}).items():
                    if mapped is not None and not (isinstance(mapped, str)
                                                   and EVENT_TYPE_RE.match(mapped)):
                        self.add(f"{path}.type.map.{key}", "an event type looks like 'page_view'")
                if type_from.other == "keep":
                    type_from = ValueSpec(**{**type_from.__dict__, "other": "missing"})
        else:
            self.add(f"{path}.type", "required: an event type, or {column: ..., map: ...}")
        key = spec.get("key") or kind or (type_from.column if type_from else None) or path
        key = re.sub(r"[^a-z0-9_]+", "_", str(key).lower()).strip("_")
        max_count = spec.get("max_count", 1000)
        if not isinstance(max_count, int) or isinstance(max_count, bool) or max_count < 1:
            self.add(f"{path}.max_count", "expected a whole number above 0")
            max_count = 1000
        count = spec.get("count")
        at = spec.get("at")
        templates = {f: t for f in TEMPLATE_FIELDS
                     if (t := self.text(spec.get(f), f"{path}.{f}")) is not None}
        properties = {name: t for name, value in self.table(spec.get("properties"),
                                                           f"{path}.properties").items()
                      if (t := self.text(value, f"{path}.properties.{name}")) is not None}
        return EventSpec(
            where=self.where(path), key=key, type=kind, type_from=type_from,
            count=None if count is None else self.value(count, f"{path}.count",
                                                        default_type="int", types=("int",)),
            max_count=max_count, when=self.condition(spec.get("when"), f"{path}.when",
                                                     joined=joined),
            at=None if at is None else self.value(at, f"{path}.at", default_type="datetime",
                                                  types=("date", "datetime")),
            premium=self.flag(spec.get("premium"), f"{path}.premium"),
            templates=templates, properties=properties)

    def condition(self, data: Any, path: str, *, joined: bool) -> RowCondition | None:
        if data is None:
            return None
        spec = self.table(data, path, ("column", "equals", "joined"))
        column = self.text(spec.get("column"), f"{path}.column")
        equals = self.texts(spec["equals"], f"{path}.equals") if "equals" in spec else ()
        is_joined = self.flag(spec.get("joined"), f"{path}.joined")
        if column is None and is_joined is None:
            self.add(path, "give a column (and the values it must equal) or joined: true/false")
        if equals and column is None:
            self.add(f"{path}.equals", "equals needs a column")
        if is_joined is not None and not joined:
            self.add(f"{path}.joined", "there is no join section")
        return RowCondition(where=self.where(path), column=column, equals=equals,
                            joined=is_joined)
