"""Values picked by people: from a fixed set (scopes of a key, topics of a webhook), a day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from leadflow.domain.errors import InvalidInput


def pick(values: Iterable[str], allowed: tuple[str, ...], *, field: str, what: str,
         empty: str) -> tuple[str, ...]:
    """The distinct values, trimmed and lower-cased; InvalidInput names an unknown one,
    or says ``empty`` when there is none."""
    picked = tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    unknown = [v for v in picked if v not in allowed]
    if unknown:
        raise InvalidInput(f"unknown {what} {unknown[0]!r}; choose from {', '.join(allowed)}",
                           field=field)
    if not picked:
        raise InvalidInput(empty, field=field)
    return picked


def day_start(value: str, *, field: str) -> float:
    """The start (00:00 UTC) of a day written like 2026-12-24."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"expected a date like 2026-12-24, got {value!r}",
                           field=field) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
