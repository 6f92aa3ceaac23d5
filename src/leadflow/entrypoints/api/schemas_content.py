"""Request and response bodies of the content library, next best content and the export."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from leadflow.domain.content import FORMATS, MATURITIES
from leadflow.entrypoints.api.schemas import Strict
from leadflow.services.content import MAX_SUMMARY, MAX_TOPICS

MATURITY_HELP = f"One of {', '.join(MATURITIES)}"
FORMAT_HELP = f"One of {', '.join(FORMATS)}"


class ContentCreate(Strict):
    key: str = Field(max_length=100, description="Lower-case letters, digits and dashes")
    title: str = Field(max_length=300)
    url: str = Field(max_length=2000, description="An http(s) URL or a path like /guides/crm")
    maturity: str = Field(max_length=20, description=MATURITY_HELP)
    format: str = Field(max_length=30, description=FORMAT_HELP)
    premium: bool = Field(default=False, description="Gated behind a form")
    topics: list[str] = Field(default_factory=list, max_length=MAX_TOPICS)
    language: str = Field(default="en", max_length=10, description="Two letters, like en")
    summary: str = Field(default="", max_length=MAX_SUMMARY)


class ContentUpdate(Strict):
    title: str | None = Field(default=None, max_length=300)
    url: str | None = Field(default=None, max_length=2000)
    maturity: str | None = Field(default=None, max_length=20, description=MATURITY_HELP)
    format: str | None = Field(default=None, max_length=30, description=FORMAT_HELP)
    premium: bool | None = None
    topics: list[str] | None = Field(default=None, max_length=MAX_TOPICS,
                                     description="Replaces the item's topics")
    language: str | None = Field(default=None, max_length=10)
    summary: str | None = Field(default=None, max_length=MAX_SUMMARY)
    archived: bool | None = Field(default=None, description="false brings an item back")


class ContentRead(BaseModel):
    id: int
    key: str
    title: str
    url: str
    path: str
    maturity: str
    format: str
    premium: bool
    topics: list[str]
    language: str
    summary: str
    archived: bool


class ContentPage(BaseModel):
    items: list[ContentRead]
    total: int
    limit: int
    offset: int


class ImportIssue(BaseModel):
    line: int
    field: str | None
    reason: str


class ContentImportRead(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    bad_rows: list[ImportIssue]


class RecommendationRead(BaseModel):
    item: ContentRead
    score: float
    reasons: list[str]


class NextContentRead(BaseModel):
    contact_id: int
    stage: str
    stage_role: str
    language: str
    maturities: list[str] = Field(description="What the contact's stage may be offered")
    consumed: list[str] = Field(description="Keys of the items it consumed, latest first")
    recommendations: list[RecommendationRead]
    note: str | None = Field(description="Why nothing is recommended, when nothing is")


class ContactExport(BaseModel):
    """Everything held about one contact. An erased contact exports what is left."""

    format: str
    version: int
    exported_at: float
    contact: dict[str, Any]
    consent: dict[str, Any]
    identities: list[dict[str, Any]]
    owner: dict[str, Any] | None
    account: dict[str, Any] | None
    scores: dict[str, Any]
    milestones: list[dict[str, Any]]
    stage_history: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    enrollments: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    content_consumed: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
