"""What an event looks like to the rules: its shape, and the matchers rules use on it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Event attributes that scoring rules, signals and stage rules may test. Events keep them as
# columns (see adapters.db.tables.event_shapes) so set-based rescoring never parses JSON.
SHAPE_FIELDS = (
    "type",
    "url",
    "content_stage",
    "premium",
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


@dataclass(frozen=True, slots=True)
class EventShape:
    """The rule-visible attributes of an event (no contact, no time)."""

    type: str
    url: str | None = None
    content_stage: str | None = None
    premium: bool | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters; everything else is literal; the whole URL must match."""
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile("^" + ".*".join(parts) + "$", re.IGNORECASE)


@dataclass(frozen=True)
class Matcher:
    """A conjunction of per-field tests; an absent field matches anything.

    Strings match case-insensitively; `url` takes glob patterns (`/pricing*`).
    """

    type: tuple[str, ...] | None = None
    url: tuple[str, ...] | None = None
    content_stage: tuple[str, ...] | None = None
    premium: bool | None = None
    campaign: tuple[str, ...] | None = None
    utm_source: tuple[str, ...] | None = None
    utm_medium: tuple[str, ...] | None = None
    utm_campaign: tuple[str, ...] | None = None

    def matches(self, shape: EventShape) -> bool:
        if self.type is not None and shape.type.lower() not in self.type:
            return False
        if self.url is not None and (
                shape.url is None or not any(glob_regex(p).match(shape.url) for p in self.url)):
            return False
        if self.premium is not None and bool(shape.premium) != self.premium:
            return False
        for name in ("content_stage", "campaign", "utm_source", "utm_medium", "utm_campaign"):
            wanted: tuple[str, ...] | None = getattr(self, name)
            if wanted is None:
                continue
            value: str | None = getattr(shape, name)
            if value is None or value.lower() not in wanted:
                return False
        return True
