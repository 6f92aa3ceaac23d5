"""Funnel analytics: what each figure means, the shapes of the results, and a plain-Python
reference of every per-contact figure (the database computes them set-based; the tests check
that both agree on generated histories).

Definitions (DESIGN §1, "Measurement"):

- *Main path*: the stages of roles entry, interest, handoff, commit and won, in configuration
  order; a stage's *rank* is its position on it. Other stages (excluded, erased) are side
  stages.
- *Reached*: a contact reached main stage S when one of its stage changes entered S or a
  later main stage. A jump (``suspect → prospect``) passes every stage in between; a move back
  keeps what was reached.
- *Strict conversion* A → B (consecutive main stages): the contacts that went from A directly
  to B — one of their stage changes left A, or an earlier main stage, or nowhere (a new
  contact), for B or a later main stage (a jump passes through A then B) — over the contacts
  that reached A. A move from a side stage (a disqualified contact brought back) passes
  through no stage on the way. Each contact counts once, whatever its recycles.
- *Cumulative conversion* A → B: the contacts that reached B over those that reached A
  (contacts still under way count in both).
- *Time in stage*: each stage change starts a stay in the stage it entered; the contact's next
  change (by time, then record order) ends it. Figures are over the stays that ended (a
  nearest-rank median and 90th percentile: the ⌈p·n⌉-th shortest); stays not ended yet are
  counted as "still in". Stages a jump passed through have no stay.
- *Closing rate of prospects*: contacts that reached the (first) won stage over those that
  reached the (first) handoff stage. *Of opportunities*: won / (won + lost) deals.
- *Backward moves*: a *recycle* is a backward move into an interest stage (recycled, rejected
  by sales, a lost deal sent back to nurture, a move back by hand to it); a
  *disqualification* is any move into an excluded stage; *other backward* moves are the
  remaining moves of kind backward (an opportunity back to prospect...).
- *Breakdowns* (each contact's group): ``cohort-week`` (Monday 00:00 UTC of the week it was
  created), ``cohort-month`` (YYYY-MM, UTC), ``source``, ``persona``, ``campaign`` (the
  ``utm_campaign`` of the contact's first event that carried one — its first campaign touch;
  ties by event order) and ``content``: the maturity of every content item it consumed
  (viewed, downloaded, clicked to; a contact that consumed several maturities is in several
  groups), or, for one item, whether it consumed that item. Missing values group as None.
- *SLA compliance* of a rep: of their tasks due by now, the share done by the due time:
  on time (done at or before due) / (on time + late + open and overdue). Open tasks not due
  yet are only counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leadflow.domain.config import LifecycleConfig

BREAKDOWNS = ("cohort-week", "cohort-month", "source", "campaign", "persona", "content")
WEEK = 604_800.0
MONDAY_EPOCH = 345_600.0  # 1970-01-05 00:00 UTC, the first Monday after the epoch
SKIPS_NOTHING = 1_000  # the "from" rank of a move out of a side stage: it passes no stage


# ---------------------------------------------------------------- definitions


@dataclass(frozen=True)
class FunnelShape:
    """What the figures need from the configuration."""

    main: tuple[str, ...]  # main stage keys, in order
    interest: tuple[str, ...]  # stage keys of role interest
    excluded: tuple[str, ...]  # stage keys of role excluded
    handoff_rank: int | None
    won_rank: int | None

    @classmethod
    def of(cls, config: LifecycleConfig) -> FunnelShape:
        main = tuple(s.key for s in config.main_stages)

        def first(role: str) -> int | None:
            keys = [s.key for s in config.stages_with_role(role)]
            return main.index(keys[0]) if keys and keys[0] in main else None

        return cls(main=main,
                   interest=tuple(s.key for s in config.stages_with_role("interest")),
                   excluded=tuple(s.key for s in config.stages_with_role("excluded")),
                   handoff_rank=first("handoff"), won_rank=first("won"))

    def rank(self, stage: str | None) -> int:
        return self.main.index(stage) if stage in self.main else -1

    def from_rank(self, stage: str | None) -> int:
        """Where a move starts on the main path: nowhere (a new contact) is before the first
        stage; a side stage or an unknown one passes no stage on the way."""
        if stage is None:
            return 0
        rank = self.rank(stage)
        return rank if rank >= 0 else SKIPS_NOTHING


def week_start(ts: float) -> float:
    """Monday 00:00 UTC of the week holding ``ts``."""
    return math.floor((ts - MONDAY_EPOCH) / WEEK) * WEEK + MONDAY_EPOCH


def week_label(start: float) -> str:
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d")


def month_label(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The ⌈share·n⌉-th smallest value (share 0.5: the median; 0.9: the 90th percentile)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def median_rank(n: int) -> int:
    """⌈n/2⌉ in integers (what the database computes)."""
    return (n + 1) // 2


def p90_rank(n: int) -> int:
    """⌈9n/10⌉ in integers."""
    return (9 * n + 9) // 10


# ---------------------------------------------------------------- reference (per contact)


@dataclass(frozen=True)
class Change:
    """One recorded stage change, as analytics reads it."""

    id: int
    from_stage: str | None
    to_stage: str
    at: float
    kind: str


@dataclass(frozen=True)
class ContactPath:
    """What a contact's stage changes make of it."""

    reach: int  # highest main rank reached; -1: none
    strict: tuple[bool, ...]  # per consecutive pair of main stages
    recycles: int
    disqualifications: int
    other_backward: int


