"""Pages: settings, for admins only — the lifecycle configuration (pipeline, scoring rules,
personas) with a full rescore, users, API keys, webhooks and their delivery log."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from leadflow.adapters.db import tables
from leadflow.adapters.db.read_models import funnel, late_contacts
from leadflow.domain.access import KINDS, SCOPES
from leadflow.domain.config import Condition, LifecycleConfig
from leadflow.domain.errors import (
    ConfigInvalid,
    Conflict,
    Forbidden,
    InvalidInput,
    LeadflowError,
    NotFound,
)
from leadflow.domain.matching import SHAPE_FIELDS, Matcher
from leadflow.domain.users import ROLES, User
from leadflow.domain.webhooks import TOPICS
from leadflow.entrypoints.web.i18n import Translate
from leadflow.entrypoints.web.progress import Operation, OperationProgress, ProgressBoard
from leadflow.entrypoints.web.render import page, redirect
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services import api_keys, pipeline_config, users, webhooks
from leadflow.services.rescore import rescore_all

router = web_router()

SECTIONS = (("/settings/pipeline", "Pipeline and scoring"), ("/settings/users", "Users"),
            ("/settings/keys", "API keys"), ("/settings/webhooks", "Webhooks"))
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")
# A full rescore after a rule edit, measured with bench/rescore.py (README): about 20 s per
# million contacts on SQLite, 40 s on PostgreSQL.
RESCORE_SECONDS_PER_MILLION = (20, 45)
_LINE = re.compile(r"^(?P<where>.*?)\s*\(line (?P<line>\d+)\)$")
_LINE_COLUMN = re.compile(r"^line (?P<line>\d+), column (?P<column>\d+)$")


def admin_only(viewer: WebUser) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden("only admins may open the settings", field="role")
    return viewer


Admin = Annotated[Viewer, Depends(admin_only)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _settings_page(request: Request, viewer: Viewer, template: str, *, title: str,
                   status: int = 200, **context: Any) -> HTMLResponse:
    _ = viewer._
    return page(request, viewer, template, status=status, title=title,
                sections=[(href, _(label)) for href, label in SECTIONS], **context)


def _field_error(exc: LeadflowError, fields: tuple[str, ...], _: Translate) -> dict[str, str]:
    """A service's error, next to the field it names (else above the form)."""
    where = exc.field if exc.field in fields else "_"
    return {str(where): _(exc.message)}


def _keep_once(request: Request, what: str, ref: int, secret: str) -> None:
    """A secret shown on the next page only (the session keeps it until that page pops it)."""
    request.session["shown_once"] = {"what": what, "id": ref, "secret": secret}


def _take_once(request: Request, what: str, ref: int) -> str | None:
    kept = request.session.pop("shown_once", None)
    if isinstance(kept, dict) and kept.get("what") == what and kept.get("id") == ref:
        secret = kept.get("secret")
        return secret if isinstance(secret, str) else None
    return None


@router.get("/settings", response_class=HTMLResponse)
def settings_home(request: Request, viewer: Admin) -> HTMLResponse:
    app = app_of(request)
    app.refresh_config()
    with app.reader() as uow:
        people = uow.users.all()
        keys = uow.api_keys.all()
        hooks = uow.webhooks.all()
    return _settings_page(
        request, viewer, "settings.html", title=viewer._("Settings"), config=app.config,
        users_active=sum(1 for u in people if u.active), users_total=len(people),
        keys_active=sum(1 for k in keys if k.active), hooks_active=sum(1 for h in hooks
                                                                        if h.active))


# ---------------------------------------------------------------- pipeline


def located_problems(exc: ConfigInvalid, text: str) -> list[dict[str, Any]]:
    """Each problem with its location, its line and that line of the text, if known."""
    lines = text.replace("\r\n", "\n").split("\n")
    out = []
    for problem in exc.problems:
        where, line = problem.location, None
        found = _LINE.match(where)
        if found:
            where, line = found.group("where"), int(found.group("line"))
        else:
            found = _LINE_COLUMN.match(where)
            if found:
                where, line = "", int(found.group("line"))
        excerpt = lines[line - 1] if line is not None and 0 < line <= len(lines) else None
        out.append({"location": where, "line": line, "message": problem.message,
                    "excerpt": excerpt})
    return out


