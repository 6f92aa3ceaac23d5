"""Request and response bodies of the sales API: users, tasks, activities, queues."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from leadflow.domain.sales import MAX_TS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Strict):
    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: str
    password: str | None = Field(default=None, min_length=10, max_length=200)
    team: str | None = Field(default=None, max_length=100)
    weight: float = Field(default=1.0, gt=0, le=100)
    territories: list[str] = Field(default_factory=list)


class UserUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = None
    team: str | None = Field(default=None, max_length=100)
    active: bool | None = None
    away_until: float | None = Field(default=None, ge=0, le=MAX_TS, allow_inf_nan=False,
                                     description="Out of office until (UTC s)")
    weight: float | None = Field(default=None, gt=0, le=100)
    territories: list[str] | None = None


class UserRead(BaseModel):
    id: int
    email: str
    name: str
    role: str
    team: str | None
    active: bool
    away_until: float | None
    weight: float
    territories: list[str]
    assigned: int
    created_at: float


class TokenRequest(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=200)
    name: str = Field(default="personal token", min_length=1, max_length=200)


class TokenCreated(BaseModel):
    token: str = Field(description="Shown once; send as 'Authorization: Bearer <token>'")
    user: UserRead
    scope: str


class Assign(Strict):
    owner: str = Field(description="Email or id of the sales user who takes the contact")
    reason: str = Field(min_length=1, max_length=1000)


class TaskCreate(Strict):
    kind: str = "follow_up"
    title: str | None = Field(default=None, max_length=300)
    due_at: float | None = Field(default=None, ge=0, le=MAX_TS, allow_inf_nan=False,
                                 description="UTC seconds; default: cadence")
    owner_id: int | None = None


class TaskComplete(Strict):
    outcome: str | None = Field(default=None, max_length=2000)
    next_due_at: float | None = Field(default=None, ge=0, le=MAX_TS, allow_inf_nan=False,
                                      description="When the next follow-up is due")
    next_title: str | None = Field(default=None, max_length=300)


class TaskRead(BaseModel):
    id: int
    contact_id: int
    owner_id: int
    kind: str
    title: str
    due_at: float
    created_at: float
    created_by: str
    done_at: float | None
    done_by: str | None
    outcome: str | None
    reminded_at: float | None
    escalated_at: float | None


class TaskDone(BaseModel):
    task: TaskRead
    next_task: TaskRead | None


class ActivityCreate(Strict):
    kind: str = Field(description="call, email, meeting or note")
    direction: str | None = Field(default=None, description="outbound or inbound")
    at: float | None = Field(default=None, ge=0, le=MAX_TS, allow_inf_nan=False,
                             description="When it happened (default: now)")
    subject: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=100_000)
    outcome: str | None = Field(default=None, max_length=100,
                                description="For calls: no_answer, voicemail... score nothing")


class ActivityRead(BaseModel):
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


class EmailSend(Strict):
    subject: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=100_000)


class QueueRead(BaseModel):
    owner_id: int
    tasks: list[dict[str, Any]]
    prospects: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class CracksRead(BaseModel):
    without_open_task: list[dict[str, Any]]
    owner_inactive: list[dict[str, Any]]
    unassigned: list[dict[str, Any]]


class InboundRead(BaseModel):
    duplicate: bool
    activity: ActivityRead | None


class OpportunityCreate(Strict):
    name: str = Field(min_length=1, max_length=300)
    amount: float = Field(ge=0, allow_inf_nan=False)
    currency: str = Field(min_length=3, max_length=3)
    expected_close: str | None = Field(default=None, description="ISO date")
    deal_stage: str | None = Field(default=None, description="Default: the first deal stage")
    probability: float | None = Field(default=None, ge=0, le=1,
                                      description="Default: the deal stage's")
    next_step: str | None = Field(default=None, max_length=500)


class OpportunityUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_close: str | None = None
    deal_stage: str | None = None
    probability: float | None = Field(default=None, ge=0, le=1)
    next_step: str | None = Field(default=None, max_length=500)


class OpportunityLose(Strict):
    reason: str = Field(description="One of the configured lost reasons")
    then: str | None = Field(default=None, description="nurture or disqualify (default: "
                             "the configured sales.lost_next)")
    note: str | None = Field(default=None, max_length=2000)


class OpportunityRead(BaseModel):
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


class OpportunityPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class PlanItemRead(BaseModel):
    contact_id: int
    name: str
    stage: str
    temperature: str | None
    probability: float
    probability_source: str
    value: float
    value_source: str
    expected: float
    channel: str
    channel_reason: str
    cost: float


class PlanRead(BaseModel):
    target: float
    expected_volume: float
    shortfall: float
    new_leads_needed: int | None
    accounts_used: int
    budget_used: float
    reporting_currency: str
    items: list[PlanItemRead]
    skipped: list[dict[str, Any]]
