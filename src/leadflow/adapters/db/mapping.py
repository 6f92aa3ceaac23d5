"""Rows ↔ domain objects."""

from __future__ import annotations

import json
from typing import Any

from leadflow.domain.engagement import EngagementState, rank_key
from leadflow.domain.matching import SHAPE_FIELDS, EventShape
from leadflow.domain.model import (
    Account,
    ConsentRecord,
    Contact,
    FitResult,
    Qualification,
    SignalSeen,
)

ACCOUNT_COLUMNS = ("name", "domain", "industry", "employees", "country", "annual_revenue",
                   "attributes", "owner_id", "created_at", "updated_at")
CONTACT_SCALARS = ("email", "phone", "first_name", "last_name", "title", "seniority",
                   "account_role", "country", "region", "language", "source", "account_id",
                   "referred_by_id", "owner_id", "attributes", "stage", "stage_entered_at",
                   "recycled_at", "temperature", "temperature_until",
                   "last_event_at", "created_at", "updated_at", "mail_status")


def shape_signature(shape: EventShape) -> str:
    return json.dumps([getattr(shape, f) for f in SHAPE_FIELDS], separators=(",", ":"))


def shape_row(shape: EventShape) -> dict[str, Any]:
    row = {f: getattr(shape, f) for f in SHAPE_FIELDS}
    row["signature"] = shape_signature(shape)
    return row


def shape_from_row(row: Any) -> EventShape:
    m = row._mapping
    return EventShape(**{f: m[f] for f in SHAPE_FIELDS})


def account_from_row(row: Any) -> Account:
    m = row._mapping
    return Account(id=m["id"], **{c: m[c] for c in ACCOUNT_COLUMNS})


def account_values(account: Account) -> dict[str, Any]:
    return {c: getattr(account, c) for c in ACCOUNT_COLUMNS}


def signals_to_json(signals: dict[str, SignalSeen]) -> dict[str, Any]:
    return {k: {"n": v.count, "last": v.last} for k, v in signals.items()}


def signals_from_json(data: dict[str, Any]) -> dict[str, SignalSeen]:
    return {k: SignalSeen(count=int(v["n"]), last=list(v["last"])) for k, v in data.items()}


def caps_to_json(caps: dict[str, tuple[int, float]]) -> dict[str, list[float]]:
    return {k: [w, used] for k, (w, used) in caps.items()}


def caps_from_json(data: dict[str, Any]) -> dict[str, tuple[int, float]]:
    return {k: (int(v[0]), float(v[1])) for k, v in data.items()}


def contact_from_row(row: Any, milestones: dict[str, float] | None = None) -> Contact:
    m = row._mapping
    fit_detail = m["fit_detail"] or {}
    q = m["qualification"] or {}
    return Contact(
        id=m["id"],
        **{c: m[c] for c in CONTACT_SCALARS},
        recycle_baseline=m["recycle_baseline"],
        consent={k: ConsentRecord(channel=k, **v) for k, v in (m["consent"] or {}).items()},
        milestones=milestones or {},
        engagement=EngagementState(
            score=m["engagement_score"], t0=m["engagement_t0"],
            breakdown=dict(m["engagement_breakdown"] or {}),
            caps=caps_from_json(m["engagement_caps"] or {}),
        ),
        signals=signals_from_json(m["signals"] or {}),
        fit=FitResult(
            score=m["fit_score"], grade=m["fit_grade"], persona=m["persona"],
            excluded_by=m["excluded_by"], exclusion_reason=fit_detail.get("exclusion_reason"),
            breakdown=fit_detail.get("breakdown", []), unknown=fit_detail.get("unknown", []),
        ),
        qualification=Qualification(
            answers=q.get("answers", {}), passed=bool(m["qualification_passed"]),
            missing=q.get("missing", []), failed=q.get("failed", []), by=q.get("by"),
            at=q.get("at"),
        ),
    )


def score_values(contact: Contact, half_life_seconds: float) -> dict[str, Any]:
    """The contact's contact_scores row (without its id). Written here, not by a rescore, so
    its ``rescored`` fingerprint is NULL: the next rescore compares it in full."""
    e = contact.engagement
    return {
        "engagement_score": e.score,
        "engagement_t0": e.t0,
        "engagement_rank": rank_key(e.score, e.t0, half_life_seconds),
        "engagement_breakdown": e.breakdown,
        "engagement_caps": caps_to_json(e.caps),
        "recycle_baseline": contact.recycle_baseline,
        "signals": signals_to_json(contact.signals),
        "rescored": None,
    }


def queue_rank(contact: Contact, scores: dict[str, Any]) -> float | None:
    """What the queue index sorts an owned contact by: its engagement rank."""
    return scores["engagement_rank"] if contact.owner_id is not None else None


def contact_values(contact: Contact) -> dict[str, Any]:
    """The contact's own row, without its scores (see ``score_values``)."""
    q = contact.qualification
    return {
        **{c: getattr(contact, c) for c in CONTACT_SCALARS},
        "consent": {k: {"granted": v.granted, "source": v.source, "at": v.at}
                    for k, v in contact.consent.items()},
        "fit_score": contact.fit.score,
        "fit_grade": contact.fit.grade,
        "persona": contact.fit.persona,
        "excluded_by": contact.fit.excluded_by,
        "fit_detail": {"breakdown": contact.fit.breakdown, "unknown": contact.fit.unknown,
                       "exclusion_reason": contact.fit.exclusion_reason},
        "qualification": {"answers": q.answers, "missing": q.missing, "failed": q.failed,
                          "by": q.by, "at": q.at},
        "qualification_passed": q.passed,
    }