def contact_path(changes: Iterable[Change], shape: FunnelShape) -> ContactPath:
    """The reference of the per-contact figures (see the module's definitions)."""
    reach = -1
    strict = [False] * max(0, len(shape.main) - 1)
    recycles = disqualifications = other = 0
    for c in changes:
        to = shape.rank(c.to_stage)
        reach = max(reach, to)
        start = shape.from_rank(c.from_stage)
        for i in range(len(strict)):
            if start <= i and to >= i + 1:
                strict[i] = True
        if c.to_stage in shape.excluded:
            disqualifications += 1
        elif c.kind == "backward":
            if c.to_stage in shape.interest:
                recycles += 1
            else:
                other += 1
    return ContactPath(reach=reach, strict=tuple(strict), recycles=recycles,
                       disqualifications=disqualifications, other_backward=other)


def stays(changes: Iterable[Change]) -> list[tuple[str, float | None]]:
    """(stage, seconds in it) of each stay, in order; None: not left yet."""
    ordered = sorted(changes, key=lambda c: (c.at, c.id))
    out: list[tuple[str, float | None]] = []
    for i, c in enumerate(ordered):
        nxt = ordered[i + 1].at - c.at if i + 1 < len(ordered) else None
        out.append((c.to_stage, nxt))
    return out


def first_campaign(touches: Iterable[tuple[float, int, str | None]]) -> str | None:
    """The campaign of the first (time, event id) touch that carried one."""
    carried = sorted((ts, eid, c) for ts, eid, c in touches if c is not None)
    return carried[0][2] if carried else None


# ---------------------------------------------------------------- results


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Step:
    """Conversion between two consecutive main stages."""

    from_stage: str
    to_stage: str
    reached_from: int
    reached_to: int
    strict: int

    @property
    def strict_rate(self) -> float | None:
        return _rate(self.strict, self.reached_from)

    @property
    def cumulative_rate(self) -> float | None:
        return _rate(self.reached_to, self.reached_from)


@dataclass(frozen=True)
class FunnelGroup:
    """The funnel of one group of contacts (counts as the database returns them)."""

    group: str | None
    contacts: int
    current: dict[str, int]  # stage key → contacts in it now
    reached: tuple[int, ...]  # per main stage
    strict: tuple[int, ...]  # per consecutive pair of main stages
    recycles: int = 0
    disqualifications: int = 0
    other_backward: int = 0
    recycled_contacts: int = 0
    disqualified_contacts: int = 0
    deals_won: int = 0
    deals_lost: int = 0
    deals_open: int = 0

    def steps(self, shape: FunnelShape) -> list[Step]:
        return [Step(from_stage=shape.main[i], to_stage=shape.main[i + 1],
                     reached_from=self.reached[i], reached_to=self.reached[i + 1],
                     strict=self.strict[i]) for i in range(len(shape.main) - 1)]

    def prospects(self, shape: FunnelShape) -> tuple[int, int]:
        """(reached the handoff stage, of which reached the won stage)."""
        if shape.handoff_rank is None or shape.won_rank is None:
            return 0, 0
        return self.reached[shape.handoff_rank], self.reached[shape.won_rank]

    def prospect_closing_rate(self, shape: FunnelShape) -> float | None:
        handed, won = self.prospects(shape)
        return _rate(won, handed)

    @property
    def opportunity_closing_rate(self) -> float | None:
        return _rate(self.deals_won, self.deals_won + self.deals_lost)


def add_groups(group: str | None, parts: Sequence[FunnelGroup], width: int) -> FunnelGroup:
    """The sum of disjoint groups (every count adds up)."""
    current: dict[str, int] = {}
    for p in parts:
        for k, v in p.current.items():
            current[k] = current.get(k, 0) + v
    return FunnelGroup(
        group=group, contacts=sum(p.contacts for p in parts), current=current,
        reached=tuple(sum(p.reached[i] for p in parts) for i in range(width)),
        strict=tuple(sum(p.strict[i] for p in parts) for i in range(max(0, width - 1))),
        recycles=sum(p.recycles for p in parts),
        disqualifications=sum(p.disqualifications for p in parts),
        other_backward=sum(p.other_backward for p in parts),
        recycled_contacts=sum(p.recycled_contacts for p in parts),
        disqualified_contacts=sum(p.disqualified_contacts for p in parts),
        deals_won=sum(p.deals_won for p in parts), deals_lost=sum(p.deals_lost for p in parts),
        deals_open=sum(p.deals_open for p in parts))


@dataclass(frozen=True)
class FunnelReport:
    by: str | None
    item: str | None  # the content item of a by-item breakdown
    shape: FunnelShape
    total: FunnelGroup
    groups: list[FunnelGroup] = field(default_factory=list)
    overlapping: bool = False  # groups share contacts (content maturities)


@dataclass(frozen=True)
class StageTime:
    group: str | None
    stage: str
    left: int  # stays that ended
    still_in: int  # stays not ended yet
    median: float | None  # seconds
    p90: float | None


@dataclass(frozen=True)
class TimeInStageReport:
    by: str | None
    item: str | None
    stages: tuple[str, ...]  # every stage key, in configuration order
    total: list[StageTime]
    groups: list[StageTime] = field(default_factory=list)


@dataclass(frozen=True)
class SlaRow:
    owner_id: int
    name: str | None
    email: str | None
    on_time: int
    late: int
    overdue: int  # open and past due
    pending: int  # open, not due yet

    @property
    def due(self) -> int:
        return self.on_time + self.late + self.overdue

    @property
    def compliance(self) -> float | None:
        return _rate(self.on_time, self.due)


@dataclass(frozen=True)
class SlaReport:
    now: float
    reps: list[SlaRow]

    @property
    def total(self) -> SlaRow:
        return SlaRow(owner_id=0, name=None, email=None,
                      on_time=sum(r.on_time for r in self.reps),
                      late=sum(r.late for r in self.reps),
                      overdue=sum(r.overdue for r in self.reps),
                      pending=sum(r.pending for r in self.reps))
