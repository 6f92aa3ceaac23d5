"""The contact page: everything known about one contact, explained (identity, account, stage
and its history, milestones, scores with their breakdown, temperature, qualification, the
timeline, next best content, owner, tasks, deals), and what the viewer may do with it.

Each action is a form posted with its CSRF token, answered by a redirect back to the page
with a message (Post/Redirect/Get); a refused value re-renders the page with the message
next to the field, and nothing is written. Rights are exactly those of the REST routes
(api/routes_contacts.py, routes_sales.py, routes_deals.py): the contact must be one the
viewer may see (a rep: their own; a manager: their team's), reassigning takes an admin,
marketer or sales manager, completing a task needs its owner to be visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from leadflow.bootstrap import App
from leadflow.domain.engagement import decay_factor
from leadflow.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LeadflowError,
    Merged,
    MoveNotAllowed,
    NotFound,
)
from leadflow.domain.sales import ACTIVITY_KINDS, DIRECTIONS, SALES_STAGE_ROLES, TASK_KINDS
from leadflow.domain.users import SALES_ROLES, User
from leadflow.entrypoints.api.errors import status_of
from leadflow.entrypoints.web.i18n import Translate
from leadflow.entrypoints.web.prediction_view import prediction_for
from leadflow.entrypoints.web.render import page, redirect
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services import activities, assignments, followup, moves
from leadflow.services import content as content_services
from leadflow.services import opportunities as deals
from leadflow.services.access import ensure_contact_access, visible_task
from leadflow.services.common import load_contact
from leadflow.services.contact_view import contact_view
from leadflow.services.users import list_users

router = web_router()

TIMELINE_STEP = 50
TIMELINE_MAX = 1000  # as the REST route's ``timeline`` parameter
RECYCLE = "@recycle"  # the move form's choice for "back to nurture" (no stage key has an @)
ASSIGNERS = ("admin", "marketer", "sales_manager")  # as POST /api/v1/contacts/{id}/assign
SAL = "sal"
# Errors a form answers next to its field; the others (not found, forbidden) are error pages.
FORM_ERRORS = (InvalidInput, MoveNotAllowed, Conflict)
DETAIL_MAX = 120


@dataclass(frozen=True)
class Rights:
    """What the viewer may do with a contact they may see, as the REST routes allow it."""

    write: bool  # ContactWriter: log, accept, reject, move, qualify, deals, tasks, erase
    assign: bool  # POST /contacts/{id}/assign: admins, marketers, sales managers

    @classmethod
    def of(cls, viewer: Viewer) -> Rights:
        write = viewer.principal.allows("write")
        return cls(write=write, assign=write and viewer.principal.role in ASSIGNERS)


def _labels(_: Translate) -> dict[str, dict[str, str]]:
    return {
        "activity": {"call": _("Call"), "email": _("Email"), "meeting": _("Meeting"),
                     "note": _("Note")},
        "direction": {"outbound": _("Outbound"), "inbound": _("Inbound")},
        "task": {"follow_up": _("Follow-up"), "call": _("Call"), "email": _("Email"),
                 "meeting": _("Meeting"), "todo": _("To do")},
        "timeline": {"event": _("Event"), "stage": _("Stage change"),
                     "milestone": _("Milestone"), "change": _("Change"),
                     "activity": _("Activity"), "email": _("Email")},
        "qualification": {"passed": _("passes"), "failed": _("does not pass"),
                          "missing": _("missing"), "open": _("not answered")},
        "deal": {"open": _("open"), "won": _("won"), "lost": _("lost")},
        "kind": {"bant": _("BANT"), "prerequisite": _("Prerequisite"), "info": _("Information")},
        # What the history records (audit actions) and the names in their details
        "action": {"created": _("created"), "updated": _("updated"), "assigned": _("assigned"),
                   "reassigned": _("reassigned"), "unassigned": _("unassigned"),
                   "escalated": _("escalated"), "merged": _("merged"),
                   "identified": _("identified"), "erased": _("erased"),
                   "qualification": _("qualification"), "bounced": _("bounced"),
                   "unsubscribed": _("unsubscribed"), "form_submitted": _("form submitted"),
                   "opportunity_created": _("opportunity created"),
                   "opportunity_updated": _("opportunity updated"),
                   "opportunity_won": _("opportunity won"),
                   "opportunity_lost": _("opportunity lost"),
                   "task_created": _("task created"), "task_done": _("task done")},
        "detail": {"owner_id": _("owner"), "owner": _("owner"), "rule": _("rule"),
                   "reason": _("reason"), "temperature": _("temperature"),
                   "answers": _("answers"), "passed": _("passes"), "failed": _("fails on"),
                   "missing": _("missing"), "amount": _("amount"), "currency": _("currency"),
                   "due_at": _("due"), "follow_up_due_at": _("follow-up due"),
                   "kind": _("kind"), "lost_reason": _("why lost"), "note": _("note"),
                   "outcome": _("outcome"), "source": _("source"), "email": _("email"),
                   "changes": _("changes"), "managers": _("managers")},
    }


# ---------------------------------------------------------------- reading the page


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= DETAIL_MAX else text[:DETAIL_MAX - 1] + "…"


def _value(key: str, value: Any) -> str:
    if (key == "at" or key.endswith("_at")) and isinstance(value, int | float) and \
            not isinstance(value, bool) and 0 <= value < 4_102_444_800:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")
    return _short(value)


def _pairs(details: Any) -> list[tuple[str, str]]:
    """An audit entry's details as short ``key: value`` pairs (times as dates)."""
    if not isinstance(details, dict):
        return [] if details in (None, "") else [("", _short(details))]
    return [(str(k), _value(str(k), v)) for k, v in details.items()
            if v not in (None, "", [], {})]


