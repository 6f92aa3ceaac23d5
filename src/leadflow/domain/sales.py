"""What sales works with: follow-up tasks, logged activities and opportunities (deals)."""

from __future__ import annotations

from dataclasses import dataclass

TASK_KINDS = ("follow_up", "call", "email", "meeting", "todo")
ACTIVITY_KINDS = ("call", "email", "meeting", "note")
DIRECTIONS = ("outbound", "inbound")
DEAL_STATUSES = ("open", "won", "lost")
FOLLOW_UP = "follow_up"
SALES_STAGE_ROLES = ("handoff", "commit")  # stages whose contacts sales owns and follows up
MAX_TS = 4_102_444_800.0  # 2100-01-01: the latest time (UTC seconds) a task or activity takes

# The event an activity records, so that scoring rules can count it (a reply, a call answered).
# Outbound emails and notes score nothing by default but stay on the timeline.
ACTIVITY_EVENTS = {
    ("email", "inbound"): "email_replied",
    ("email", "outbound"): "sales_email_sent",
    ("call", "inbound"): "call_answered",
    ("call", "outbound"): "call_answered",
    ("meeting", "inbound"): "meeting_held",
    ("meeting", "outbound"): "meeting_held",
}
CALL_NOT_REACHED = ("no_answer", "voicemail", "wrong_number", "busy")


def activity_event(kind: str, direction: str | None, outcome: str | None) -> str | None:
    """The scored event type an activity stands for, or None (a note, an unanswered call)."""
    if kind == "call" and outcome in CALL_NOT_REACHED:
        return None
    return ACTIVITY_EVENTS.get((kind, direction or "outbound"))


@dataclass(frozen=True)
class Task:
    id: int
    contact_id: int
    owner_id: int
    kind: str
    title: str
    due_at: float
    created_at: float
    created_by: str
    done_at: float | None = None
    done_by: str | None = None
    outcome: str | None = None
    reminded_at: float | None = None
    escalated_at: float | None = None

    @property
    def open(self) -> bool:
        return self.done_at is None

    def overdue(self, now: float) -> bool:
        return self.open and self.due_at < now


@dataclass(frozen=True)
class Activity:
    id: int
    contact_id: int
    user_id: int | None
    kind: str
    direction: str | None
    at: float
    subject: str | None
    body: str | None
    outcome: str | None
    message_id: str | None
    created_by: str


@dataclass(frozen=True)
class Opportunity:
    id: int
    contact_id: int
    account_id: int | None
    owner_id: int | None
    name: str
    amount: float
    currency: str
    expected_close: str | None
    deal_stage: str
    probability: float
    next_step: str | None
    status: str
    lost_reason: str | None
    closed_at: float | None
    created_at: float
    updated_at: float
    created_by: str
