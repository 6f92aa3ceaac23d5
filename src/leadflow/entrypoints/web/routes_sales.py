"""Pages for sales: a rep's work queue (hot first, with the managers' "falling through the
cracks"), the task list, and the opportunity board.

Rights are those of the REST routes (api/routes_sales.py, api/routes_deals.py): a queue or a
task list is the viewer's own, their team's (managers) or anyone's (admins, marketers); a
task or a deal is reached through services/access.py before anything changes. Every change
is a small form that posts and comes back to the page it was on (``back``); a form's bad
value re-renders that page with the message next to the field (422).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from leadflow.adapters.db.sales_page_reads import (
    account_names,
    contact_labels,
    opportunity_board,
    queue_details,
    task_page,
)
from leadflow.adapters.db.sales_read_models import SqlSalesReads
from leadflow.adapters.db.work_queues import falling_through_cracks, rep_queue
from leadflow.bootstrap import App
from leadflow.domain.errors import Forbidden, InvalidInput, LeadflowError, NotFound
from leadflow.domain.forecast import convert
from leadflow.domain.sales import DEAL_STATUSES, SALES_STAGE_ROLES
from leadflow.domain.sales_config import LOST_NEXT
from leadflow.domain.users import SALES_ROLES, User
from leadflow.entrypoints.web.render import page, redirect, safe_next
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services import followup
from leadflow.services import opportunities as deals
from leadflow.services.access import ensure_contact_access, visible_opportunity, visible_task
from leadflow.services.handoff import HANDOFF
from leadflow.services.temperatures import refresh_expired_temperatures
from leadflow.services.users import list_users

router = web_router()
QUEUE_LIMIT = 50
TASK_LIMIT = 50
DEAL_LIMIT = 50
PER_COLUMN = 50
CRACKS_LIMIT = 100
REASON_MAX = 1000  # as the REST Reason body
OUTCOME_MAX = 2000  # as the REST TaskComplete body
SEES_CRACKS = ("admin", "marketer", "sales_manager")
Errors = dict[str, dict[str, str]]
Builder = Callable[..., HTMLResponse]


# ---------------------------------------------------------------- helpers


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _here(path: str, params: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + (f"?{urlencode(kept)}" if kept else "")


def _back(form: FormData, default: str) -> str:
    value = form.get("back")
    return safe_next(value if isinstance(value, str) else default)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _users(app: App) -> dict[int, User]:
    with app.reader() as uow:
        return {u.id: u for u in uow.users.all()}


def _pickable(app: App, viewer: Viewer) -> list[User]:
    """The sales users whose queue, tasks or deals the viewer may pick: a manager's team,
    everyone for admins and marketers; a rep picks nobody."""
    if viewer.user.role == "sales_rep":
        return []
    people = list_users(uow=app.reader(), principal=viewer.principal)
    return sorted((u for u in people if u.role in SALES_ROLES and u.active),
                  key=lambda u: (u.name.lower(), u.id))


def _picked(viewer: Viewer, users: Mapping[int, User], chosen: int | None) -> int | None:
    """The owner the viewer asked for, once checked as the REST routes check it."""
    if chosen is None:
        return None
    if not viewer.principal.sees_owner(chosen):
        raise Forbidden("that person is not in your team", field="owner")
    if chosen not in users:
        raise NotFound(f"no user {chosen}", field="owner")
    return chosen


def _role(app: App, stage: str | None) -> str | None:
    try:
        return app.config.role_of(stage) if stage else None
    except (LeadflowError, KeyError):
        return None


def _day_end(app: App, now: float) -> float:
    """The end of today in the sales calendar's time zone."""
    zone = ZoneInfo(app.config.sales.calendar.timezone)
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)
    return midnight.timestamp()


def _refused(request: Request, viewer: Viewer, exc: LeadflowError, back: str) -> Response:
    """A change the current state does not allow (done already, closed, moved meanwhile):
    say so on the page it came from."""
    flash(request, viewer._(exc.message), "error")
    return redirect(back)


