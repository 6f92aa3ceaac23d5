"""Request and response bodies of forms and landing pages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormCreate(Strict):
    key: str = Field(max_length=100, description="Lower-case letters, digits and dashes: the "
                                                  "page is /p/<key>")
    name: str = Field(max_length=300, description="What marketers call it")
    headline: str = Field(default="", max_length=300, description="The page's title")
    pitch: str = Field(default="", max_length=20_000,
                       description="Plain text; a blank line starts a paragraph")
    item_key: str | None = Field(default=None, max_length=100,
                                 description="The content item it gates, emailed after the form")
    fields: list[str] = Field(default_factory=list, max_length=20,
                              description="Profiling fields in the order they are asked; "
                                          "empty: the configuration's")
    max_fields: int = Field(default=0, ge=0, le=20,
                            description="At most this many at a time; 0: the configuration's")
    consent_label: str = Field(default="Send me occasional emails about this topic.",
                               max_length=500, description="The email consent box's label")
    newsletter: bool = Field(default=False, description="Offer the newsletter too")
    language: str = Field(default="en", max_length=10)
    active: bool = True


class FormUpdate(Strict):
    name: str | None = Field(default=None, max_length=300)
    headline: str | None = Field(default=None, max_length=300)
    pitch: str | None = Field(default=None, max_length=20_000)
    item_key: str | None = Field(default=None, max_length=100,
                                 description="null: gate nothing any more")
    fields: list[str] | None = Field(default=None, max_length=20)
    max_fields: int | None = Field(default=None, ge=0, le=20)
    consent_label: str | None = Field(default=None, max_length=500)
    newsletter: bool | None = None
    language: str | None = Field(default=None, max_length=10)
    active: bool | None = None


class FormRead(BaseModel):
    id: int | None
    key: str
    name: str
    headline: str
    pitch: str
    item_key: str | None
    fields: list[str]
    max_fields: int
    consent_label: str
    newsletter: bool
    language: str
    active: bool
    url: str = Field(description="The public landing page")
    asks: list[str] = Field(description="The profiling fields it asks from (the "
                                        "configuration's when ``fields`` is empty)")
    asks_at_most: int = Field(description="How many of them at a time")


class SubmissionAnswer(BaseModel):
    ok: bool
    form: str
    asset: str | None = Field(description="'emailed' when the gated item is on its way")
    message: str
