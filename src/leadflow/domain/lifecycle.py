"""What happens to a contact when something happens: the pure core of every service."""

from __future__ import annotations

from dataclasses import dataclass, field

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.engagement import apply_event as apply_engagement
from leadflow.domain.engagement import replay
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Contact, StageChange
from leadflow.domain.signals import note_signals
from leadflow.domain.stages import exclusion_target, facts_for, forward_target, milestones_reached
from leadflow.domain.temperature import temperature_of


@dataclass
class Outcome:
    awarded: dict[str, float] = field(default_factory=dict)
    signals: list[str] = field(default_factory=list)
    milestones: list[str] = field(default_factory=list)
    stage_changes: list[StageChange] = field(default_factory=list)
    temperature_changed: bool = False
    temperature_before: str | None = None


def move(
    contact: Contact, to_stage: str, *, at: float, actor: str, config: LifecycleConfig,
    reason: str | None, kind: str,
) -> StageChange:
    assert contact.id is not None
    change = StageChange(
        contact_id=contact.id, from_stage=contact.stage, to_stage=to_stage,
        at=max(at, contact.stage_entered_at), actor=actor,
        config_version=config.config_version, reason=reason, kind=kind,
    )
    contact.stage = to_stage
    contact.stage_entered_at = change.at
    return change


def first_seen(contact: Contact, *, actor: str, config: LifecycleConfig) -> StageChange:
    """The change that records a new contact entering the pipeline at its entry stage."""
    assert contact.id is not None
    return StageChange(contact_id=contact.id, from_stage=None, to_stage=contact.stage,
                       at=contact.stage_entered_at, actor=actor,
                       config_version=config.config_version, reason="first seen",
                       kind="forward")


def evaluate(contact: Contact, config: LifecycleConfig, *, at: float, now: float) -> Outcome:
    """Apply milestone, exclusion and forward stage rules, then refresh the temperature.

    ``at`` is when the evidence happened (stage changes are dated then); ``now`` is the clock.
    """
    out = Outcome()
    facts = facts_for(contact, config, now=at)
    for key in milestones_reached(contact, config, facts):
        contact.milestones[key] = at
        out.milestones.append(key)
    excluded = exclusion_target(contact, config)
    if excluded is not None:
        out.stage_changes.append(move(
            contact, excluded.key, at=at, actor=f"rule:exclusion:{contact.fit.excluded_by}",
            config=config, reason=contact.fit.exclusion_reason, kind="side"))
    else:
        target = forward_target(contact, config, facts)
        if target is not None:
            out.stage_changes.append(move(contact, target.key, at=at, actor=f"rule:{target.key}",
                                          config=config, reason=None, kind="forward"))
    out.temperature_before = contact.temperature
    out.temperature_changed = refresh_temperature(contact, config, now=now)
    return out


def refresh_temperature(contact: Contact, config: LifecycleConfig, *, now: float) -> bool:
    h = config.engagement.half_life_seconds
    reading = temperature_of(
        contact, config.role_of(contact.stage), now=now, config=config.temperature,
        engagement_now=contact.engagement.at(now, h), half_life_seconds=h,
    )
    changed = reading.temperature != contact.temperature
    contact.temperature = reading.temperature
    contact.temperature_until = reading.valid_until
    return changed


def apply_event_in_order(
    contact: Contact, *, ts: float, shape: EventShape, config: LifecycleConfig,
) -> Outcome:
    """Score and record the signals of an event no older than the contact's latest one."""
    rules = config.engagement.rules_for(shape)
    h = config.engagement.half_life_seconds
    awarded = apply_engagement(contact.engagement, ts=ts, rules=rules, half_life_seconds=h)
    if contact.recycled_at is not None and ts <= contact.recycled_at and awarded:
        # Evidence from before the recycle that arrives after it belongs to the baseline.
        contact.recycle_baseline += sum(awarded.values()) * 2.0 ** (
            -(contact.recycled_at - ts) / h)
    signals = config.signals_for(shape)
    note_signals(contact.signals, signals, ts)
    contact.last_event_at = ts if contact.last_event_at is None else max(contact.last_event_at, ts)
    out = Outcome(awarded=awarded, signals=signals)
    return out


def rebuild_from_history(
    contact: Contact, history: list[tuple[float, EventShape]], config: LifecycleConfig,
) -> None:
    """Recompute engagement and signals exactly from the full event history (sorted)."""
    h = config.engagement.half_life_seconds
    contact.engagement = replay(history, config.engagement)
    contact.signals = {}
    for ts, shape in history:
        note_signals(contact.signals, config.signals_for(shape), ts)
    contact.last_event_at = history[-1][0] if history else None
    if contact.recycled_at is not None:
        before = replay(history, config.engagement, until=contact.recycled_at)
        contact.recycle_baseline = before.at(contact.recycled_at, h)


def recycle_now(contact: Contact, config: LifecycleConfig, *, now: float) -> None:
    """Stamp a recycle: evidence before ``now`` no longer counts for the hand-off rule."""
    contact.recycled_at = now
    contact.recycle_baseline = contact.engagement.at(now, config.engagement.half_life_seconds)
