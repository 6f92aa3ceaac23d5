"""Entities of the lead lifecycle. Times are UTC seconds since the epoch (floats)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.engagement import EngagementState
from leadflow.domain.matching import EventShape

ACCOUNT_ROLES = ("decision_maker", "influencer", "user", "gatekeeper")


@dataclass
class Account:
    id: int | None
    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    annual_revenue: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    owner_id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class ConsentRecord:
    channel: str  # email | phone | sms
    granted: bool
    source: str
    at: float


@dataclass
class SignalSeen:
    """How often a named signal was seen and its two latest times (newest first)."""

    count: int = 0
    last: list[float] = field(default_factory=list)

    def add(self, ts: float) -> None:
        self.count += 1
        self.last = sorted([*self.last, ts], reverse=True)[:2]

    @property
    def latest(self) -> float | None:
        return self.last[0] if self.last else None


@dataclass
class FitResult:
    score: float = 0.0
    grade: str = "D"
    persona: str | None = None
    excluded_by: str | None = None
    exclusion_reason: str | None = None
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


@dataclass
class Qualification:
    answers: dict[str, Any] = field(default_factory=dict)
    passed: bool = False
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    by: str | None = None
    at: float | None = None


@dataclass
class Contact:
    id: int | None
    stage: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: str | None = None
    account_role: str | None = None
    country: str | None = None
    region: str | None = None
    language: str | None = None
    source: str | None = None
    account_id: int | None = None
    referred_by_id: int | None = None
    owner_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, ConsentRecord] = field(default_factory=dict)
    stage_entered_at: float = 0.0
    recycled_at: float | None = None
    recycle_baseline: float = 0.0  # engagement at recycled_at, for "evidence since recycle"
    milestones: dict[str, float] = field(default_factory=dict)
    engagement: EngagementState = field(default_factory=EngagementState)
    signals: dict[str, SignalSeen] = field(default_factory=dict)
    fit: FitResult = field(default_factory=FitResult)
    qualification: Qualification = field(default_factory=Qualification)
    temperature: str | None = None
    temperature_until: float | None = None
    last_event_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    mail_status: str | None = None  # bounced | complained

    @property
    def email_domain(self) -> str | None:
        if self.email and "@" in self.email:
            return self.email.rsplit("@", 1)[1].lower()
        return None

    @property
    def has_contact_details(self) -> bool:
        return bool(self.email or self.phone)

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.phone or f"contact {self.id}"


@dataclass(frozen=True)
class Event:
    """One thing a contact did, as recorded. ``shape`` is what rules can see."""

    contact_id: int
    ts: float
    shape: EventShape
    id: int | None = None
    message_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    received_at: float | None = None


@dataclass(frozen=True)
class StageChange:
    contact_id: int
    from_stage: str | None
    to_stage: str
    at: float
    actor: str  # "rule:<stage>", "user:<name>", "import", "policy:<name>", ...
    config_version: str
    reason: str | None = None
    kind: str = "forward"  # forward | backward | side
