"""Reading one value of a file row as a mapping says: missing values, value maps, types."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from leadflow.domain.errors import InvalidInput
from leadflow.services.import_mapping import TEMPLATE_RE, RowCondition, ValueSpec

TRUE_WORDS = frozenset({"true", "yes", "y", "t", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "f", "0"})


def zone(name: str) -> tzinfo:
    return UTC if name.upper() == "UTC" else ZoneInfo(name)


class RowReader:
    """Reads values out of one row; every error names the column."""

    def __init__(self, values: Mapping[str, str], *, missing: frozenset[str], tz: tzinfo,
                 joined: bool) -> None:
        self.values = values
        self.missing = missing
        self.tz = tz
        self.joined = joined

    def raw(self, column: str, extra_missing: frozenset[str] = frozenset()) -> str | None:
        text = (self.values.get(column) or "").strip()
        if text in self.missing or text in extra_missing:
            return None
        return text

    def read(self, spec: ValueSpec) -> Any:
        """The value, converted; None when missing (InvalidInput if it is required)."""
        if spec.column is None:
            return spec.constant
        text = self.raw(spec.column, spec.missing)
        value: Any = text
        if text is not None and spec.map is not None:
            if text in spec.map:
                value = spec.map[text]
            elif spec.other == "missing":
                value = None
            elif spec.other == "error":
                listed = ", ".join(repr(k) for k in spec.map)
                raise InvalidInput(f"unexpected value {text!r} (expected one of {listed})",
                                   field=spec.column)
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                raise InvalidInput("a value is required", field=spec.column)
            return None
        return self.convert(value, spec)

    def convert(self, value: Any, spec: ValueSpec) -> Any:
        column = spec.column or spec.where
        if not isinstance(value, str):
            return value  # a mapped or default value from the mapping, already typed
        kind = spec.type
        if kind == "text":
            return value
        if kind == "int":
            number = _number(value, column, "a whole number")
            if not number.is_integer():
                raise InvalidInput(f"expected a whole number, got {value!r}", field=column)
            return int(number)
        if kind == "float":
            return _number(value, column, "a number")
        if kind == "bool":
            word = value.lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise InvalidInput(f"expected yes or no, got {value!r}", field=column)
        return self.moment(value, spec, column)

    def moment(self, value: str, spec: ValueSpec, column: str) -> date | datetime:
        try:
            if spec.format:
                parsed = datetime.strptime(value, spec.format)
            else:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            expected = f"a date like {spec.format}" if spec.format else "an ISO 8601 date"
            raise InvalidInput(f"expected {expected}, got {value!r}", field=column) from None
        if spec.type == "date":
            return parsed.date()
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed

    def timestamp(self, spec: ValueSpec, *, now: float) -> float | None:
        value = self.read(spec)
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, datetime.min.time(), tzinfo=self.tz)
        if not isinstance(value, datetime):
            raise InvalidInput(f"expected a date, got {value!r}", field=spec.column)
        ts = value.timestamp()
        if ts > now + 300 or ts < 0:
            raise InvalidInput(f"the time {value.isoformat()} lies in the future or before 1970",
                               field=spec.column)
        return ts

    def holds(self, cond: RowCondition) -> bool:
        if cond.joined is not None and cond.joined != self.joined:
            return False
        if cond.column is None:
            return True
        text = self.raw(cond.column)
        return text is not None and (not cond.equals or text in cond.equals)

    def fill(self, template: str | None) -> str | None:
        """A template with its columns filled in; None when one of them is missing."""
        if template is None:
            return None
        parts: list[str] = []
        end = 0
        for match in TEMPLATE_RE.finditer(template):
            text = self.raw(match.group(1))
            if text is None:
                return None
            parts += [template[end:match.start()], text]
            end = match.end()
        parts.append(template[end:])
        return "".join(parts)


def _number(value: str, column: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"expected {what}, got {value!r}", field=column) from None
    if not math.isfinite(number):
        raise InvalidInput(f"expected {what}, got {value!r}", field=column)
    return number


def plain(value: Any) -> Any:
    """A value as it is stored in JSON attributes (dates and times as ISO 8601 text)."""
    if isinstance(value, date):
        return value.isoformat()
    return value
