"""Helpers that parse configuration mappings and collect every problem with its location."""

from __future__ import annotations

import re
from typing import Any

from leadflow.domain.errors import ConfigProblem

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Problems:
    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, location: str, message: str) -> None:
        self.items.append(ConfigProblem(location, message))


def under(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def mapping(value: Any, location: str, problems: Problems) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.add(location, f"expected a mapping, got {type(value).__name__}")
        return None
    return value


def sequence(value: Any, location: str, problems: Problems) -> list[Any]:
    if not isinstance(value, list):
        problems.add(location, f"expected a list, got {type(value).__name__}")
        return []
    return value


def unknown_keys(
    data: dict[str, Any], allowed: tuple[str, ...], location: str, problems: Problems
) -> None:
    for key in data:
        if key not in allowed:
            problems.add(under(location, str(key)), f"unknown key (allowed: {', '.join(allowed)})")


def valid_key(value: Any, location: str, problems: Problems) -> str:
    if not isinstance(value, str) or not KEY_RE.match(value):
        problems.add(location, f"expected a lower-case key like 'page_view', got {value!r}")
        return ""
    return value


def number(
    value: Any, location: str, problems: Problems, *, positive: bool = False, default: float = 0.0
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(location, f"expected a number, got {value!r}")
        return default
    if positive and value <= 0:
        problems.add(location, f"must be greater than 0, got {value!r}")
        return default
    return float(value)


def strings(value: Any, location: str, problems: Problems) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            problems.add(under(location, i) if isinstance(value, list) else location,
                         f"expected text, got {item!r}")
            continue
        out.append(str(item).lower())
    if not out and not isinstance(value, list | str | int | float):
        return ()
    if not out and isinstance(value, list) and not value:
        problems.add(location, "expected at least one value")
    return tuple(out)
