"""Lists of values picked from a fixed set (scopes of a key, topics of a webhook)."""

from __future__ import annotations

from collections.abc import Iterable

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