def _matcher(m: Matcher) -> str:
    parts = []
    for name in SHAPE_FIELDS:
        value = getattr(m, name)
        if value is None:
            continue
        shown = ", ".join(value) if isinstance(value, tuple) else str(value).lower()
        parts.append(f"{name}: {shown}")
    return " · ".join(parts)


def _condition(c: Condition | None, _: Translate, nested: bool = False) -> str:
    if c is None:
        return _("set by hand or by leadflow")
    if c.op in ("all", "any"):
        joined = f" {_('and') if c.op == 'all' else _('or')} ".join(
            _condition(child, _, nested=True) for child in c.children)
        return f"({joined})" if nested and len(c.children) > 1 else joined
    if c.op == "contact_details":
        return _("contact details known")
    if c.op == "qualification":
        return _("qualification passed")
    if c.op == "signal":
        return _("signal {name}", name=c.name)
    if c.op == "engagement_at_least":
        return _("engagement at least {n}", n=f"{c.number:g}")
    if c.op == "fit_at_least":
        return _("fit at least the persona's minimum grade") if c.name == "persona" \
            else _("fit grade {grade} or better", grade=c.name)
    return c.op


def _window(seconds: float, _: Translate) -> str:
    named = {3600.0: _("hour"), 86400.0: _("day"), 604800.0: _("week")}
    return named.get(seconds) or _duration(seconds)


def _duration(seconds: float) -> str:
    for size, unit in ((604800, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def summary(config: LifecycleConfig, _: Translate) -> dict[str, Any]:
    """What a configuration says, in words: for the side of the editor."""
    personas = []
    for p in config.fit.personas:
        criteria = []
        for c in p.criteria:
            test = _("one of {values}", values=", ".join(c.values)) if c.values is not None \
                else _("between {low} and {high}", low=f"{c.between[0]:g}",
                       high=f"{c.between[1]:g}") if c.between else ""
            criteria.append({"label": c.label or c.field, "field": c.field, "test": test,
                             "weight": c.weight})
        personas.append({"key": p.key, "name": p.name, "min_grade": p.min_grade,
                         "criteria": criteria})
    rules = [{"key": r.key, "when": _matcher(r.when), "points": r.points,
              "cap": _("at most {points} per {window}", points=f"{r.cap.points:g}",
                       window=_window(r.cap.window_seconds, _)) if r.cap else "",
              "description": r.description} for r in config.engagement.rules]
    nurture = config.nurture
    return {
        "version": config.config_version,
        "stages": [{"key": s.key, "name": s.name, "role": s.role,
                    "rule": _condition(s.enter_when, _) if s.enter_when is not None
                    else _("where contacts start") if s.role == "entry"
                    else _("set by hand or by leadflow")} for s in config.stages],
        "milestones": [{"key": m.key, "name": m.name, "rule": _condition(m.when, _)}
                       for m in config.milestones],
        "signals": [{"name": name, "when": _matcher(m)} for name, m in config.signals.items()],
        "half_life_days": config.engagement.half_life_days,
        "rules": rules,
        "grades": config.fit.grade_thresholds,
        "personas": personas,
        "exclusions": [{"key": x.key, "field": x.field, "matches": ", ".join(x.values),
                        "reason": x.reason} for x in config.fit.exclusions],
        "temperature": config.temperature,
        "follow_up": [(temp, f"{d.amount:g}{d.unit}")
                      for temp, d in config.sales.follow_up.items()],
        "deal_stages": config.sales.deal_stages,
        "tracks": [{"key": t.key, "name": t.name, "audience": t.audience,
                    "stages": ", ".join(t.stage_roles), "steps": len(t.steps)}
                   for t in nurture.tracks],
        "autoresponders": [{"key": a.key, "trigger": a.trigger, "match": a.match or "*"}
                           for a in nurture.autoresponders],
        "cap": nurture.cap,
    }


def _contacts(request: Request) -> int:
    with app_of(request).engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.contacts)).scalar()
                   or 0)


def _rescore_estimate(contacts: int, _: Translate) -> str:
    low, high = (contacts / 1_000_000 * s for s in RESCORE_SECONDS_PER_MILLION)
    if high < 10:
        return _("a few seconds")
    if high < 120:
        return _("about {low} to {high} seconds", low=max(1, round(low)), high=round(high))
    return _("about {low} to {high} minutes", low=max(1, round(low / 60)),
             high=round(high / 60))


