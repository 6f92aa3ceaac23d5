"""The contact list's filters, checked, and saved segments: filters kept under a name.

The filters travel as the list's query parameters (text); ``check_filters`` reads them into
values and says, filter by filter, what is wrong. A segment keeps the checked text, per user,
optionally shared with every user. Opening a segment gives its filters only: what contacts
they show is always limited by the rights of whoever opens it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.config import GRADES, LifecycleConfig
from leadflow.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from leadflow.domain.ports import SavedSegment, UnitOfWork
from leadflow.domain.users import Principal
from leadflow.services.context import Context

# The list's filter parameters, in the order the page shows them; ``sort`` goes with them.
FILTER_KEYS = ("q", "stage", "milestone", "temperature", "grade", "min_score", "max_score",
               "owner", "source", "sort")
TEMPERATURES = ("hot", "warm", "new", "cold")
NAME_MAX = 100
SEARCH_MAX = 200
SOURCE_MAX = 100


@dataclass(frozen=True)
class Problem:
    """What is wrong with one filter: English text with ``{placeholders}``, and their
    values (the page translates the text, then fills it in)."""

    text: str
    values: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        return self.text.format(**self.values) if self.values else self.text


# Every text a Problem may carry (the web app's catalogs translate each one).
PROBLEM_TEXTS = (
    "Unknown stage {value}.",
    "Unknown milestone {value}.",
    "Temperatures are hot, warm, new and cold; {value} is none of them.",
    "Grades are A, B, C and D (or B+ for A and B); {value} is none of them.",
    "Enter a number of 0 or more.",
    "The minimum is above the maximum.",
    "Choose an owner from the list.",
    "Enter at most {n} characters.",
    "Sort by one of the columns.",
)


@dataclass(frozen=True)
class CheckedFilters:
    """The filters read from text: each one None when not set."""

    stage: tuple[str, ...] | None = None
    milestone: str | None = None
    temperature: tuple[str, ...] | None = None
    grade: tuple[str, ...] | None = None
    min_score: float | None = None
    max_score: float | None = None
    owner_id: int | None = None
    source: str | None = None
    search: str | None = None
    sort: str | None = None
    text: dict[str, str] = field(default_factory=dict)  # the set filters as text, cleaned
    problems: dict[str, Problem] = field(default_factory=dict)  # by filter

    @property
    def ok(self) -> bool:
        return not self.problems


def _list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def _grades(value: str) -> tuple[str, ...] | None:
    value = value.strip().upper()
    if value.endswith("+") and value[:-1] in GRADES:
        return GRADES[: GRADES.index(value[:-1]) + 1]
    grades = _list(value)
    if not grades or any(g not in GRADES for g in grades):
        return None
    return grades


def _score(value: str) -> float | None:
    try:
        number = float(value.strip().replace(",", "."))
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def check_filters(*, config: LifecycleConfig, values: Mapping[str, str],
                  sorts: Collection[str], owner_ids: Collection[int] | None = None
                  ) -> CheckedFilters:
    """Read the filters from their text (other keys are ignored); ``owner_ids``: the owners
    the user may filter by (None: any). Every wrong filter gets its Problem."""
    text = {k: str(values.get(k) or "").strip() for k in FILTER_KEYS}
    text = {k: v for k, v in text.items() if v}
    problems: dict[str, Problem] = {}
    out: dict[str, Any] = {}
    if "q" in text:
        if len(text["q"]) > SEARCH_MAX:
            problems["q"] = Problem("Enter at most {n} characters.", {"n": SEARCH_MAX})
        out["search"] = text["q"]
    if "stage" in text:
        stages = _list(text["stage"])
        unknown = [s for s in stages if not config.has_stage(s)]
        if unknown or not stages:
            problems["stage"] = Problem("Unknown stage {value}.",
                                        {"value": repr(unknown[0] if unknown else text["stage"])})
        out["stage"] = stages
        text["stage"] = ",".join(stages)
    if "milestone" in text:
        if text["milestone"] not in config.milestone_keys():
            problems["milestone"] = Problem("Unknown milestone {value}.",
                                            {"value": repr(text["milestone"])})
        out["milestone"] = text["milestone"]
    if "temperature" in text:
        temps = _list(text["temperature"].lower())
        bad = [x for x in temps if x not in TEMPERATURES]
        if bad or not temps:
            problems["temperature"] = Problem(
                "Temperatures are hot, warm, new and cold; {value} is none of them.",
                {"value": repr(bad[0] if bad else text["temperature"])})
        out["temperature"] = temps
        text["temperature"] = ",".join(temps)
    if "grade" in text:
        grades = _grades(text["grade"])
        if grades is None:
            problems["grade"] = Problem(
                "Grades are A, B, C and D (or B+ for A and B); {value} is none of them.",
                {"value": repr(text["grade"])})
        out["grade"] = grades
        text["grade"] = text["grade"].upper()
    for key in ("min_score", "max_score"):
        if key in text:
            number = _score(text[key])
            if number is None:
                problems[key] = Problem("Enter a number of 0 or more.")
            out[key] = number
    low, high = out.get("min_score"), out.get("max_score")
    if low is not None and high is not None and low > high:
        problems["max_score"] = Problem("The minimum is above the maximum.")
    if "owner" in text:
        owner = int(text["owner"]) if text["owner"].isdigit() and len(text["owner"]) < 10 \
            else None
        if owner is None or (owner_ids is not None and owner not in owner_ids):
            problems["owner"] = Problem("Choose an owner from the list.")
        out["owner_id"] = owner
    if "source" in text:
        if len(text["source"]) > SOURCE_MAX:
            problems["source"] = Problem("Enter at most {n} characters.", {"n": SOURCE_MAX})
        out["source"] = text["source"].lower()
        text["source"] = text["source"].lower()
    if "sort" in text:
        if text["sort"] not in sorts:
            problems["sort"] = Problem("Sort by one of the columns.")
        out["sort"] = text["sort"]
    return CheckedFilters(**out, text=text, problems=problems)


def _clean_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise InvalidInput("a segment needs a name", field="name")
    if len(clean) > NAME_MAX:
        raise InvalidInput(f"a segment's name has at most {NAME_MAX} characters", field="name")
    return clean


def save_segment(*, uow: UnitOfWork, ctx: Context, principal: Principal, name: str,
                 filters: Mapping[str, str], shared: bool, sorts: Collection[str]
                 ) -> SavedSegment:
    """Keep the filters under a name for this user (Conflict if they have one of that name
    already); ``shared``: every user sees it in their list. Wrong filters: InvalidInput."""
    if principal.user_id is None:
        raise Forbidden("segments belong to users", field="authorization")
    clean = _clean_name(name)
    checked = check_filters(config=ctx.config, values=filters, sorts=sorts)
    for key, problem in checked.problems.items():
        raise InvalidInput(problem.english(), field=key)
    with uow:
        if uow.segments.named(principal.user_id, clean) is not None:
            raise Conflict(f"you have a segment named {clean!r} already", field="name")
        segment = uow.segments.add(owner_id=principal.user_id, name=clean,
                                   filters=checked.text, shared=bool(shared),
                                   at=ctx.clock.now())
        uow.commit()
    return segment


def list_segments(*, uow: UnitOfWork, principal: Principal) -> list[SavedSegment]:
    """The user's own segments and the shared ones, by name."""
    if principal.user_id is None:
        return []
    with uow:
        return uow.segments.visible_to(principal.user_id)


def _visible(uow: UnitOfWork, principal: Principal, segment_id: int) -> SavedSegment:
    segment = uow.segments.get(segment_id)
    if segment is None or (not segment.shared and segment.owner_id != principal.user_id):
        raise NotFound(f"no segment {segment_id}", field="segment")
    return segment


def open_segment(*, uow: UnitOfWork, principal: Principal, segment_id: int) -> SavedSegment:
    """A segment the user may open: their own or a shared one (else NotFound: another
    user's private segment is not theirs to know of)."""
    with uow:
        return _visible(uow, principal, segment_id)


def delete_segment(*, uow: UnitOfWork, principal: Principal, segment_id: int) -> SavedSegment:
    """Delete one's own segment; an admin also deletes shared ones."""
    with uow:
        segment = _visible(uow, principal, segment_id)
        if segment.owner_id != principal.user_id and principal.role != "admin":
            raise Forbidden("only its author or an admin may delete a shared segment",
                            field="segment")
        uow.segments.delete(segment_id)
        uow.commit()
    return segment

