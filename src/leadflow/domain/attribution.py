"""Multi-touch attribution: which sources, campaigns and content brought the customers and
the pipeline.

A *touch* of a contact is one of its events that carried a source (``utm_source``), a
campaign (``utm_campaign``) or consumed a content item — and, when none of its events
carried a source, the contact's own ``source`` as a touch at its creation. The touches that
count for a conversion are those at or before it: for a customer, its first move into a won
stage; for the pipeline, the creation of its first open or won opportunity.

Models: *first* gives all the credit to the first touch, *last* to the last touch before the
conversion, *linear* an equal share to each. Credit: 1 per customer; the sum of the
contact's open and won opportunities, per currency, for the pipeline. A converting contact
without any touch gives its credit to the group None ("no touch"), so that the groups add
up to the number of customers and to the pipeline value.

The fold is per contact, in Python, over the touches of the converting contacts only (a few
in any base); the database finds those contacts and their touches set-based.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MODELS = ("first", "last", "linear")
DIMENSIONS = ("source", "campaign", "content")


@dataclass(frozen=True)
class Touch:
    ts: float
    seq: int  # the event id (0: the contact's own source), to order touches at one time
    source: str | None = None
    campaign: str | None = None
    content: str | None = None

    def key(self, by: str) -> str | None:
        value: str | None = getattr(self, by)
        return value


@dataclass(frozen=True)
class Converting:
    """A contact that became a customer or has pipeline, with every touch it had."""

    contact_id: int
    touches: tuple[Touch, ...]  # in any order
    customer_at: float | None = None
    pipeline_at: float | None = None
    pipeline: dict[str, float] = field(default_factory=dict)  # currency → amount


@dataclass
class AttributionGroup:
    group: str | None
    customers: float = 0.0
    pipeline: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributionReport:
    model: str
    by: str
    customers: int
    pipeline: dict[str, float]
    groups: list[AttributionGroup]


def before(touches: Iterable[Touch], at: float) -> list[Touch]:
    """The touches at or before ``at``, in time order."""
    return sorted((t for t in touches if t.ts <= at), key=lambda t: (t.ts, t.seq))


def shares(touches: Sequence[Touch], model: str) -> list[tuple[Touch | None, float]]:
    """How a conversion's credit is shared over its touches (in time order); no touch:
    everything to None. The shares add up to 1."""
    if not touches:
        return [(None, 1.0)]
    if model == "first":
        return [(touches[0], 1.0)]
    if model == "last":
        return [(touches[-1], 1.0)]
    if model == "linear":
        return [(t, 1.0 / len(touches)) for t in touches]
    raise ValueError(f"unknown model {model!r}")


def attribute(contacts: Iterable[Converting], *, model: str, by: str) -> AttributionReport:
    """The credit of each group of ``by`` under ``model``: largest customers first."""
    groups: dict[str | None, AttributionGroup] = {}
    customers = 0
    pipeline: dict[str, float] = {}

    def group(touch: Touch | None) -> AttributionGroup:
        key = touch.key(by) if touch is not None else None
        return groups.setdefault(key, AttributionGroup(group=key))

    for c in contacts:
        if c.customer_at is not None:
            customers += 1
            for touch, share in shares(before(c.touches, c.customer_at), model):
                group(touch).customers += share
        if c.pipeline_at is not None and c.pipeline:
            for cur, amount in c.pipeline.items():
                pipeline[cur] = pipeline.get(cur, 0.0) + amount
            for touch, share in shares(before(c.touches, c.pipeline_at), model):
                g = group(touch)
                for cur, amount in c.pipeline.items():
                    g.pipeline[cur] = g.pipeline.get(cur, 0.0) + share * amount
    ordered = sorted(groups.values(), key=lambda g: (
        -g.customers, -sum(g.pipeline.values()), g.group is None, g.group or ""))
    return AttributionReport(model=model, by=by, customers=customers, pipeline=pipeline,
                             groups=ordered)