def _answer_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _questions(app: App, view: dict[str, Any], posted: dict[str, str] | None,
               _: Translate) -> list[dict[str, Any]]:
    qual = view["qualification"]
    out = []
    for q in app.config.questions:
        name = f"answers.{q.key}"
        if q.kind == "info":
            status = "info"
        elif q.key in qual["failed"]:
            status = "failed"
        elif q.key in qual["missing"]:
            status = "missing"
        elif q.key in qual["answers"] or (q.key == "authority" and view["account_role"]):
            status = "passed"
        else:
            status = "open"
        value = posted.get(name, "") if posted is not None else \
            _answer_text(qual["answers"].get(q.key))
        out.append({"key": q.key, "name": name, "label": q.label, "kind": q.kind,
                    "type": q.type, "value": value, "status": status, "required": q.required,
                    "options": [(choice, _(choice.replace("_", " "))) for choice in q.choices]})
    return out


def _timeline(view: dict[str, Any], changes: list[Any], limit: int
              ) -> tuple[list[dict[str, Any]], bool]:
    """The timeline newest first, cut at ``limit`` (and whether there is more). Stage
    changes come from the history itself, to name their stages."""
    entries = [e for e in view["timeline"] if e["kind"] != "stage"]
    for ch in changes:
        entries.append({"at": ch.at, "kind": "stage", "from": ch.from_stage, "to": ch.to_stage,
                        "by": ch.actor, "reason": ch.reason, "direction": ch.kind,
                        "config_version": ch.config_version})
    entries.sort(key=lambda e: e["at"], reverse=True)
    for e in entries:
        if e["kind"] == "change":
            e["pairs"] = _pairs(e.get("details"))
        elif e["kind"] == "event":
            props = e.get("properties") or {}
            e["pairs"] = [(str(k), _short(v)) for k, v in props.items()
                          if isinstance(v, str | int | float) and not isinstance(v, bool)][:5]
    return entries[:limit], len(entries) > limit


def _moves(app: App, stage: str, _: Translate) -> list[tuple[str, str]]:
    """The moves by hand the pipeline allows from ``stage``: every other stage but the
    erased one (erasure has its own form), and back to nurture where recycling applies."""
    cfg = app.config
    if cfg.is_erased(stage):
        return []
    options = [(s.key, _(s.name)) for s in cfg.stages if s.key != stage and s.role != "erased"]
    if cfg.role_of(stage) in moves.RECYCLABLE_ROLES and cfg.stages_with_role("interest"):
        options.append((RECYCLE, _("Back to nurture ({stage}): the evidence so far no longer "
                                   "counts", stage=_(cfg.first_stage("interest").name))))
    return options


