"""Pipeline rules: which milestones a contact has reached and how far forward it moves.

Rules only move contacts forward along the main path (entry → interest → handoff → commit →
won); a contact that satisfies several stages at once jumps to the furthest in one change.
Side stages (excluded, erased) are entered by an exclusion rule or by hand, never left by a rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.domain.config import Condition, LifecycleConfig, Stage
from leadflow.domain.fit import grade_at_least, persona_min_grade
from leadflow.domain.model import Contact
from leadflow.domain.signals import seen_since

AUTO_EXCLUDABLE_ROLES = ("entry", "interest", "handoff")


@dataclass(frozen=True)
class Facts:
    """What rules can test about a contact at one moment."""

    contact: Contact
    engagement_since_recycle: float
    min_grade_for_persona: str

    def holds(self, cond: Condition) -> bool:
        c = self.contact
        if cond.op == "all":
            return all(self.holds(x) for x in cond.children)
        if cond.op == "any":
            return any(self.holds(x) for x in cond.children)
        if cond.op == "contact_details":
            return c.has_contact_details
        if cond.op == "signal":
            return seen_since(c.signals, cond.name, c.recycled_at)
        if cond.op == "engagement_at_least":
            return self.engagement_since_recycle >= cond.number
        if cond.op == "fit_at_least":
            if c.fit.excluded_by:
                return False
            minimum = self.min_grade_for_persona if cond.name == "persona" else cond.name
            return grade_at_least(c.fit.grade, minimum)
        if cond.op == "qualification":
            return c.qualification.passed
        raise ValueError(f"unknown condition {cond.op}")


def facts_for(contact: Contact, config: LifecycleConfig, *, now: float) -> Facts:
    h = config.engagement.half_life_seconds
    # The stored score is known from its latest event on: a late event evaluated at its own
    # (older) time must not extrapolate it backwards, which would inflate newer points.
    t0 = contact.engagement.t0
    when = now if t0 is None else max(now, t0)
    engagement = contact.engagement.at(when, h)
    if contact.recycled_at is not None:
        baseline = contact.recycle_baseline * 2.0 ** (-(when - contact.recycled_at) / h)
        engagement -= baseline
    return Facts(contact, engagement, persona_min_grade(contact.fit, config.fit))


def milestones_reached(contact: Contact, config: LifecycleConfig, facts: Facts) -> list[str]:
    """Milestones whose rule holds now and that the contact has not reached before."""
    return [
        m.key for m in config.milestones
        if m.when is not None and m.key not in contact.milestones and facts.holds(m.when)
    ]


def forward_target(contact: Contact, config: LifecycleConfig, facts: Facts) -> Stage | None:
    """The furthest main stage beyond the current one whose entry rule holds."""
    current = config.rank(contact.stage)
    if current < 0:
        return None
    target = None
    for i, stage in enumerate(config.main_stages):
        if i > current and stage.enter_when is not None and facts.holds(stage.enter_when):
            target = stage
    return target


def exclusion_target(contact: Contact, config: LifecycleConfig) -> Stage | None:
    if not contact.fit.excluded_by:
        return None
    if config.role_of(contact.stage) not in AUTO_EXCLUDABLE_ROLES:
        return None
    return config.first_stage("excluded")
