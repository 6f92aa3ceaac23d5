"""Nurture: who is in which track, running each member's due steps, autoresponders and the
newsletter.

Membership follows the stage *role* and ownership, never stage keys: a lead nobody in sales
owns is in the marketing tracks of its role; once a rep owns it, it leaves them and joins the
sales tracks; customers are in none (they get the newsletter only). Sync is set-based, so it
also catches contacts that bulk paths (imports, batched tracking) moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.config_parsing import Problems
from leadflow.domain.content import ContentItem, Profile, allowed_maturities, next_best
from leadflow.domain.errors import ConfigInvalid, InvalidInput, NotFound
from leadflow.domain.mail_policy import MARKETING
from leadflow.domain.model import Contact
from leadflow.domain.nurture import (
    Autoresponder,
    Enrollment,
    Facts,
    SendAction,
    TaskAction,
    Track,
    advance,
    consumed_maturities,
)
from leadflow.domain.nurture_config import parse_track
from leadflow.domain.ports import UnitOfWork, UnitOfWorkFactory
from leadflow.services.context import Context
from leadflow.services.mail_queue import queue_mail

MILESTONE_LOOKBACK = 2 * 86400.0  # autoresponders answer milestones reached this recently


@dataclass
class NurtureReport:
    entered: int = 0
    left: int = 0
    advanced: int = 0
    queued: int = 0
    tasks: int = 0
    nothing_to_send: int = 0
    autoresponses: int = 0
    by_track: dict[str, int] = field(default_factory=dict)


def api_track(definition: dict[str, Any]) -> Track:
    """A track sent through the API, checked exactly as one in the configuration is."""
    problems = Problems()
    track = parse_track(definition, "track", problems, source="api")
    if problems.items or track is None:
        raise ConfigInvalid("track", problems.items)
    return track


def all_tracks(uow: UnitOfWork, ctx: Context) -> list[Track]:
    """The configuration's tracks, then those defined through the API (a key in the
    configuration wins)."""
    tracks = list(ctx.config.nurture.tracks)
    keys = {t.key for t in tracks}
    for definition in uow.tracks.all_active():
        track = api_track(definition)
        if track.key not in keys:
            tracks.append(track)
    return tracks


def define_track(*, uow: UnitOfWork, ctx: Context, definition: dict[str, Any]) -> Track:
    track = api_track(definition)
    if ctx.config.nurture.track(track.key) is not None:
        raise InvalidInput(f"track {track.key!r} is defined in the configuration file; "
                           "change it there", field="key")
    with uow:
        uow.tracks.put(track.key, definition, ctx.clock.now())
        uow.commit()
    return track


def retire_track(*, uow: UnitOfWork, ctx: Context, key: str) -> None:
    with uow:
        if not uow.tracks.deactivate(key, ctx.clock.now()):
            raise NotFound(f"no track {key!r} defined through the API", field="key")
        uow.commit()


def sync_members(uow: UnitOfWork, ctx: Context, report: NurtureReport, *,
                 changed_since: float | None = None) -> None:
    """Enter and leave tracks as stages and owners changed (inside the caller's unit); only
    contacts changed since ``changed_since`` when given, else every contact."""
    now = ctx.clock.now()
    cfg = ctx.config
    tracks = all_tracks(uow, ctx)
    report.left += uow.enrollments.leave_tracks_except(
        [t.key for t in tracks], at=now, reason="the track was retired")
    for track in tracks:
        stages = [s.key for s in cfg.stages if s.role in track.stage_roles]
        owned = track.audience == "sales"
        report.left += uow.enrollments.leave_unfitting(
            track.key, stages=stages, owned=owned, at=now, changed_since=changed_since,
            reason="now owned by sales" if not owned else "left the sales stages")
        report.entered += uow.enrollments.enroll_fitting(
            track.key, stages=stages, owned=owned, at=now, changed_since=changed_since)


def _facts(uow: UnitOfWork, ctx: Context, contact: Contact, consumed: Sequence[ContentItem],
           now: float) -> Facts:
    return Facts(engagement=contact.engagement.at(now, ctx.config.engagement.half_life_seconds),
                 milestones=frozenset(contact.milestones),
                 consumed_maturities=consumed_maturities([i.maturity for i in consumed]),
                 temperature=contact.temperature)


def choose_content(uow: UnitOfWork, ctx: Context, contact: Contact, library: list[ContentItem],
                   *, item_key: str | None, maturities: Sequence[str]) -> ContentItem | None:
    """The item a send step or autoresponder sends this contact: the named one if it still
    fits and was not sent, else the next best unseen one of the wanted maturities."""
    assert contact.id is not None
    role = ctx.config.role_of(contact.stage)
    sent_ids = set(uow.mail.sent_item_ids(contact.id))
    consumed = uow.content.consumed(contact.id)
    if item_key is not None:
        item = next((i for i in library if i.key == item_key), None)
        if item is None or item.id in sent_ids or item.maturity not in allowed_maturities(role):
            return None
        return item
    profile = Profile(stage_role=role, language=contact.language, consumed=consumed,
                      sent_keys=frozenset(i.key for i in library if i.id in sent_ids))
    best = next_best(library, profile, limit=1, maturities=maturities or None)
    return best[0].item if best else None


def _run(uow: UnitOfWork, ctx: Context, enrollment: Enrollment, track: Track,
         library: list[ContentItem], report: NurtureReport) -> None:
    now = ctx.clock.now()
    contact = uow.contacts.get(enrollment.contact_id)
    if contact is None or contact.id is None:
        enrollment.status, enrollment.next_at, enrollment.reason = "left", None, "gone"
        uow.enrollments.save(enrollment)
        return
    consumed = [c.item for c in uow.content.consumed(contact.id)]
    step = advance(track, step=enrollment.step,
                   facts=_facts(uow, ctx, contact, consumed, now), now=now)
    for action in step.actions:
        if isinstance(action, SendAction):
            item = choose_content(uow, ctx, contact, library, item_key=action.item,
                                  maturities=action.maturities)
            if item is None:
                report.nothing_to_send += 1
                continue
            queued = queue_mail(
                uow, contact_id=contact.id, category=MARKETING, template="content",
                dedupe_key=f"track:{track.key}:{contact.id}:{action.step}",
                priority=track.priority, at=now, item=item, track_key=track.key,
                step=action.step, expires_in=track.expires_seconds,
                sender_id=contact.owner_id if track.audience == "sales" else None)
            if queued is not None:
                report.queued += 1
                report.by_track[track.key] = report.by_track.get(track.key, 0) + 1
        elif isinstance(action, TaskAction) and contact.owner_id is not None:
            uow.tasks.add(contact_id=contact.id, owner_id=contact.owner_id, kind=action.kind,
                          title=action.title, due_at=now + action.due_seconds, at=now,
                          by=f"nurture:{track.key}")
            report.tasks += 1
    enrollment.step, enrollment.next_at, enrollment.updated_at = step.step, step.next_at, now
    if step.next_at is None:
        enrollment.status = "done"
        enrollment.reason = ("stopped by its condition at step "
                             f"{step.stopped_by}" if step.stopped_by is not None else None)
    uow.enrollments.save(enrollment)
    report.advanced += 1


def run_due(*, uow: UnitOfWorkFactory, ctx: Context, batch_size: int = 100,
            report: NurtureReport | None = None) -> NurtureReport:
    """Run every member's due steps, a batch per transaction."""
    report = report or NurtureReport()
    while True:
        with uow() as work:
            work.serialize("nurture")  # a pass started by hand and the worker's take turns
            tracks = {t.key: t for t in all_tracks(work, ctx)}
            library = work.content.active()
            due = work.enrollments.due(ctx.clock.now(), batch_size)
            for enrollment in due:
                track = tracks.get(enrollment.track_key)
                if track is None:
                    enrollment.status, enrollment.next_at = "left", None
                    enrollment.reason = "the track was retired"
                    work.enrollments.save(enrollment)
                    continue
                _run(work, ctx, enrollment, track, library, report)
            work.commit()
        if len(due) < batch_size:
            return report


def _respond(uow: UnitOfWork, ctx: Context, contact: Contact, *, responder_key: str,
             occasion: str, item_key: str | None, maturities: Sequence[str], priority: int,
             library: list[ContentItem], at: float) -> bool:
    assert contact.id is not None
    role = ctx.config.role_of(contact.stage)
    if not allowed_maturities(role):  # customers, excluded and erased get no autoresponder
        return False
    item = choose_content(uow, ctx, contact, library, item_key=item_key, maturities=maturities)
    if item is None:
        return False
    return queue_mail(uow, contact_id=contact.id, category=MARKETING, template="content",
                      dedupe_key=f"auto:{responder_key}:{contact.id}:{occasion}",
                      priority=priority, at=at, item=item,
                      sender_id=contact.owner_id if role in ("handoff", "commit") else None,
                      expires_in=3 * 86400.0) is not None


def on_form_submitted(uow: UnitOfWork, ctx: Context, *, contact_id: int, form_key: str,
                      at: float) -> int:
    """Queue the autoresponders a form submission triggers (inside the caller's unit)."""
    responders = [a for a in ctx.config.nurture.autoresponders
                  if a.trigger == "form_submitted" and a.match in (None, form_key)]
    if not responders:
        return 0
    contact = uow.contacts.get(contact_id)
    if contact is None:
        return 0
    library = uow.content.active()
    return sum(_respond(uow, ctx, contact, responder_key=a.key, occasion=f"form:{form_key}",
                        item_key=a.item, maturities=a.maturities, priority=a.priority,
                        library=library, at=at) for a in responders)


def _milestone_answers_due(uow: UnitOfWork, ctx: Context, *, since: float | None,
                           limit: int) -> list[tuple[Autoresponder, list[int]]]:
    """Each milestone autoresponder with the contacts that reached its milestone recently
    (since ``since``, at most MILESTONE_LOOKBACK ago) and were not answered yet."""
    now = ctx.clock.now()
    start = now - MILESTONE_LOOKBACK if since is None else max(since, now - MILESTONE_LOOKBACK)
    due = []
    for responder in ctx.config.nurture.autoresponders:
        if responder.trigger != "milestone" or responder.match is None:
            continue
        due.append((responder, uow.enrollments.reached_milestone(
            responder.match, start, limit,
            unanswered=(f"auto:{responder.key}:", f":milestone:{responder.match}"))))
    return due


def _answer(uow: UnitOfWork, ctx: Context, report: NurtureReport, responder: Autoresponder,
            contact_ids: Sequence[int], library: list[ContentItem]) -> None:
    now = ctx.clock.now()
    for contact_id in contact_ids:
        contact = uow.contacts.get(contact_id)
        if contact is None or not contact.email:
            continue
        if _respond(uow, ctx, contact, responder_key=responder.key,
                    occasion=f"milestone:{responder.match}", item_key=responder.item,
                    maturities=responder.maturities, priority=responder.priority,
                    library=library, at=now):
            report.autoresponses += 1


SYNC_MARGIN = 300.0  # a change committed this long after its timestamp is still caught


def tick(*, uow: UnitOfWorkFactory, ctx: Context, batch_size: int = 100,
         changed_since: float | None = None) -> NurtureReport:
    """One nurture pass: sync members, answer milestones, run due steps. With
    ``changed_since`` (the start of the previous pass) it looks only at what changed since;
    without, at every contact.

    Milestone answers and due steps are committed a batch of ``batch_size`` contacts at a
    time, so that other writers get the database in between; each batch is complete on its
    own (a dedupe key per email, a member's step saved with the email it queued), so a pass
    stopped half way sends nothing twice and the next one does what is left. Two passes at
    once take turns batch by batch (each holds the pass lock)."""
    report = NurtureReport()
    since = None if changed_since is None else changed_since - SYNC_MARGIN
    with uow() as work:
        work.serialize("nurture")
        sync_members(work, ctx, report, changed_since=since)
        due = _milestone_answers_due(work, ctx, since=since, limit=10_000)
        work.commit()
    for responder, ids in due:
        for start in range(0, len(ids), batch_size):
            with uow() as work:
                work.serialize("nurture")
                _answer(work, ctx, report, responder, ids[start:start + batch_size],
                        work.content.active())
                work.commit()
    return run_due(uow=uow, ctx=ctx, batch_size=batch_size, report=report)


def send_newsletter(*, uow: UnitOfWork, ctx: Context, item_key: str) -> int:
    """Queue a newsletter issue for every subscriber (sent within the frequency cap)."""
    now = ctx.clock.now()
    news = ctx.config.nurture
    with uow:
        item = uow.content.get(item_key)
        if item is None or item.id is None:
            raise NotFound(f"no content item {item_key!r}", field="item")
        if item.format != "newsletter_issue":
            raise InvalidInput(f"{item_key!r} is a {item.format}, not a newsletter issue",
                               field="item")
        queued = uow.mail.queue_newsletter(item_id=item.id, priority=news.newsletter_priority,
                                           at=now,
                                           expires_at=now + news.newsletter_expires_seconds)
        uow.commit()
    return queued