def _page(request: Request, viewer: Viewer, contact_id: int, *, status: int = 200,
          timeline: int = TIMELINE_STEP, errors: dict[str, dict[str, str]] | None = None,
          values: dict[str, dict[str, str]] | None = None) -> HTMLResponse:
    app = app_of(request)
    cfg = app.config
    _ = viewer._
    now = app.clock.now()
    view = contact_view(uow=app.reader(), ctx=app.ctx, contact_id=contact_id,
                        timeline_limit=timeline + 1)
    with app.reader() as uow:
        contact = load_contact(uow, contact_id)
        changes = uow.history.stage_changes(contact_id)
        users = {u.id: u for u in uow.users.all()}
    recommended = content_services.next_best_for(uow=app.reader(), ctx=app.ctx,
                                                 contact_id=contact_id)
    rights = Rights.of(viewer)
    role = cfg.role_of(contact.stage)
    erased = role == "erased"
    h = cfg.engagement.half_life_seconds
    rules = {r.key: r for r in cfg.engagement.rules}
    t0 = contact.engagement.t0
    engagement = {
        **view["engagement"],
        "at_last": contact.engagement.score if t0 is not None else 0.0,
        "last_at": t0,
        "remains": decay_factor(now - t0, h) if t0 is not None else None,
        "rules": [{"key": key, "about": rules[key].description if key in rules else "",
                   "then": contact.engagement.breakdown.get(key, 0.0), "now": points}
                  for key, points in view["engagement"]["breakdown"].items()],
    }
    personas = {p.key: p.name for p in cfg.fit.personas}
    entries, more = _timeline(view, changes, timeline)
    posted = (values or {}).get("qualification")
    sales_users = [u for u in list_users(uow=app.reader(), principal=viewer.principal)
                   if u.role in SALES_ROLES and u.active]
    tasks = sorted(view["tasks"], key=lambda t: (t["done_at"] is not None,
                                                 t["due_at"] if t["done_at"] is None
                                                 else -t["done_at"]))
    deal_stages = {d.key: d.name for d in cfg.sales.deal_stages}
    labels = _labels(_)
    options = {
        "move": _moves(app, contact.stage, _),
        "activity": [(k, labels["activity"].get(k, k)) for k in ACTIVITY_KINDS],
        "direction": [(k, labels["direction"].get(k, k)) for k in DIRECTIONS],
        "task": [(k, labels["task"].get(k, k)) for k in TASK_KINDS],
        "currency": [(code, code) for code in sorted(cfg.sales.rates)],
        "assign": [(u.id, f"{u.name} · {_(u.role.replace('_', ' '))}") for u in sales_users
                   if u.id != contact.owner_id],
        "task_owner": [(u.id, u.name) for u in sales_users],
    }
    can = {
        "act": rights.write and not erased,
        "accept": rights.write and not erased and role in SALES_STAGE_ROLES
        and SAL in cfg.milestone_keys() and SAL not in contact.milestones
        and (viewer.principal.role != "sales_rep" or contact.owner_id == viewer.user.id),
        "reject": rights.write and not erased and role == "handoff",
        "deal": rights.write and role not in ("erased", "excluded"),
        "assign": rights.assign and not erased,
        "erase": rights.write and not erased,
        "task_owner": viewer.principal.role != "sales_rep",
    }
    return page(
        request, viewer, "contact.html", status=status, title=view["name"], c=view,
        contact=contact, created_at=contact.created_at, engagement=engagement,
        fit_persona=personas.get(view["fit"]["persona"] or "", view["fit"]["persona"]),
        grades=cfg.fit.grade_thresholds, stage_changes=list(reversed(changes)),
        milestones=[{"key": m.key, "name": m.name, "at": contact.milestones.get(m.key)}
                    for m in cfg.milestones],
        questions=_questions(app, view, posted, _), entries=entries, more=more,
        timeline=timeline, next_timeline=min(timeline + TIMELINE_STEP * 2, TIMELINE_MAX),
        timeline_max=TIMELINE_MAX, recommended=recommended, users=users, tasks=tasks,
        deal_stages=deal_stages, reporting=cfg.sales.reporting_currency, options=options,
        milestone_names={m.key: m.name for m in cfg.milestones}, can=can, rights=rights,
        erased=erased, labels=labels, errors=errors or {}, values=values or {},
        prediction=prediction_for(app, contact_id, _))


@router.get("/contacts/{contact_id:int}", response_class=HTMLResponse)
def contact_page(request: Request, viewer: WebUser, contact_id: int,
                 timeline: int = TIMELINE_STEP) -> Response:
    app = app_of(request)
    try:
        ensure_contact_access(uow=app.reader(), principal=viewer.principal,
                              contact_id=contact_id)
        return _page(request, viewer, contact_id,
                     timeline=max(1, min(timeline, TIMELINE_MAX)))
    except Merged as exc:  # its history lives on in the contact it was merged into
        ensure_contact_access(uow=app.reader(), principal=viewer.principal,
                              contact_id=exc.survivor_id)
        flash(request, viewer._("Contact {a} was merged into this one.", a=contact_id))
        return redirect(f"/contacts/{exc.survivor_id}")


# ---------------------------------------------------------------- acting on it