def _pipeline_page(request: Request, viewer: Viewer, *, text: str, base: str,
                   status: int = 200, problems: list[dict[str, Any]] | None = None,
                   error: str | None = None, checked: LifecycleConfig | None = None,
                   disk_problems: list[dict[str, Any]] | None = None) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    settings = app.settings
    in_use = settings.pipeline_in_use
    contacts = _contacts(request)
    return _settings_page(
        request, viewer, "settings_pipeline.html", title=_("Pipeline and scoring"),
        status=status, text=text, base=base, problems=problems or [], error=error,
        checked=summary(checked, _) if checked is not None else None,
        disk_problems=disk_problems or [],
        current=summary(app.config, _), in_use=str(in_use) if in_use else None,
        target=str(settings.pipeline_file), contacts=contacts,
        estimate=_rescore_estimate(contacts, _), rescore=_running_rescore(request))


@router.get("/settings/pipeline", response_class=HTMLResponse)
def pipeline_page(request: Request, viewer: Admin) -> HTMLResponse:
    app = app_of(request)
    app.refresh_config()  # what another process saved meanwhile
    problems: ConfigInvalid | None
    try:
        text = pipeline_config.read_pipeline(path=app.settings.pipeline_in_use).text
    except ConfigInvalid as exc:  # unreadable: an empty editor to write it anew
        text, problems = "", exc
    else:  # edited by hand since, and wrong: the one loaded before stays in effect
        problems = app.config_file_problems
    return _pipeline_page(request, viewer, text=text,
                          base=pipeline_config.text_digest(text),
                          disk_problems=located_problems(problems, text) if problems else [])


def _contacts_in(request: Request) -> pipeline_config.ContactsIn:
    app = app_of(request)

    def count(stages: Any) -> dict[str, int]:
        with app.engine.connect() as conn:
            counts = funnel(conn, app.config)["stages"]
        return {row["stage"]: int(row["count"]) for row in counts if row["stage"] in stages}
    return count


