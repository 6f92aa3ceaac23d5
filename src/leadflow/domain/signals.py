"""Named signals (configurable evidence such as a demo request) seen in a contact's events."""

from __future__ import annotations

from collections.abc import Mapping

from leadflow.domain.matching import EventShape, Matcher
from leadflow.domain.model import SignalSeen


def signals_of(shape: EventShape, definitions: Mapping[str, Matcher]) -> list[str]:
    return [name for name, matcher in definitions.items() if matcher.matches(shape)]


def record_signals(
    seen: dict[str, SignalSeen], shape: EventShape, ts: float, definitions: Mapping[str, Matcher]
) -> list[str]:
    names = signals_of(shape, definitions)
    note_signals(seen, names, ts)
    return names


def note_signals(seen: dict[str, SignalSeen], names: list[str], ts: float) -> None:
    for name in names:
        seen.setdefault(name, SignalSeen()).add(ts)


def seen_since(seen: Mapping[str, SignalSeen], name: str, since: float | None) -> bool:
    s = seen.get(name)
    if s is None or s.latest is None:
        return False
    return since is None or s.latest > since
