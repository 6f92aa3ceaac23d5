"""Everything known about one contact, explained: the data behind `contact show`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from leadflow.domain.engagement import EngagementState, apply_event, matching_rules
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.temperature import temperature_of
from leadflow.services.common import load_contact
from leadflow.services.context import Context


def contact_view(*, uow: UnitOfWork, ctx: Context, contact_id: int,
                 timeline_limit: int = 100) -> dict[str, Any]:
    """Stage, milestones, scores with their breakdown, temperature and the timeline."""
    cfg = ctx.config
    h = cfg.engagement.half_life_seconds
    now = ctx.clock.now()
    with uow:
        c = load_contact(uow, contact_id)
        account = uow.accounts.get(c.account_id) if c.account_id else None
        history = uow.events.history(contact_id)
        events = uow.events.timeline(contact_id, timeline_limit)
        changes = uow.history.stage_changes(contact_id)
        audit = uow.history.audit_entries(contact_id)
        identities = uow.contacts.identities(contact_id)
        owner = uow.users.get(c.owner_id) if c.owner_id else None
        tasks = uow.tasks.of_contact(contact_id)
        activities = uow.activities.of_contact(contact_id, timeline_limit)
        deals = uow.opportunities.of_contact(contact_id)
        emails = uow.mail.of_contact(contact_id, timeline_limit)
        enrollments = uow.enrollments.of_contact(contact_id)
        items = uow.content.by_ids([m.item_id for m in emails if m.item_id])

    # Points each event earns under the current rules (replayed in event-time order).
    state = EngagementState()
    points_by_time: dict[float, list[dict[str, float]]] = {}
    for ts, shape in history:
        awarded = apply_event(state, ts=ts, rules=matching_rules(cfg.engagement.rules, shape),
                              half_life_seconds=h)
        points_by_time.setdefault(ts, []).append(awarded)
    reading = temperature_of(c, cfg.role_of(c.stage), now=now, config=cfg.temperature,
                             engagement_now=c.engagement.at(now, h), half_life_seconds=h)
    timeline: list[dict[str, Any]] = []
    for e in reversed(events):
        awarded = points_by_time.get(e.ts, [{}]).pop(0) if points_by_time.get(e.ts) else {}
        timeline.append({"at": e.ts, "kind": "event", "what": e.shape.type,
                         "url": e.shape.url, "points": awarded,
                         "properties": e.properties})
    for ch in changes:
        timeline.append({"at": ch.at, "kind": "stage", "what": f"{ch.from_stage or '-'} → "
                         f"{ch.to_stage}", "by": ch.actor, "reason": ch.reason,
                         "config_version": ch.config_version, "direction": ch.kind})
    for key, at in c.milestones.items():
        timeline.append({"at": at, "kind": "milestone", "what": key})
    for entry in audit:
        timeline.append({"at": entry["at"], "kind": "change", "what": entry["action"],
                         "by": entry["actor"], "details": entry["details"]})
    for a in activities:
        timeline.append({"at": a.at, "kind": "activity", "what": a.kind,
                         "direction": a.direction, "subject": a.subject, "body": a.body,
                         "outcome": a.outcome, "by": a.created_by})
    for m in emails:  # nurture, newsletter and asset email: the owner sees what went out
        item = items.get(m.item_id) if m.item_id else None
        timeline.append({"at": m.sent_at or m.created_at, "kind": "email",
                         "what": m.category, "status": m.status,
                         "subject": m.subject or (item.title if item else None),
                         "item": item.key if item else None, "track": m.track_key,
                         "reason": m.reason, "opened_at": m.opened_at,
                         "clicked_at": m.clicked_at})
    timeline.sort(key=lambda x: x["at"], reverse=True)
    breakdown = c.engagement.breakdown_at(now, h)
    return {
        "id": c.id, "name": c.display_name, "email": c.email, "phone": c.phone,
        "title": c.title, "seniority": c.seniority, "account_role": c.account_role,
        "country": c.country, "language": c.language, "source": c.source,
        "referred_by_id": c.referred_by_id, "owner_id": c.owner_id,
        "attributes": c.attributes,
        "consent": {k: {"granted": v.granted, "source": v.source, "at": v.at}
                    for k, v in c.consent.items()},
        "identities": [{"kind": k, "value": v} for k, v in identities],
        "account": None if account is None else {
            "id": account.id, "name": account.name, "domain": account.domain,
            "industry": account.industry, "employees": account.employees,
            "country": account.country},
        "stage": c.stage, "stage_name": cfg.stage(c.stage).name,
        "stage_role": cfg.role_of(c.stage), "stage_entered_at": c.stage_entered_at,
        "recycled_at": c.recycled_at,
        "milestones": dict(sorted(c.milestones.items(), key=lambda kv: kv[1])),
        "engagement": {
            "score": round(c.engagement.at(now, h), 4),
            "half_life_days": cfg.engagement.half_life_days,
            "breakdown": {k: round(v, 4) for k, v in
                          sorted(breakdown.items(), key=lambda kv: -abs(kv[1]))},
        },
        "fit": {"score": c.fit.score, "grade": c.fit.grade, "persona": c.fit.persona,
                "excluded_by": c.fit.excluded_by, "exclusion_reason": c.fit.exclusion_reason,
                "breakdown": c.fit.breakdown, "unknown": c.fit.unknown},
        "qualification": {"answers": c.qualification.answers, "passed": c.qualification.passed,
                          "missing": c.qualification.missing, "failed": c.qualification.failed},
        "temperature": reading.temperature, "temperature_reason": reading.reason,
        "temperature_reasons": [(r.text, dict(r.values)) for r in reading.reasons],
        "owner": None if owner is None else {"id": owner.id, "name": owner.name,
                                             "email": owner.email},
        "tasks": [asdict(task) for task in tasks],
        "opportunities": [asdict(d) for d in deals],
        "nurture": [{"track": e.track_key, "status": e.status, "step": e.step,
                     "next_at": e.next_at, "reason": e.reason} for e in enrollments],
        "timeline": timeline,
    }