def _rerender(request: Request, viewer: Viewer, back: str, errors: Errors,
              values: Errors) -> HTMLResponse:
    """The page a form was on, again, with the form's message next to its field (422)."""
    parts = urlsplit(back)
    params = dict(parse_qsl(parts.query))
    builder: Builder = {"/queue": _queue_page, "/tasks": _tasks_page,
                        "/opportunities": _deals_page}.get(parts.path, _tasks_page)
    return builder(request, viewer, params, errors=errors, values=values, status=422)


# ---------------------------------------------------------------- the work queue


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, viewer: WebUser) -> HTMLResponse:
    return _queue_page(request, viewer, request.query_params)


def _queue_page(request: Request, viewer: Viewer, params: Mapping[str, str], *,
                errors: Errors | None = None, values: Errors | None = None,
                status: int = 200) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    users = _users(app)
    chosen = _picked(viewer, users, _int(params.get("owner")))
    owner = chosen if chosen is not None else (viewer.user.id if viewer.in_sales else None)
    offset = max(_int(params.get("offset")) or 0, 0)
    here = _here("/queue", {"owner": chosen, "offset": offset or None})
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    now = app.clock.now()
    found: dict[str, Any] = {"tasks": [], "prospects": [], "total": 0}
    details: dict[int, dict[str, Any]] = {}
    labels: dict[int, str] = {}
    cracks = None
    with app.engine.connect() as conn:
        if owner is not None:
            found = rep_queue(conn, app.config, owner_id=owner, now=now, limit=QUEUE_LIMIT,
                              offset=offset)
            details = queue_details(conn, contact_ids=[p["id"] for p in found["prospects"]],
                                    milestone=followup.SAL)
            labels = contact_labels(conn, ids=[x["contact_id"] for x in found["tasks"]])
        if viewer.user.role in SEES_CRACKS:
            cracks = falling_through_cracks(conn, app.config,
                                            owners=viewer.principal.visible_owners,
                                            limit=CRACKS_LIMIT)
    can_accept = followup.SAL in app.config.milestone_keys()
    rows = []
    for p in found["prospects"]:
        extra = details.get(p["id"], {"next_task": None, "accepted": False})
        role = _role(app, p["stage"])
        task = extra["next_task"]
        rows.append({**p, "next_task": task, "accepted": extra["accepted"],
                     "can_accept": can_accept and role in SALES_STAGE_ROLES
                     and not extra["accepted"],
                     "can_reject": role == HANDOFF,
                     "can_complete": task is not None
                     and viewer.principal.sees_owner(task["owner_id"])})
    owner_user = users.get(owner) if owner is not None else None
    title = _("My queue") if owner == viewer.user.id or owner is None else \
        _("Queue of {name}", name=owner_user.name if owner_user else "?")

    def params_for(**changes: Any) -> str:
        return urlencode({k: v for k, v in {"owner": chosen, **changes}.items()
                          if v not in (None, "")})
    return page(request, viewer, "queue.html", status=status, title=title,
                owner=owner, owner_user=owner_user, chosen=chosen, here=here,
                pickable=_pickable(app, viewer), tasks=found["tasks"], labels=labels,
                prospects=rows, total=found["total"], limit=QUEUE_LIMIT, offset=offset,
                params=params_for, cracks=cracks, users=users, errors=errors or {},
                values=values or {})


@router.post("/queue/{contact_id}/accept", response_model=None)
def queue_accept(request: Request, contact_id: int, viewer: WebUser,
                 form: Posted) -> Response:
    """The owner takes the prospect (milestone ``sal``), as POST /api/v1/contacts/{id}/accept."""
    app = app_of(request)
    back = _back(form, "/queue")
    ensure_contact_access(uow=app.reader(), principal=viewer.principal, contact_id=contact_id)
    try:
        followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                        principal=viewer.principal)
    except (NotFound, Forbidden):
        raise
    except LeadflowError as exc:
        return _refused(request, viewer, exc, back)
    flash(request, viewer._("Accepted: the prospect is yours to work."))
    return redirect(back)


