"""Request and response bodies of the REST API: separate Create, Update and Read schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(Strict):
    name: str = Field(max_length=300)
    domain: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0)
    country: str | None = Field(default=None, max_length=2)
    annual_revenue: float | None = Field(default=None, ge=0)
    attributes: dict[str, Any] = Field(default_factory=dict)


class AccountUpdate(Strict):
    name: str | None = Field(default=None, max_length=300)
    domain: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0)
    country: str | None = Field(default=None, max_length=2)
    annual_revenue: float | None = Field(default=None, ge=0)
    attributes: dict[str, Any] | None = None


class AccountRead(BaseModel):
    id: int
    name: str
    domain: str | None
    industry: str | None
    employees: int | None
    country: str | None
    annual_revenue: float | None
    attributes: dict[str, Any]
    created_at: float
    updated_at: float


class ContactFields(Strict):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    seniority: str | None = Field(default=None, max_length=50)
    account_role: str | None = Field(default=None, max_length=50)
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=10)


class ContactCreate(ContactFields):
    source: str | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)
    account: AccountCreate | None = None
    consent: dict[str, bool] = Field(default_factory=dict,
                                     description="Channel → granted, e.g. {\"email\": true}")
    lead_reason: str | None = Field(
        default=None, max_length=1000,
        description="Enter the contact as a lead by hand (a rep heard of someone): why")
    referred_by_id: int | None = Field(default=None, gt=0)


class ContactUpdate(ContactFields):
    attributes: dict[str, Any] | None = None
    account: AccountCreate | None = None


class ContactSummary(BaseModel):
    id: int
    email: str | None
    name: str | None
    stage: str
    temperature: str | None
    fit_grade: str | None
    fit_score: float | None
    persona: str | None
    source: str | None
    engagement: float
    last_event_at: float | None
    owner_id: int | None


class ContactPage(BaseModel):
    items: list[ContactSummary]
    total: int
    limit: int
    offset: int


class ContactRead(BaseModel):
    """A contact with its scores (each with its breakdown), stage, milestones and timeline."""

    id: int
    name: str | None
    email: str | None
    phone: str | None
    title: str | None
    seniority: str | None
    account_role: str | None
    country: str | None
    language: str | None
    source: str | None
    referred_by_id: int | None
    owner_id: int | None
    attributes: dict[str, Any]
    consent: dict[str, Any]
    identities: list[dict[str, Any]]
    account: dict[str, Any] | None
    stage: str
    stage_name: str
    stage_role: str | None
    stage_entered_at: float
    recycled_at: float | None
    milestones: dict[str, float]
    engagement: dict[str, Any]
    fit: dict[str, Any]
    qualification: dict[str, Any]
    temperature: str | None
    temperature_reason: str | None
    owner: dict[str, Any] | None
    tasks: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    contact_id: int | None = None
    email: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    timestamp: float | None = Field(default=None, description="Seconds since the epoch (UTC)")
    message_id: str | None = None
    url: str | None = None
    content_stage: str | None = None
    premium: bool | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class EventBatch(Strict):
    events: list[EventCreate] = Field(min_length=1, max_length=1000)


class EventRead(BaseModel):
    contact_id: int
    event_id: int | None
    duplicate: bool
    created_contact: bool
    awarded: dict[str, float]
    milestones: list[str]
    stage_changes: list[dict[str, Any]]


class StageMove(Strict):
    stage: str
    reason: str = Field(min_length=1, max_length=1000)


class Reason(Strict):
    reason: str = Field(min_length=1, max_length=1000)


class Qualification(Strict):
    answers: dict[str, Any] = Field(min_length=1)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="secret", pattern="^(public|secret)$")
    scopes: list[str] = Field(default_factory=list)
    user: str | None = Field(default=None, description="Email or id of the user a secret "
                             "key acts as (default: the caller)")


class ApiKeyRead(BaseModel):
    id: int
    name: str
    kind: str
    prefix: str
    scopes: list[str]
    created_at: float
    revoked_at: float | None
    last_used_at: float | None
    user_id: int | None


class ApiKeyCreated(ApiKeyRead):
    token: str = Field(description="Shown once; only a hash is stored")


class WebhookCreate(Strict):
    url: str = Field(max_length=2000)
    topics: list[str] = Field(min_length=1)
    stages: list[str] | None = Field(
        default=None, description="stage.changed only for moves into these stages")
    secret: str | None = Field(default=None, min_length=16, max_length=100)


class WebhookRead(BaseModel):
    id: int
    url: str
    topics: list[str]
    stages: list[str] | None
    active: bool
    created_at: float


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Signs every delivery (HMAC-SHA256)")


class DeliveryRead(BaseModel):
    id: int
    uid: str = Field(description="Sent as X-Leadflow-Delivery; the same on every retry")
    webhook_id: int
    outbox_id: int
    topic: str
    status: str
    attempts: int
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None
