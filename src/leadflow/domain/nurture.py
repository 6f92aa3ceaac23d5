"""Nurture tracks and autoresponders: what they are and how a contact moves through a track.

A track is for an audience — ``marketing`` (leads nobody in sales owns) or ``sales`` (prospects
and opportunities a rep owns) — and lists the stage roles it takes contacts from. Its steps run
in order: ``send`` an email with content (a named item or the next best of some maturities),
``wait`` a while, ``if`` a condition holds (else stop, or skip the next step), ``task`` for the
owner. Customers are in no track: they get the newsletter only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from leadflow.domain.content import MATURITIES

AUDIENCE_ROLES: dict[str, tuple[str, ...]] = {
    "marketing": ("entry", "interest"),
    "sales": ("handoff", "commit"),
}
MAX_STEPS_AT_ONCE = 50  # a track of only sends and ifs still stops somewhere


@dataclass(frozen=True)
class Condition:
    engagement_at_least: float | None = None
    engagement_below: float | None = None
    milestone: str | None = None
    no_milestone: str | None = None
    consumed: str | None = None      # a maturity it has consumed content of
    not_consumed: str | None = None  # a maturity it has not
    temperature: tuple[str, ...] | None = None

    def holds(self, facts: Facts) -> bool:
        checks = [
            self.engagement_at_least is None or facts.engagement >= self.engagement_at_least,
            self.engagement_below is None or facts.engagement < self.engagement_below,
            self.milestone is None or self.milestone in facts.milestones,
            self.no_milestone is None or self.no_milestone not in facts.milestones,
            self.consumed is None or self.consumed in facts.consumed_maturities,
            self.not_consumed is None or self.not_consumed not in facts.consumed_maturities,
            self.temperature is None or (facts.temperature or "") in self.temperature,
        ]
        return all(checks)


@dataclass(frozen=True)
class Step:
    kind: str  # send | wait | if | task
    item: str | None = None                     # send: this item
    maturities: tuple[str, ...] = ()            # send: the next best of these
    seconds: float = 0.0                        # wait
    condition: Condition | None = None          # if
    otherwise: str = "stop"                     # if: stop | skip
    task_kind: str = "follow_up"                # task
    title: str = ""                             # task
    due_seconds: float = 0.0                    # task


@dataclass(frozen=True)
class Track:
    key: str
    name: str
    audience: str
    stage_roles: tuple[str, ...]
    steps: tuple[Step, ...]
    priority: int
    expires_seconds: float = 7 * 86400.0  # a held email older than this is skipped
    source: str = "config"                # config | api


@dataclass(frozen=True)
class Autoresponder:
    key: str
    trigger: str            # form_submitted | milestone
    match: str | None       # the form key or milestone key; None: any form
    item: str | None
    maturities: tuple[str, ...]
    priority: int


@dataclass
class Enrollment:
    contact_id: int
    track_key: str
    status: str  # active | done | left
    step: int
    next_at: float | None
    entered_at: float
    updated_at: float
    reason: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Facts:
    """What track conditions may look at."""

    engagement: float = 0.0
    milestones: frozenset[str] = frozenset()
    consumed_maturities: frozenset[str] = frozenset()
    temperature: str | None = None


@dataclass(frozen=True)
class SendAction:
    step: int
    item: str | None
    maturities: tuple[str, ...]


@dataclass(frozen=True)
class TaskAction:
    step: int
    kind: str
    title: str
    due_seconds: float


@dataclass
class Advance:
    actions: list[SendAction | TaskAction] = field(default_factory=list)
    step: int = 0
    next_at: float | None = None  # None: the track is over for this contact
    stopped_by: int | None = None  # the `if` step that ended it early


def advance(track: Track, *, step: int, facts: Facts, now: float) -> Advance:
    """Run a contact's track from ``step`` until it must wait or the track ends."""
    out = Advance(step=step)
    ran = 0
    while out.step < len(track.steps) and ran < MAX_STEPS_AT_ONCE:
        current = track.steps[out.step]
        ran += 1
        if current.kind == "wait":
            out.step += 1
            out.next_at = now + current.seconds
            return out
        if current.kind == "send":
            out.actions.append(SendAction(step=out.step, item=current.item,
                                          maturities=current.maturities))
        elif current.kind == "task":
            out.actions.append(TaskAction(step=out.step, kind=current.task_kind,
                                          title=current.title, due_seconds=current.due_seconds))
        elif current.kind == "if":
            assert current.condition is not None
            if not current.condition.holds(facts):
                if current.otherwise == "stop":
                    out.stopped_by = out.step
                    out.step = len(track.steps)
                    break
                out.step += 1  # skip the step after the `if`
        out.step += 1
    if out.step < len(track.steps):  # stopped by the guard: go on at the next tick
        out.next_at = now
        return out
    out.next_at = None
    return out


def tracks_for(tracks: Sequence[Track], *, stage_role: str, owned: bool) -> list[Track]:
    """The tracks a contact in this stage role belongs in: marketing ones only while nobody in
    sales owns it, sales ones only once somebody does."""
    return [t for t in tracks if stage_role in t.stage_roles
            and (t.audience == "sales") == owned]


def consumed_maturities(maturities: Sequence[str]) -> frozenset[str]:
    return frozenset(m for m in maturities if m in MATURITIES)