@router.post("/queue/{contact_id}/reject", response_model=None)
def queue_reject(request: Request, contact_id: int, viewer: WebUser,
                 form: Posted) -> Response:
    """Back to marketing with a reason (recycled), as POST /api/v1/contacts/{id}/reject."""
    app = app_of(request)
    _ = viewer._
    back = _back(form, "/queue")
    ensure_contact_access(uow=app.reader(), principal=viewer.principal, contact_id=contact_id)
    reason = _text(form, "reason")
    key = f"reject-{contact_id}"
    problem = _("Say why you send this prospect back.") if not reason else \
        _("At most {n} characters.", n=REASON_MAX) if len(reason) > REASON_MAX else None
    if problem is None:
        try:
            followup.reject(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, reason=reason,
                            principal=viewer.principal)
        except InvalidInput as exc:
            if exc.field != "reason":
                return _refused(request, viewer, exc, back)
            problem = _(exc.message)
        except (NotFound, Forbidden):
            raise
        except LeadflowError as exc:
            return _refused(request, viewer, exc, back)
    if problem is not None:
        return _rerender(request, viewer, back, {key: {"reason": problem}},
                         {key: {"reason": reason}})
    flash(request, _("Sent back to marketing: {reason}", reason=reason))
    return redirect(back)


# ---------------------------------------------------------------- tasks


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request, viewer: WebUser) -> HTMLResponse:
    return _tasks_page(request, viewer, request.query_params)


def _tasks_page(request: Request, viewer: Viewer, params: Mapping[str, str], *,
                errors: Errors | None = None, values: Errors | None = None,
                status: int = 200) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    users = _users(app)
    chosen = _picked(viewer, users, _int(params.get("owner")))
    state = "done" if params.get("status") == "done" else "open"
    offset = max(_int(params.get("offset")) or 0, 0)
    here = _here("/tasks", {"owner": chosen, "status": state if state != "open" else None,
                            "offset": offset or None})
    now = app.clock.now()
    with app.engine.connect() as conn:
        rows, total = task_page(conn, owners=viewer.principal.visible_owners, owner_id=chosen,
                                status=state, now=now, limit=TASK_LIMIT, offset=offset)
    groups: list[tuple[str, str, list[dict[str, Any]]]] = []
    if state == "open":
        end = _day_end(app, now)
        groups = [("overdue", _("Overdue"), [r for r in rows if r["overdue"]]),
                  ("today", _("Due today"),
                   [r for r in rows if not r["overdue"] and r["due_at"] < end]),
                  ("upcoming", _("Upcoming"), [r for r in rows if r["due_at"] >= end])]
        groups = [g for g in groups if g[2]]

    def params_for(**changes: Any) -> str:
        base = {"owner": chosen, "status": state if state != "open" else None}
        return urlencode({k: v for k, v in {**base, **changes}.items() if v not in (None, "")})
    scope = _("your tasks") if viewer.user.role == "sales_rep" else \
        _("your team's tasks") if viewer.user.role == "sales_manager" else _("everyone's tasks")
    return page(request, viewer, "tasks.html", status=status, title=_("Tasks"), rows=rows,
                groups=groups, total=total, state=state, chosen=chosen, here=here,
                scope=scope, pickable=_pickable(app, viewer), limit=TASK_LIMIT, offset=offset,
                params=params_for, errors=errors or {}, values=values or {})


@router.post("/tasks/{task_id}/complete", response_model=None)
def task_complete(request: Request, task_id: int, viewer: WebUser, form: Posted) -> Response:
    """Close a task with its outcome, as POST /api/v1/tasks/{id}/complete; the contact's
    next follow-up opens when this was its last."""
    app = app_of(request)
    _ = viewer._
    back = _back(form, "/tasks")
    visible_task(uow=app.reader(), principal=viewer.principal, task_id=task_id)
    outcome = _text(form, "outcome")
    key = f"task-{task_id}"
    if len(outcome) > OUTCOME_MAX:
        return _rerender(request, viewer, back,
                         {key: {"outcome": _("At most {n} characters.", n=OUTCOME_MAX)}},
                         {key: {"outcome": outcome}})
    try:
        following = followup.complete_task(uow=app.uow(), ctx=app.ctx, task_id=task_id,
                                           outcome=outcome or None,
                                           actor=viewer.principal.name)
    except (NotFound, Forbidden):
        raise
    except LeadflowError as exc:
        return _refused(request, viewer, exc, back)
    if following is not None:
        due = datetime.fromtimestamp(following.due_at, ZoneInfo(
            app.config.sales.calendar.timezone)).strftime("%Y-%m-%d %H:%M")
        flash(request, _("Task done. The next follow-up is due {when}.", when=due))
    else:
        flash(request, _("Task done."))
    return redirect(back)


