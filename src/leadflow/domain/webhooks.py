"""Webhooks: the topics one can subscribe to, how a delivery is signed, when it is retried."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from leadflow.domain.choices import pick
from leadflow.domain.lifecycle import Outcome
from leadflow.domain.model import Contact, StageChange

# An outbox message: topic, the contact it is about, its payload, and when it happened.
Message = tuple[str, int | None, dict[str, Any], float]

STAGE_CHANGED = "stage.changed"
MILESTONE_REACHED = "milestone.reached"
TEMPERATURE_CHANGED = "temperature.changed"
CONTACT_MERGED = "contact.merged"
CONTACT_ASSIGNED = "contact.assigned"  # a prospect got its owner (hand-off, reassignment)
TASK_DUE_SOON = "task.due_soon"  # a reminder to the task's owner
TASK_OVERDUE = "task.overdue"  # an escalation to the owner's managers
# Not a webhook topic: an email to a user (a reminder, an escalation) that the relay hands
# to the mail job.
MAIL_NOTIFICATION = "mail.notification"
TOPICS = (STAGE_CHANGED, MILESTONE_REACHED, TEMPERATURE_CHANGED, CONTACT_MERGED,
          CONTACT_ASSIGNED, TASK_DUE_SOON, TASK_OVERDUE)

SIGNATURE_HEADER = "X-Leadflow-Signature"
DELIVERY_HEADER = "X-Leadflow-Delivery"
TIMESTAMP_HEADER = "X-Leadflow-Timestamp"
TOPIC_HEADER = "X-Leadflow-Topic"

# 10 s, 20 s, 40 s ... up to 4 h between tries: a receiver may be down for about a day.
MAX_ATTEMPTS = 16
FIRST_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 4 * 3600.0


def parse_topics(values: Iterable[str]) -> tuple[str, ...]:
    return pick(values, TOPICS, field="topics", what="topic",
                empty="subscribe to at least one topic")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"`` keyed by the secret.

    The timestamp is signed too, so a receiver can refuse replays of old deliveries.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def retry_delay(attempts: int, *, base: float = FIRST_RETRY_SECONDS) -> float | None:
    """Seconds to wait after ``attempts`` failed tries (exponential), or None to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return float(min(base * 2 ** (attempts - 1), MAX_RETRY_SECONDS))


def _contact(contact: Contact) -> dict[str, Any]:
    """Who the message is about: enough for a receiver to act, nothing more."""
    return {"id": contact.id, "email": contact.email, "stage": contact.stage,
            "owner_id": contact.owner_id}


def stage_change_payload(contact: Contact, change: StageChange) -> dict[str, Any]:
    # The stage the change moved to, even when a later change of the same transaction
    # (entry, then straight on to lead) has moved the contact further already.
    return {"contact": {**_contact(contact), "stage": change.to_stage},
            "from_stage": change.from_stage,
            "to_stage": change.to_stage, "at": change.at, "actor": change.actor,
            "reason": change.reason, "kind": change.kind,
            "config_version": change.config_version}


def milestone_payload(contact: Contact, key: str) -> dict[str, Any]:
    return {"contact": _contact(contact), "milestone": key, "at": contact.milestones[key]}


def temperature_payload(contact: Contact, before: str | None, at: float) -> dict[str, Any]:
    return {"contact": _contact(contact), "from_temperature": before,
            "to_temperature": contact.temperature, "at": at}


def merge_payload(survivor: Contact, absorbed_id: int, at: float) -> dict[str, Any]:
    """``merged_id`` is gone: its events, identities and history are the contact's now."""
    return {"contact": _contact(survivor), "merged_id": absorbed_id, "at": at}


def stage_message(contact: Contact, change: StageChange) -> Message:
    return (STAGE_CHANGED, change.contact_id, stage_change_payload(contact, change), change.at)


def temperature_message(contact: Contact, before: str | None, at: float) -> Message:
    return (TEMPERATURE_CHANGED, contact.id, temperature_payload(contact, before, at), at)


def outcome_messages(contact: Contact, outcome: Outcome, *, at: float) -> list[Message]:
    """What an evaluation tells webhooks: its milestones, stage changes and temperature change
    (dated ``at``), in that order."""
    messages: list[Message] = [
        (MILESTONE_REACHED, contact.id, milestone_payload(contact, key), contact.milestones[key])
        for key in outcome.milestones]
    messages += [stage_message(contact, change) for change in outcome.stage_changes]
    if outcome.temperature_changed:
        messages.append(temperature_message(contact, outcome.temperature_before, at))
    return messages
