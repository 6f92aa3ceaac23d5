"""The content library and what content fits whom: maturity by stage role, next best content.

A lead that just found its need gets discovery and evaluation content, never decision content;
a prospect or opportunity gets evaluation and decision content, never discovery; customers get
newsletter issues only. Within what fits, items are ranked by how close their maturity is to
what the contact consumed last and by the topics it showed interest in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from leadflow.domain.errors import InvalidInput

MATURITIES = ("discovery", "evaluation", "decision")
FORMATS = ("article", "white_paper", "case_study", "webinar", "demo", "pricing",
           "newsletter_issue")
LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")

# What each stage role may be sent or shown, in the order it should progress.
MATURITY_BY_ROLE: dict[str, tuple[str, ...]] = {
    "entry": ("discovery",),
    "interest": ("discovery", "evaluation"),
    "handoff": ("evaluation", "decision"),
    "commit": ("evaluation", "decision"),
}
# Event types that count as consuming the item at their URL.
CONSUMING_EVENTS = ("page_view", "content_view", "content_download", "email_clicked")


@dataclass(frozen=True)
class ContentItem:
    key: str
    title: str
    url: str
    maturity: str
    format: str
    premium: bool = False
    topics: tuple[str, ...] = ()
    language: str = "en"
    summary: str = ""
    id: int | None = None
    archived: bool = False

    @property
    def path(self) -> str:
        return url_path(self.url)


def url_path(url: str) -> str:
    """The part of a URL that tracking events keep (their path), without a trailing slash:
    a page view of ``https://site/guides/crm/?utm=x`` consumes the item at ``/guides/crm``."""
    url = url.strip().split("#", 1)[0]
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/") or "/"


def validate_item(item: ContentItem, *, prefix: str = "") -> ContentItem:
    """The item, normalised; InvalidInput names the first bad field."""
    key = item.key.strip().lower()
    if not KEY_RE.match(key):
        raise InvalidInput("a key is lower-case letters, digits and dashes, like 'crm-guide'",
                           field=f"{prefix}key")
    title = item.title.strip()
    if not title or len(title) > 300:
        raise InvalidInput("a title is 1 to 300 characters", field=f"{prefix}title")
    url = item.url.strip()
    parts = urlsplit(url)
    if not (url.startswith("/") or (parts.scheme in ("http", "https") and parts.netloc)):
        raise InvalidInput("expected an http(s) URL or a path starting with '/'",
                           field=f"{prefix}url")
    if len(url) > 2000:
        raise InvalidInput("a URL is at most 2000 characters", field=f"{prefix}url")
    maturity = item.maturity.strip().lower()
    if maturity not in MATURITIES:
        raise InvalidInput(f"maturity is one of {', '.join(MATURITIES)}",
                           field=f"{prefix}maturity")
    fmt = item.format.strip().lower().replace(" ", "_")
    if fmt not in FORMATS:
        raise InvalidInput(f"format is one of {', '.join(FORMATS)}", field=f"{prefix}format")
    language = item.language.strip().lower()
    if not LANGUAGE_RE.match(language):
        raise InvalidInput("a language is a two-letter code like 'en'",
                           field=f"{prefix}language")
    topics = tuple(dict.fromkeys(t.strip().lower() for t in item.topics if t.strip()))
    if any(len(t) > 50 for t in topics):
        raise InvalidInput("a topic is at most 50 characters", field=f"{prefix}topics")
    return ContentItem(key=key, title=title, url=url, maturity=maturity, format=fmt,
                       premium=bool(item.premium), topics=topics, language=language,
                       summary=item.summary.strip(), id=item.id, archived=item.archived)


@dataclass(frozen=True)
class Consumed:
    """An item a contact consumed (viewed, downloaded, clicked) and when, latest first."""

    item: ContentItem
    at: float


@dataclass
class Profile:
    """What content matching needs to know about a contact."""

    stage_role: str
    language: str | None = None
    consumed: Sequence[Consumed] = ()
    sent_keys: frozenset[str] = frozenset()  # items already emailed to it

    @property
    def interests(self) -> Counter[str]:
        return Counter(topic for c in self.consumed for topic in c.item.topics)


@dataclass(frozen=True)
class Recommendation:
    item: ContentItem
    score: float
    reasons: tuple[str, ...] = field(default=())


def allowed_maturities(stage_role: str) -> tuple[str, ...]:
    return MATURITY_BY_ROLE.get(stage_role, ())


def _target_maturity(profile: Profile, allowed: tuple[str, ...]) -> str:
    """The maturity to offer next: one step beyond the most mature content it consumed,
    within what its stage allows."""
    seen = [MATURITIES.index(c.item.maturity) for c in profile.consumed
            if c.item.maturity in MATURITIES]
    wanted = min(max(seen) + 1, len(MATURITIES) - 1) if seen else 0
    ranks = [MATURITIES.index(m) for m in allowed]
    return MATURITIES[min(ranks, key=lambda r: (abs(r - wanted), -r))]


def next_best(items: Iterable[ContentItem], profile: Profile, *, limit: int = 5,
              maturities: Sequence[str] | None = None, default_language: str = "en"
              ) -> list[Recommendation]:
    """The unseen items that fit the contact's stage and language, best first, with why."""
    allowed = allowed_maturities(profile.stage_role)
    if maturities is not None:
        allowed = tuple(m for m in allowed if m in maturities)
    if not allowed:
        return []
    language = (profile.language or default_language).lower()
    seen = {c.item.key for c in profile.consumed} | set(profile.sent_keys)
    target = _target_maturity(profile, allowed)
    interests = profile.interests
    out: list[Recommendation] = []
    for item in items:
        if (item.archived or item.key in seen or item.maturity not in allowed
                or item.format == "newsletter_issue" or item.language != language):
            continue
        reasons = [f"{item.maturity} content fits a contact in a {profile.stage_role} stage"]
        score = 10.0 - 3.0 * abs(MATURITIES.index(item.maturity) - MATURITIES.index(target))
        if item.maturity == target:
            reasons.append(f"{target} is the next step after what it consumed"
                           if profile.consumed else f"{target} content comes first")
        shared = [t for t in item.topics if interests[t]]
        if shared:
            score += sum(min(interests[t], 3) for t in shared)
            reasons.append("about " + ", ".join(shared) + ", which it read about before")
        if item.premium and profile.stage_role == "interest":
            score += 1.0
            reasons.append("premium: the form it asks for tells us more about the lead")
        reasons.append(f"in {language}, its language")
        out.append(Recommendation(item=item, score=score, reasons=tuple(reasons)))
    out.sort(key=lambda r: (-r.score, r.item.key))
    return out[:limit]