# ---------------------------------------------------------------- opportunities


@router.get("/opportunities", response_class=HTMLResponse)
def opportunities(request: Request, viewer: WebUser) -> HTMLResponse:
    return _deals_page(request, viewer, request.query_params)


def _totals(app: App, sums: Mapping[str, list[float]]) -> dict[str, Any]:
    """A column's amounts in the reporting currency (amounts in a currency without a rate
    are left out, and said to be)."""
    sales = app.config.sales
    amount = weighted = 0.0
    left_out: list[str] = []
    for currency, (total, expected) in sums.items():
        try:
            amount += convert(total, currency, rates=sales.rates,
                              reporting=sales.reporting_currency)
            weighted += convert(expected, currency, rates=sales.rates,
                                reporting=sales.reporting_currency)
        except InvalidInput:
            left_out.append(currency)
    return {"amount": amount, "weighted": weighted, "left_out": left_out}


def _deals_page(request: Request, viewer: Viewer, params: Mapping[str, str], *,
                errors: Errors | None = None, values: Errors | None = None,
                status: int = 200) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    sales = app.config.sales
    users = _users(app)
    chosen = _int(params.get("owner"))
    if chosen is not None and chosen not in users:
        chosen = None
    view = "list" if params.get("view") == "list" else "board"
    wanted = params.get("status") or "open"
    if wanted not in (*DEAL_STATUSES, "all"):
        wanted = "open"
    state = None if wanted == "all" else wanted
    offset = max(_int(params.get("offset")) or 0, 0) if view == "list" else 0
    here = _here("/opportunities", {"view": view if view != "board" else None,
                                    "owner": chosen, "status": wanted if wanted != "open"
                                    else None, "offset": offset or None})
    owners = viewer.principal.visible_owners
    stage_keys = [s.key for s in sales.deal_stages]
    columns: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    total = 0
    with app.engine.connect() as conn:
        if view == "board":
            board = opportunity_board(conn, visible_owners=owners, owner_id=chosen,
                                      status=state, stages=stage_keys, per_column=PER_COLUMN)
            names = {s.key: _(s.name) for s in sales.deal_stages}
            probabilities = {s.key: s.probability for s in sales.deal_stages}
            for key, column in board.items():
                columns.append({"key": key, "name": names.get(key, key),
                                "probability": probabilities.get(key),
                                "count": column["count"], "cards": column["cards"],
                                **_totals(app, column["sums"])})
            total = sum(c["count"] for c in columns)
        else:
            items, total = deals.list_opportunities(
                reads=SqlSalesReads(conn), ctx=app.ctx, principal=viewer.principal,
                status=state, owner_id=chosen, limit=DEAL_LIMIT, offset=offset)
            accounts = account_names(conn, ids=[i["account_id"] for i in items])
            for item in items:
                item["account"] = accounts.get(item["account_id"]) if item["account_id"] \
                    else None
                item["contact"] = item["contact_name"] or item["contact_email"] or \
                    f"#{item['contact_id']}"

    def params_for(**changes: Any) -> str:
        base = {"view": view if view != "board" else None, "owner": chosen,
                "status": wanted if wanted != "open" else None}
        return urlencode({k: v for k, v in {**base, **changes}.items() if v not in (None, "")})
    stage_names = {s.key: _(s.name) for s in sales.deal_stages}
    return page(request, viewer, "opportunities.html", status=status,
                title=_("Opportunities"), view=view, wanted=wanted, chosen=chosen,
                here=here, columns=columns, items=items, total=total, users=users,
                pickable=_pickable(app, viewer),
                deal_stages=[(s.key, stage_names[s.key]) for s in sales.deal_stages],
                stage_names=stage_names, lost_reasons=list(sales.lost_reasons),
                lost_next=sales.lost_next, lost_choices=list(LOST_NEXT),
                reporting=sales.reporting_currency, limit=DEAL_LIMIT, offset=offset,
                params=params_for, per_column=PER_COLUMN, errors=errors or {},
                values=values or {})