@router.post("/settings/pipeline", response_class=HTMLResponse)
def pipeline_save(request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    _ = viewer._
    value = form.get("content")
    text = value if isinstance(value, str) else ""
    base = _text(form, "base") or None
    only_check = _text(form, "action") == "check"
    before = app.config
    try:
        if only_check:
            config = pipeline_config.check_pipeline(
                content=text, source=str(app.settings.pipeline_file), in_effect=before,
                contacts_in=_contacts_in(request))
        else:
            config = pipeline_config.save_pipeline(
                path=app.settings.pipeline_file, content=text,
                in_use=app.settings.pipeline_in_use, base_digest=base, in_effect=before,
                contacts_in=_contacts_in(request))
    except ConfigInvalid as exc:
        return _pipeline_page(request, viewer, text=text, base=base or "", status=422,
                              problems=located_problems(exc, text))
    except (InvalidInput, Conflict) as exc:
        return _pipeline_page(request, viewer, text=text, base=base or "",
                              status=409 if isinstance(exc, Conflict) else 422,
                              error=_(exc.message))
    if only_check:
        return _pipeline_page(request, viewer, text=text, base=base or "", checked=config)
    app.use_config(config)
    flash(request, _("Saved and applied: configuration {version}.",
                     version=config.config_version))
    if _scoring(before) != _scoring(config):
        flash(request, _("The scoring rules changed: existing contacts keep their scores "
                         "until you rescore every contact."), "warn")
    return redirect("/settings/pipeline")


def _scoring(config: LifecycleConfig) -> tuple[Any, ...]:
    raw = config.raw
    return (raw.get("engagement"), raw.get("signals"))


# ---------------------------------------------------------------- rescore


_rescore_lock = threading.Lock()


def _board(request: Request) -> ProgressBoard:
    board: ProgressBoard = request.app.state.progress
    return board


def _running_rescore(request: Request) -> Operation | None:
    running: Operation | None = getattr(request.app.state, "settings_rescore", None)
    return running if running is not None and not running.finished else None


@router.post("/settings/rescore")
def rescore_start(request: Request, viewer: Admin, form: Posted) -> Response:
    del form
    app = app_of(request)
    _ = viewer._
    with _rescore_lock:
        running = _running_rescore(request)
        if running is not None:
            flash(request, _("A rescore is already running."), "error")
            return redirect(f"/settings/rescore/{running.id}"
                            if running.owner_id == viewer.user.id else "/settings/pipeline")

        def work(operation: Operation) -> dict[str, Any]:
            started = time.monotonic()
            with app.engine.connect() as conn:
                def late(watermark: int) -> list[int]:
                    return late_contacts(conn, watermark)
                report = rescore_all(scoring=app.bulk_scoring(),
                                     progress=OperationProgress(operation), uow_factory=app.uow,
                                     ctx=app.ctx, late_contacts=late)
            return {"contacts_changed": report.contacts_changed,
                    "caught_up": report.caught_up, "contacts": operation.total,
                    "seconds": round(time.monotonic() - started, 1),
                    "version": app.config.config_version}
        operation = _board(request).start(owner_id=viewer.user.id,
                                           label=_("Rescoring every contact"), work=work,
                                           redirect="/settings/rescore/{id}")
        request.app.state.settings_rescore = operation
    return redirect(f"/settings/rescore/{operation.id}")


@router.get("/settings/rescore/{operation_id}", response_class=HTMLResponse)
def rescore_page(operation_id: str, request: Request, viewer: Admin) -> HTMLResponse:
    operation = _board(request).get(operation_id, owner_id=viewer.user.id)
    if operation is None:
        raise NotFound("no such rescore (it may have been started by another process)",
                       field="operation")
    return _settings_page(request, viewer, "settings_rescore.html",
                          title=viewer._("Rescore every contact"), operation=operation)


# ---------------------------------------------------------------- users

USER_FIELDS = ("email", "name", "role", "team", "password", "active", "weight", "territories")


def _roles(_: Translate) -> list[tuple[str, str]]:
    return [(role, _(role.replace("_", " "))) for role in ROLES]


def _users_page(request: Request, viewer: Viewer, *, status: int = 200,
                errors: dict[str, str] | None = None,
                values: dict[str, Any] | None = None) -> HTMLResponse:
    app = app_of(request)
    return _settings_page(
        request, viewer, "settings_users.html", title=viewer._("Users"), status=status,
        people=users.list_users(uow=app.reader(), principal=viewer.principal),
        roles=_roles(viewer._), errors=errors or {},
        values=values or {"role": "marketer"})


@router.get("/settings/users", response_class=HTMLResponse)
def users_page(request: Request, viewer: Admin) -> HTMLResponse:
    return _users_page(request, viewer)


@router.post("/settings/users", response_class=HTMLResponse)
def user_create(request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    values = {name: _text(form, name) for name in ("email", "name", "role", "team")}
    password = form.get("password")
    try:
        made = users.create_user(uow=app.uow(), ctx=app.ctx, email=values["email"],
                                 name=values["name"], role=values["role"],
                                 team=values["team"] or None,
                                 password=password if isinstance(password, str) else "")
    except (InvalidInput, Conflict) as exc:
        return _users_page(request, viewer, status=422, values=values,
                           errors=_field_error(exc, USER_FIELDS, viewer._))
    flash(request, viewer._("User {email} created.", email=made.email))
    return redirect(f"/settings/users/{made.id}")


def _user(request: Request, user_id: int) -> User:
    with app_of(request).reader() as uow:
        found = uow.users.get(user_id)
    if found is None:
        raise NotFound("there is no such user", field="user")
    return found


def _user_page(request: Request, viewer: Viewer, user: User, *, status: int = 200,
               errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
               password_error: str | None = None) -> HTMLResponse:
    shown = values or {"name": user.name, "role": user.role, "team": user.team or "",
                       "active": user.active, "weight": f"{user.weight:g}",
                       "territories": ", ".join(user.territories)}
    return _settings_page(request, viewer, "settings_user.html", title=user.name,
                          status=status, person=user, roles=_roles(viewer._),
                          errors=errors or {}, values=shown, password_error=password_error)


@router.get("/settings/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: int, request: Request, viewer: Admin) -> HTMLResponse:
    return _user_page(request, viewer, _user(request, user_id))


@router.post("/settings/users/{user_id}", response_class=HTMLResponse)
def user_update(user_id: int, request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    _ = viewer._
    user = _user(request, user_id)
    values: dict[str, Any] = {name: _text(form, name)
                              for name in ("name", "role", "team", "weight", "territories")}
    values["active"] = form.get("active") == "on"
    try:
        weight = float(values["weight"].replace(",", "."))
    except ValueError:
        return _user_page(request, viewer, user, status=422, values=values, errors={
            "weight": _("a capacity weight is a number above 0 and at most 100")})
    territories = [t for t in re.split(r"[,\n]", values["territories"]) if t.strip()]
    try:
        users.update_user(uow=app.uow(), ctx=app.ctx, ref=user.id, changes={
            "name": values["name"], "role": values["role"], "team": values["team"] or None,
            "active": values["active"], "weight": weight, "territories": territories})
    except (InvalidInput, Conflict) as exc:
        return _user_page(request, viewer, user, status=422, values=values,
                          errors=_field_error(exc, USER_FIELDS, _))
    flash(request, _("Changes to {name} saved.", name=values["name"]))
    return redirect(f"/settings/users/{user.id}")


@router.post("/settings/users/{user_id}/password", response_class=HTMLResponse)
def user_password(user_id: int, request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    user = _user(request, user_id)
    password = form.get("password")
    try:
        users.set_password(uow=app.uow(), ctx=app.ctx, ref=user.id,
                           password=password if isinstance(password, str) else "")
    except InvalidInput as exc:
        return _user_page(request, viewer, user, status=422, password_error=viewer._(exc.message))
    flash(request, viewer._("New password set for {name}.", name=user.name))
    return redirect(f"/settings/users/{user.id}")


# ---------------------------------------------------------------- API keys

KEY_FIELDS = ("name", "kind", "scopes", "user")


def _keys_page(request: Request, viewer: Viewer, *, status: int = 200,
               errors: dict[str, str] | None = None,
               values: dict[str, Any] | None = None) -> HTMLResponse:
    app = app_of(request)
    people = users.list_users(uow=app.reader(), principal=viewer.principal)
    return _settings_page(
        request, viewer, "settings_keys.html", title=viewer._("API keys"), status=status,
        keys=api_keys.list_api_keys(uow=app.reader()), owners={u.id: u for u in people},
        people=[u for u in people if u.active], kinds=KINDS, scopes=SCOPES,
        errors=errors or {},
        values=values or {"kind": "secret", "scopes": ["read"], "user": viewer.user.id})


@router.get("/settings/keys", response_class=HTMLResponse)
def keys_page(request: Request, viewer: Admin) -> HTMLResponse:
    return _keys_page(request, viewer)


@router.post("/settings/keys", response_class=HTMLResponse)
def key_create(request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    kind = _text(form, "kind")
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    owner = _text(form, "user")
    values: dict[str, Any] = {"name": _text(form, "name"), "kind": kind, "scopes": scopes,
                              "user": owner}
    public = kind == "public"  # tracks only, for no user: what else was ticked does not apply
    try:
        made = api_keys.create_api_key(uow=app.uow(), ctx=app.ctx, name=values["name"],
                                       kind=kind, scopes=None if public else scopes,
                                       user=None if public or not owner else owner)
    except (InvalidInput, Conflict, NotFound) as exc:
        return _keys_page(request, viewer, status=422, values=values,
                          errors=_field_error(exc, KEY_FIELDS, viewer._))
    _keep_once(request, "key", made.key.id, made.token)
    return redirect(f"/settings/keys/{made.key.id}/created")


@router.get("/settings/keys/{key_id}/created", response_class=HTMLResponse)
def key_created(key_id: int, request: Request, viewer: Admin) -> HTMLResponse:
    app = app_of(request)
    key = next((k for k in api_keys.list_api_keys(uow=app.reader()) if k.id == key_id), None)
    if key is None:
        raise NotFound("there is no such API key", field="key_id")
    return _settings_page(request, viewer, "settings_secret.html",
                          title=viewer._("API key created"), what="key", name=key.name,
                          secret=_take_once(request, "key", key_id), back="/settings/keys")


@router.post("/settings/keys/{key_id}/revoke")
def key_revoke(key_id: int, request: Request, viewer: Admin, form: Posted) -> Response:
    del form
    app = app_of(request)
    try:
        api_keys.revoke_api_key(uow=app.uow(), ctx=app.ctx, key_id=key_id)
    except NotFound as exc:
        flash(request, viewer._(exc.message), "error")
    else:
        flash(request, viewer._("API key {id} revoked: calls with it are refused from now on.",
                                id=key_id))
    return redirect("/settings/keys")


# ---------------------------------------------------------------- webhooks

HOOK_FIELDS = ("url", "topics", "stages")


@dataclass(frozen=True)
class DeliveryFilter:
    webhook: int | None
    status: str | None


def _hooks_page(request: Request, viewer: Viewer, *, status: int = 200,
                errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                shown: DeliveryFilter | None = None) -> HTMLResponse:
    app = app_of(request)
    shown = shown or DeliveryFilter(None, None)
    hooks = webhooks.list_webhooks(uow=app.reader())
    log = webhooks.delivery_log(uow=app.reader(), webhook_id=shown.webhook,
                                status=shown.status, limit=100)
    return _settings_page(
        request, viewer, "settings_webhooks.html", title=viewer._("Webhooks"), status=status,
        hooks=hooks, urls={h.id: h.url for h in hooks}, deliveries=log, topics=TOPICS,
        stages=[(s.key, viewer._(s.name)) for s in app.config.stages],
        statuses=DELIVERY_STATUSES, shown=shown, errors=errors or {},
        values=values or {"topics": [], "stages": []})


@router.get("/settings/webhooks", response_class=HTMLResponse)
def hooks_page(request: Request, viewer: Admin,
               webhook: Annotated[str | None, Query()] = None,
               status: Annotated[str | None, Query()] = None) -> HTMLResponse:
    chosen = DeliveryFilter(webhook=int(webhook) if webhook and webhook.isdigit() else None,
                            status=status if status in DELIVERY_STATUSES else None)
    return _hooks_page(request, viewer, shown=chosen)


@router.post("/settings/webhooks", response_class=HTMLResponse)
def hook_create(request: Request, viewer: Admin, form: Posted) -> Response:
    app = app_of(request)
    topics = [t for t in form.getlist("topics") if isinstance(t, str)]
    stages = [s for s in form.getlist("stages") if isinstance(s, str)]
    values: dict[str, Any] = {"url": _text(form, "url"), "topics": topics, "stages": stages}
    try:
        hook = webhooks.subscribe(uow=app.uow(), ctx=app.ctx, url=values["url"], topics=topics,
                                  stages=stages or None)
    except InvalidInput as exc:
        return _hooks_page(request, viewer, status=422, values=values,
                           errors=_field_error(exc, HOOK_FIELDS, viewer._))
    _keep_once(request, "webhook", hook.id, hook.secret)
    return redirect(f"/settings/webhooks/{hook.id}/created")


@router.get("/settings/webhooks/{webhook_id}/created", response_class=HTMLResponse)
def hook_created(webhook_id: int, request: Request, viewer: Admin) -> HTMLResponse:
    app = app_of(request)
    hook = next((h for h in webhooks.list_webhooks(uow=app.reader()) if h.id == webhook_id),
                None)
    if hook is None:
        raise NotFound("there is no such webhook", field="webhook_id")
    return _settings_page(request, viewer, "settings_secret.html",
                          title=viewer._("Webhook created"), what="webhook", name=hook.url,
                          secret=_take_once(request, "webhook", webhook_id),
                          back="/settings/webhooks")


@router.post("/settings/webhooks/{webhook_id}/delete")
def hook_delete(webhook_id: int, request: Request, viewer: Admin, form: Posted) -> Response:
    del form
    try:
        webhooks.unsubscribe(uow=app_of(request).uow(), webhook_id=webhook_id)
    except NotFound as exc:
        flash(request, viewer._(exc.message), "error")
    else:
        flash(request, viewer._("Webhook {id} deleted; its pending deliveries are cancelled.",
                                id=webhook_id))
    return redirect("/settings/webhooks")


@router.post("/settings/webhooks/deliveries/{delivery_id}/redeliver")
def hook_redeliver(delivery_id: int, request: Request, viewer: Admin,
                   form: Posted) -> Response:
    del form
    app = app_of(request)
    try:
        webhooks.redeliver(uow=app.uow(), ctx=app.ctx, delivery_id=delivery_id)
    except NotFound as exc:
        flash(request, viewer._(exc.message), "error")
    else:
        flash(request, viewer._("Delivery {id} will be sent again.", id=delivery_id))
    return redirect("/settings/webhooks")