def _writer(request: Request, viewer: Viewer, contact_id: int) -> App:
    """As the REST routes' ContactWriter: the write scope, on a contact the viewer sees."""
    app = app_of(request)
    viewer.principal.need("write")
    ensure_contact_access(uow=app.reader(), principal=viewer.principal, contact_id=contact_id)
    return app


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _moment(form: FormData, name: str, _: Translate) -> float | None:
    """A ``datetime-local`` (or date) field, read as UTC; blank: None."""
    raw = _text(form, name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(_("Enter a date and time, like 2026-03-02 14:30."),
                           field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        raise InvalidInput(_("Enter a date and time, like 2026-03-02 14:30."),
                           field=name) from None


def _amount(raw: str, lang: str, _: Translate) -> float:
    """An amount as people type it: spaces between thousands; a decimal comma in French,
    a thousands comma in English."""
    text = "".join(raw.split()).replace("\u202f", "").replace("\u00a0", "")
    if not text:
        raise InvalidInput(_("Enter the amount of the deal."), field="amount")
    text = text.replace(",", ".") if lang == "fr" else text.replace(",", "")
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(_("Enter an amount as a number, like 12000 or 12000.50."),
                           field="amount") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(_("Enter an amount of 0 or more."), field="amount")
    return value


def _again(request: Request, viewer: Viewer, contact_id: int, name: str, form: FormData,
           exc: LeadflowError, fields: tuple[str, ...]) -> HTMLResponse:
    """The page again, the refused form open with the values sent and the message next to
    its field (or atop the form when it is about no field of it)."""
    where = exc.field if exc.field in fields else "_form"
    status = 422 if isinstance(exc, InvalidInput) else status_of(exc)
    sent = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    return _page(request, viewer, contact_id, status=status,
                 errors={name: {where: exc.message}}, values={name: sent})


def _back(request: Request, viewer: Viewer, contact_id: int, anchor: str) -> Response:
    """Back to the contact's page; to the list when the action took the contact out of the
    viewer's sight (a rep who rejected or recycled it: it is nobody's now)."""
    try:
        ensure_contact_access(uow=app_of(request).reader(), principal=viewer.principal,
                              contact_id=contact_id)
    except Forbidden:
        flash(request, viewer._("This contact is no longer in your list."))
        return redirect("/contacts")
    return redirect(f"/contacts/{contact_id}#{anchor}")


ACTIVITY_FIELDS = ("kind", "direction", "at", "subject", "body", "outcome")


@router.post("/contacts/{contact_id:int}/activities")
def log_activity(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    try:
        data = activities.ActivityIn(
            kind=_text(form, "kind"), direction=_text(form, "direction") or None,
            at=_moment(form, "at", _), subject=_text(form, "subject") or None,
            body=_text(form, "body") or None, outcome=_text(form, "outcome") or None)
        activities.log_activity(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, data=data,
                                principal=viewer.principal)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "activity", form, exc, ACTIVITY_FIELDS)
    flash(request, _("Activity logged."))
    return _back(request, viewer, contact_id, "timeline")


@router.post("/contacts/{contact_id:int}/accept")
def accept(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    try:
        followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                        principal=viewer.principal)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "handoff", form, exc, ())
    flash(request, viewer._("Prospect accepted."))
    return _back(request, viewer, contact_id, "stage")


@router.post("/contacts/{contact_id:int}/reject")
def reject(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    try:
        followup.reject(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                        reason=_text(form, "reason"), principal=viewer.principal)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "reject", form, exc, ("reason",))
    flash(request, viewer._("Prospect rejected: it is back in nurture."))
    return _back(request, viewer, contact_id, "stage")


@router.post("/contacts/{contact_id:int}/stage")
def move(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    target, reason = _text(form, "stage"), _text(form, "reason")
    actor = viewer.principal.name
    excluded = app.config.stages_with_role("excluded")
    try:
        if not target:
            raise InvalidInput(_("Choose where the contact goes."), field="stage")
        if target == RECYCLE:
            contact = moves.recycle(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                                    reason=reason, actor=actor)
        elif excluded and target == excluded[0].key:
            contact = moves.disqualify(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                                       reason=reason, actor=actor)
        else:
            contact = moves.move_stage(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                                       to_stage=target, reason=reason, actor=actor)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "move", form, exc, ("stage", "reason"))
    flash(request, _("Moved to {stage}.", stage=_(app.config.stage(contact.stage).name)))
    return _back(request, viewer, contact_id, "stage")


@router.post("/contacts/{contact_id:int}/qualification")
def qualify(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    answers = {q.key: _text(form, f"answers.{q.key}") for q in app.config.questions}
    fields = tuple(f"answers.{key}" for key in answers)
    try:
        contact = moves.qualify(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                                answers=answers, actor=viewer.principal.name)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "qualification", form, exc, fields)
    flash(request, _("Qualification saved: the contact is qualified.")
          if contact.qualification.passed else _("Qualification saved."))
    return _back(request, viewer, contact_id, "qualification")


OPPORTUNITY_FIELDS = ("name", "amount", "currency", "expected_close")


@router.post("/contacts/{contact_id:int}/opportunities")
def create_opportunity(request: Request, viewer: WebUser, form: Posted,
                       contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    who = viewer.principal
    try:
        amount = _amount(_text(form, "amount"), viewer.lang, _)
        deal = deals.create_opportunity(
            uow_factory=app.uow, ctx=app.ctx, contact_id=contact_id, actor=who.name,
            owner_id=who.user_id if who.role in SALES_ROLES else None,
            name=_text(form, "name"), amount=amount, currency=_text(form, "currency"),
            expected_close=_text(form, "expected_close") or None)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "opportunity", form, exc,
                      OPPORTUNITY_FIELDS)
    flash(request, _("Opportunity “{name}” created.", name=deal.name))
    return _back(request, viewer, contact_id, "opportunities")


TASK_FIELDS = ("kind", "title", "due_at", "owner_id")


@router.post("/contacts/{contact_id:int}/tasks")
def add_task(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    who = viewer.principal
    try:
        owner_text = _text(form, "owner_id")
        if owner_text and not owner_text.isdigit():
            raise InvalidInput(_("Choose the task's owner from the list."), field="owner_id")
        owner_id = int(owner_text) if owner_text else None
        if owner_id is not None and not who.sees_owner(owner_id):  # as the REST route
            raise Forbidden("you may give tasks only to yourself or your team",
                            field="owner_id")
        followup.create_task(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                             kind=_text(form, "kind") or "follow_up",
                             title=_text(form, "title") or None,
                             due_at=_moment(form, "due_at", _), owner_id=owner_id,
                             actor=who.name)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "task", form, exc, TASK_FIELDS)
    flash(request, _("Task added."))
    return _back(request, viewer, contact_id, "tasks")


@router.post("/contacts/{contact_id:int}/tasks/{task_id:int}/complete")
def complete_task(request: Request, viewer: WebUser, form: Posted, contact_id: int,
                  task_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    task = visible_task(uow=app.reader(), principal=viewer.principal, task_id=task_id)
    if task.contact_id != contact_id:
        raise NotFound(f"no task {task_id} on contact {contact_id}", field="task_id")
    try:
        following = followup.complete_task(uow=app.uow(), ctx=app.ctx, task_id=task_id,
                                           outcome=_text(form, "outcome") or None,
                                           actor=viewer.principal.name)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "complete", form, exc, ())
    if following is None:
        flash(request, _("Task completed."))
    else:
        flash(request, _("Task completed; the next follow-up is due {when}.",
                         when=datetime.fromtimestamp(following.due_at, UTC)
                         .strftime("%Y-%m-%d %H:%M")))
    return _back(request, viewer, contact_id, "tasks")


@router.post("/contacts/{contact_id:int}/assign")
def assign(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    viewer.principal.need_role(*ASSIGNERS, what="reassign contacts")
    try:
        owner = _text(form, "owner")
        if not owner:
            raise InvalidInput(_("Choose who takes the contact."), field="owner")
        contact = assignments.reassign(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                                       owner=owner, reason=_text(form, "reason"),
                                       actor=viewer.principal.name, principal=viewer.principal)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "assign", form, exc, ("owner", "reason"))
    with app.reader() as uow:
        new: User | None = uow.users.get(contact.owner_id) if contact.owner_id else None
    flash(request, _("Assigned to {name}.", name=new.name if new else "–"))
    return _back(request, viewer, contact_id, "owner")


@router.post("/contacts/{contact_id:int}/erase")
def erase(request: Request, viewer: WebUser, form: Posted, contact_id: int) -> Response:
    app = _writer(request, viewer, contact_id)
    _ = viewer._
    try:
        if _text(form, "confirm") != "yes":
            raise InvalidInput(_("Tick the box to confirm: erasure cannot be undone."),
                               field="confirm")
        moves.erase(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                    reason=_text(form, "reason"), actor=viewer.principal.name,
                    mailer=app.mailer)
    except FORM_ERRORS as exc:
        return _again(request, viewer, contact_id, "erase", form, exc, ("reason", "confirm"))
    flash(request, _("Personal data erased: only what keeps this person from coming back "
                     "is kept."))
    return _back(request, viewer, contact_id, "top")