@router.post("/opportunities/{opportunity_id}/stage", response_model=None)
def deal_move(request: Request, opportunity_id: int, viewer: WebUser,
              form: Posted) -> Response:
    """Another deal stage (its default probability follows), as PATCH
    /api/v1/opportunities/{id} with ``deal_stage``."""
    app = app_of(request)
    _ = viewer._
    back = _back(form, "/opportunities")
    deal = visible_opportunity(uow=app.reader(), principal=viewer.principal,
                               opportunity_id=opportunity_id)
    stage = _text(form, "deal_stage")
    key = f"deal-{opportunity_id}"
    try:
        moved = deals.update_opportunity(uow=app.uow(), ctx=app.ctx,
                                         opportunity_id=opportunity_id,
                                         changes={"deal_stage": stage},
                                         actor=viewer.principal.name)
    except InvalidInput as exc:
        if exc.field != "deal_stage":
            return _refused(request, viewer, exc, back)
        return _rerender(request, viewer, back,
                         {key: {"deal_stage": _("Pick one of the deal stages.")}},
                         {key: {"deal_stage": stage}})
    except (NotFound, Forbidden):
        raise
    except LeadflowError as exc:
        return _refused(request, viewer, exc, back)
    name = next((_(s.name) for s in app.config.sales.deal_stages if s.key == moved.deal_stage),
                moved.deal_stage)
    flash(request, _("{deal} moved to {stage}.", deal=deal.name, stage=name))
    return redirect(back)


@router.post("/opportunities/{opportunity_id}/win", response_model=None)
def deal_win(request: Request, opportunity_id: int, viewer: WebUser, form: Posted) -> Response:
    """Won: the contact becomes a customer (POST /api/v1/opportunities/{id}/win)."""
    app = app_of(request)
    back = _back(form, "/opportunities")
    deal = visible_opportunity(uow=app.reader(), principal=viewer.principal,
                               opportunity_id=opportunity_id)
    try:
        deals.win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=opportunity_id,
                              actor=viewer.principal.name)
    except (NotFound, Forbidden):
        raise
    except LeadflowError as exc:
        return _refused(request, viewer, exc, back)
    flash(request, viewer._("Won: {deal}. The contact is a customer now.", deal=deal.name))
    return redirect(back)


LOSE_FIELDS = {"lost_reason": "reason", "then": "then", "note": "note"}


@router.post("/opportunities/{opportunity_id}/lose", response_model=None)
def deal_lose(request: Request, opportunity_id: int, viewer: WebUser,
              form: Posted) -> Response:
    """Lost with a configured reason; the contact goes to nurture or is disqualified
    (POST /api/v1/opportunities/{id}/lose)."""
    app = app_of(request)
    _ = viewer._
    back = _back(form, "/opportunities")
    deal = visible_opportunity(uow=app.reader(), principal=viewer.principal,
                               opportunity_id=opportunity_id)
    reason, then, note = _text(form, "reason"), _text(form, "then"), _text(form, "note")
    key = f"deal-{opportunity_id}"
    sent = {"reason": reason, "then": then, "note": note, "lose": "1"}
    problems: dict[str, str] = {}
    if not reason:
        problems["reason"] = _("Pick why the deal was lost.")
    if len(note) > deals.NOTE_MAX:
        problems["note"] = _("At most {n} characters.", n=deals.NOTE_MAX)
    if not problems:
        try:
            deals.lose_opportunity(uow_factory=app.uow, ctx=app.ctx,
                                   opportunity_id=opportunity_id, reason=reason,
                                   then=then or None, note=note or None,
                                   actor=viewer.principal.name)
        except InvalidInput as exc:
            field = LOSE_FIELDS.get(exc.field or "")
            if field is None:
                return _refused(request, viewer, exc, back)
            problems[field] = _(exc.message)
        except (NotFound, Forbidden):
            raise
        except LeadflowError as exc:
            return _refused(request, viewer, exc, back)
    if problems:
        return _rerender(request, viewer, back, {key: problems}, {key: sent})
    flash(request, _("Lost: {deal} ({reason}).", deal=deal.name,
                     reason=_(reason.replace("_", " "))))
    return redirect(back)
