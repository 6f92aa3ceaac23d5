"""Funnel analytics for whoever asks, within what they may see: admins and marketers every
contact, a sales manager their team's, a rep their own (and only their own tasks' SLA).

The figures and their definitions are in ``domain.analytics``; the database computes them
(``adapters/db/analytics_reads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from leadflow.domain.analytics import (
    BREAKDOWNS,
    FunnelGroup,
    FunnelReport,
    FunnelShape,
    SlaReport,
    SlaRow,
    StageTime,
    TimeInStageReport,
    add_groups,
)
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import Principal
from leadflow.services.context import Context

ALL = "all"


class AnalyticsReads(Protocol):
    """The read models analytics need (adapters/db/analytics_reads)."""

    def item_id(self, *, key: str) -> int | None: ...

    def funnel_groups(self, *, shape: FunnelShape, stages: Sequence[str],
                      by: str | None, item_id: int | None = None,
                      owners: tuple[int, ...] | None = None) -> list[FunnelGroup]: ...

    def stage_times(self, *, by: str | None, item_id: int | None = None,
                    owners: tuple[int, ...] | None = None) -> list[StageTime]: ...

    def sla(self, *, now: float, owners: tuple[int, ...] | None = None) -> list[SlaRow]: ...


def breakdown(*, reads: AnalyticsReads, by: str | None, item: str | None
              ) -> tuple[str | None, str | None, int | None]:
    """(breakdown, item key, item id), checked: ``item`` implies the content breakdown."""
    if by is not None:
        by = by.strip().lower() or None
    if by is not None and by not in BREAKDOWNS:
        raise InvalidInput(f"break down by one of {', '.join(BREAKDOWNS)}, not {by!r}",
                           field="by")
    if item is None or not item.strip():
        return by, None, None
    if by not in (None, "content"):
        raise InvalidInput("a content item goes with the content breakdown", field="item")
    key = item.strip().lower()
    item_id = reads.item_id(key=key)
    if item_id is None:
        raise InvalidInput(f"no content item {key!r}", field="item")
    return "content", key, item_id


def _empty(shape: FunnelShape, stages: list[str]) -> FunnelGroup:
    return FunnelGroup(group=ALL, contacts=0, current=dict.fromkeys(stages, 0),
                       reached=(0,) * len(shape.main),
                       strict=(0,) * max(0, len(shape.main) - 1))


def funnel_report(*, reads: AnalyticsReads, ctx: Context, principal: Principal,
                  by: str | None = None, item: str | None = None) -> FunnelReport:
    """The funnel of the contacts the principal sees, in total and per group of ``by``
    (one of BREAKDOWNS; ``item``: a content item's key, consumed or not)."""
    by, key, item_id = breakdown(reads=reads, by=by, item=item)
    shape = FunnelShape.of(ctx.config)
    stages = [s.key for s in ctx.config.stages]
    owners = principal.visible_owners
    if by is None:
        found = reads.funnel_groups(shape=shape, stages=stages, by=None, owners=owners)
        return FunnelReport(by=None, item=None, shape=shape,
                            total=found[0] if found else _empty(shape, stages))
    groups = reads.funnel_groups(shape=shape, stages=stages, by=by, item_id=item_id,
                                 owners=owners)
    overlapping = by == "content" and item_id is None
    if overlapping:  # a contact is in the group of each maturity it consumed
        found = reads.funnel_groups(shape=shape, stages=stages, by=None, owners=owners)
        total = found[0] if found else _empty(shape, stages)
    else:
        total = add_groups(ALL, groups, len(shape.main)) if groups else _empty(shape, stages)
    return FunnelReport(by=by, item=key, shape=shape, total=total, groups=groups,
                        overlapping=overlapping)


def _in_stage_order(rows: list[StageTime], stages: list[str], group: str | None
                    ) -> list[StageTime]:
    found = {r.stage: r for r in rows}
    return [found.get(s) or StageTime(group=group, stage=s, left=0, still_in=0, median=None,
                                      p90=None) for s in stages]


def time_in_stage_report(*, reads: AnalyticsReads, ctx: Context, principal: Principal,
                         by: str | None = None, item: str | None = None
                         ) -> TimeInStageReport:
    """How long stays in each stage last (median, p90) and how many are not over, in total
    and per group of ``by``."""
    by, key, item_id = breakdown(reads=reads, by=by, item=item)
    stages = [s.key for s in ctx.config.stages]
    owners = principal.visible_owners
    total = _in_stage_order(reads.stage_times(by=None, owners=owners), stages, ALL)
    groups: list[StageTime] = []
    if by is not None:
        rows = reads.stage_times(by=by, item_id=item_id, owners=owners)
        names = sorted({r.group for r in rows}, key=lambda g: (g is None, g or ""))
        for name in names:
            groups += _in_stage_order([r for r in rows if r.group == name], stages, name)
    return TimeInStageReport(by=by, item=key, stages=tuple(stages), total=total,
                             groups=groups)


def sla_report(*, reads: AnalyticsReads, ctx: Context, principal: Principal) -> SlaReport:
    """Each rep's follow-up tasks against their due times (a rep: their own only)."""
    now = ctx.clock.now()
    return SlaReport(now=now, reps=reads.sla(now=now, owners=principal.visible_owners))


# ---------------------------------------------------------------- as plain data


def group_summary(group: FunnelGroup, shape: FunnelShape) -> dict[str, Any]:
    handed, won = group.prospects(shape)
    return {
        "group": group.group, "contacts": group.contacts, "current": dict(group.current),
        "reached": dict(zip(shape.main, group.reached, strict=True)),
        "steps": [{"from": s.from_stage, "to": s.to_stage, "reached_from": s.reached_from,
                   "reached_to": s.reached_to, "strict": s.strict,
                   "strict_rate": s.strict_rate, "cumulative_rate": s.cumulative_rate}
                  for s in group.steps(shape)],
        "prospects": {"reached": handed, "won": won,
                      "closing_rate": group.prospect_closing_rate(shape)},
        "opportunities": {"won": group.deals_won, "lost": group.deals_lost,
                          "open": group.deals_open,
                          "closing_rate": group.opportunity_closing_rate},
        "backward": {"recycles": group.recycles, "disqualifications": group.disqualifications,
                     "other": group.other_backward,
                     "recycled_contacts": group.recycled_contacts,
                     "disqualified_contacts": group.disqualified_contacts},
    }


def funnel_summary(report: FunnelReport) -> dict[str, Any]:
    """The funnel report as plain data (what the API answers and the CLI prints)."""
    return {"by": report.by, "item": report.item, "overlapping": report.overlapping,
            "main_stages": list(report.shape.main),
            "total": group_summary(report.total, report.shape),
            "groups": [group_summary(g, report.shape) for g in report.groups]}


def time_summary(report: TimeInStageReport) -> dict[str, Any]:
    return {"by": report.by, "item": report.item, "stages": list(report.stages),
            "total": [asdict(r) for r in report.total],
            "groups": [asdict(r) for r in report.groups]}


def sla_row(row: SlaRow) -> dict[str, Any]:
    return {**asdict(row), "due": row.due, "compliance": row.compliance}


def sla_summary(report: SlaReport) -> dict[str, Any]:
    total = sla_row(report.total)
    for name in ("owner_id", "name", "email"):
        total.pop(name)
    return {"now": report.now, "reps": [sla_row(r) for r in report.reps], "total": total}
