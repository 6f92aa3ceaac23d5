"""Forms and progressive profiling: a form asks first for what is still unknown about the
contact, at most a few fields at a time, so each visit teaches us something new."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.nurture_config import PROFILE_FIELDS

FIELD_LABELS = {
    "first_name": "First name", "last_name": "Last name", "company": "Company",
    "title": "Job title", "phone": "Phone", "country": "Country (two letters)",
    "company_size": "Company size (employees)", "industry": "Industry",
    "budget": "Budget", "timeline": "When do you expect to buy? (YYYY-MM-DD)",
    "authority": "Your role in the decision",
}


@dataclass(frozen=True)
class Form:
    key: str
    name: str
    headline: str = ""
    pitch: str = ""
    item_key: str | None = None   # the content it gates, delivered by email after the form
    fields: tuple[str, ...] = ()  # profiling fields, asked in this order
    max_fields: int = 3
    consent_label: str = "Send me occasional emails about this topic."
    newsletter: bool = False
    language: str = "en"
    active: bool = True
    id: int | None = None


@dataclass(frozen=True)
class Known:
    """What a contact has already told us, field by field."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        value = self.values.get(name)
        return value is not None and value != ""


def fields_to_ask(form: Form, known: Known, *, default_fields: Sequence[str],
                  default_max: int) -> list[str]:
    """The profiling fields to show, unknown ones only, in the form's order, at most N."""
    wanted = form.fields or tuple(default_fields)
    limit = form.max_fields or default_max
    return [name for name in wanted if name in PROFILE_FIELDS and not known.has(name)][:limit]
