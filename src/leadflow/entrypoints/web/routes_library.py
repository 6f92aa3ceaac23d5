"""Marketing pages: the content library (/content), nurture tracks and the newsletter
(/nurture), forms and their landing pages (/forms). Admins and marketers only.

Every change goes through the services the REST API uses (services/content.py, nurture.py,
forms.py); a form sent back with a bad value shows the service's message next to the field
it names (422) and writes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile

from leadflow.adapters.db import library_reads as reads
from leadflow.bootstrap import App
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.content import FORMATS, MATURITIES, ContentItem
from leadflow.domain.errors import Conflict, Forbidden, InvalidInput, LeadflowError, NotFound
from leadflow.domain.forms import FIELD_LABELS, Form
from leadflow.domain.nurture import Autoresponder, Condition, Step, Track
from leadflow.domain.nurture_config import PROFILE_FIELDS
from leadflow.entrypoints.api.routes_forms import HONEYPOT, LABELS_FR, TEXT
from leadflow.entrypoints.web.i18n import Translate
from leadflow.entrypoints.web.progress import Operation, ProgressBoard
from leadflow.entrypoints.web.render import ENV, page, redirect, safe_next
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services import content as content_service
from leadflow.services import forms as forms_service
from leadflow.services import nurture

router = web_router()

PAGE = 50
MEMBERS_PAGE = 50
TRACK_EMAILS = 20
MAX_CSV_BYTES = 5 * 1024 * 1024
FORMAT_NAMES = {"article": "article", "white_paper": "white paper", "case_study": "case study",
                "webinar": "webinar", "demo": "demo", "pricing": "pricing",
                "newsletter_issue": "newsletter issue"}
MEMBER_STATUSES = ("active", "done", "left")
ITEM_FORM_FIELDS = ("key", "title", "url", "maturity", "format", "premium", "topics",
                    "language", "summary")
FORM_FORM_FIELDS = ("key", "name", "headline", "pitch", "item_key", "fields", "max_fields",
                    "consent_label", "newsletter", "language", "active")
SEPARATORS = re.compile(r"[,;|]")


def _marketing(viewer: Viewer) -> None:
    if not viewer.works_marketing:
        raise Forbidden("Only admins and marketers use the marketing pages.",
                        field="authorization")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _ticked(form: FormData, name: str) -> bool:
    return _text(form, name).strip().lower() not in ("", "0", "false", "off", "no")


def _words(text: str) -> list[str]:
    return [w.strip() for w in SEPARATORS.split(text) if w.strip()]


def _errors(viewer: Viewer, exc: LeadflowError, shown: Sequence[str]) -> dict[str, str]:
    """The service's message next to the field it names (else above the form)."""
    where = exc.field if exc.field is not None and exc.field in shown else "form"
    return {where: viewer._(exc.message)}


def _skipped(counts: dict[Any, dict[str, int | None]]) -> bool:
    """Whether a count was left out for taking too long."""
    return any(v is None for c in counts.values() for v in c.values())


def _params(base: dict[str, Any]) -> Callable[..., str]:
    def params(**changes: Any) -> str:
        merged = {**base, **changes}
        return urlencode({k: v for k, v in merged.items() if v not in (None, "", False, 0)})
    return params


# -- the content library ---------------------------------------------------------------------

def _maturity_options(_: Translate) -> list[tuple[str, str]]:
    return [(m, _(m)) for m in MATURITIES]


def _format_options(_: Translate) -> list[tuple[str, str]]:
    return [(f, _(FORMAT_NAMES[f])) for f in FORMATS]


def _matches(item: ContentItem, words: list[str]) -> bool:
    haystack = " ".join((item.key, item.title, item.url, item.summary, *item.topics)).lower()
    return all(w in haystack for w in words)


@router.get("/content", response_class=HTMLResponse)
def content_list(request: Request, viewer: WebUser, q: str = "", maturity: str = "",
                 format: str = "", language: str = "", topic: str = "",
                 archived: bool = False, offset: Annotated[int, Query(ge=0)] = 0
                 ) -> HTMLResponse:
    _marketing(viewer)
    app = app_of(request)
    everything = content_service.list_items(uow=app.reader(), include_archived=True,
                                            limit=10**9).items
    found = content_service.list_items(
        uow=app.reader(), maturity=maturity or None, format=format or None,
        language=language or None, topic=topic or None, include_archived=archived,
        limit=10**9).items
    words = q.lower().split()
    items = [i for i in found if _matches(i, words)]
    shown = items[offset:offset + PAGE]
    with app.engine.connect() as conn:
        usage = reads.item_usage(conn, items=[(i.id, i.path) for i in shown if i.id])
    filters = {"q": q, "maturity": maturity, "format": format, "language": language,
               "topic": topic, "archived": "1" if archived else ""}
    return page(
        request, viewer, "content.html", title=viewer._("Content"), items=shown,
        total=len(items), offset=offset, limit=PAGE, usage=usage, filters=filters,
        filtered=any(filters.values()), library_size=len(everything),
        params=_params(filters), maturities=_maturity_options(viewer._),
        skipped=_skipped(usage),
        formats=_format_options(viewer._), format_names=FORMAT_NAMES,
        languages_found=sorted({i.language for i in everything}),
        topics_found=sorted({t for i in everything for t in i.topics}))


def _item_values(item: ContentItem | None = None) -> dict[str, Any]:
    if item is None:
        return {"key": "", "title": "", "url": "", "maturity": "discovery",
                "format": "article", "premium": False, "topics": "", "language": "en",
                "summary": ""}
    return {"key": item.key, "title": item.title, "url": item.url, "maturity": item.maturity,
            "format": item.format, "premium": item.premium, "topics": ", ".join(item.topics),
            "language": item.language, "summary": item.summary}


def _posted_item(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: _text(form, name) for name in ITEM_FORM_FIELDS}
    values["premium"] = _ticked(form, "premium")
    return values


def _item_page(request: Request, viewer: Viewer, *, values: dict[str, Any],
               errors: dict[str, str], item: ContentItem | None = None,
               status: int = 200) -> HTMLResponse:
    app = app_of(request)
    usage: dict[str, int | None] = {}
    gating: list[Form] = []
    used_by: list[str] = []
    if item is not None and item.id is not None:
        with app.engine.connect() as conn:
            usage = reads.item_usage(conn, items=[(item.id, item.path)])[item.id]
        gating = [f for f in forms_service.list_forms(uow=app.reader())
                  if f.item_key == item.key]
        with app.reader() as uow:
            tracks = nurture.all_tracks(uow, app.ctx)
        used_by = [t.name for t in tracks if any(s.item == item.key for s in t.steps)]
        used_by += [a.key for a in app.config.nurture.autoresponders if a.item == item.key]
    _ = viewer._
    title = _("Edit “{title}”", title=item.title) if item else _("Add a content item")
    return page(request, viewer, "content_item.html", status=status, title=title, item=item,
                values=values, errors=errors, usage=usage, gating=gating, used_by=used_by,
                skipped=_skipped({0: usage}),
                maturities=_maturity_options(_), formats=_format_options(_))


@router.get("/content/new", response_class=HTMLResponse)
def content_new(request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    return _item_page(request, viewer, values=_item_values(), errors={})


@router.post("/content/new", response_model=None)
def content_create(request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    values = _posted_item(form)
    try:
        item = content_service.create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
            key=values["key"], title=values["title"], url=values["url"],
            maturity=values["maturity"], format=values["format"], premium=values["premium"],
            topics=tuple(_words(values["topics"])), language=values["language"],
            summary=values["summary"]))
    except (InvalidInput, Conflict) as exc:
        return _item_page(request, viewer, values=values, status=422,
                          errors=_errors(viewer, exc, ITEM_FORM_FIELDS))
    flash(request, viewer._("“{title}” is in the library.", title=item.title))
    return redirect("/content")


@router.get("/content/import", response_class=HTMLResponse)
def content_import_form(request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    return page(request, viewer, "content_import.html", title=viewer._("Import content"),
                errors={}, report=None, columns=_csv_columns())


def _csv_columns() -> dict[str, tuple[str, ...]]:
    return {"required": content_service.CSV_REQUIRED, "optional": content_service.CSV_OPTIONAL}


@router.post("/content/import", response_class=HTMLResponse)
async def content_import(request: Request, viewer: WebUser, form: Posted) -> HTMLResponse:
    """Create or update one item per row; bad rows are listed by line and field while the
    good rows import. A file that is not CSV or whose header is wrong writes nothing."""
    _marketing(viewer)
    app = app_of(request)
    _ = viewer._

    def refused(message: str) -> HTMLResponse:
        return page(request, viewer, "content_import.html", status=422,
                    title=_("Import content"), errors={"file": message}, report=None,
                    columns=_csv_columns())
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        await form.close()
        return refused(_("Choose a CSV file to import."))
    try:
        raw = await upload.read(MAX_CSV_BYTES + 1)
    finally:
        await form.close()  # the upload's temporary file
    if len(raw) > MAX_CSV_BYTES:
        return refused(_("The file is larger than {n} MB.", n=MAX_CSV_BYTES // (1024 * 1024)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return refused(_("The file is not UTF-8 text (byte {n}): save it as CSV UTF-8.",
                         n=exc.start))
    try:
        report = await run_in_threadpool(
            lambda: content_service.import_items(uow=app.uow(), ctx=app.ctx, text=text))
    except InvalidInput as exc:
        where = _("line {n}: ", n=exc.line) if exc.line is not None else ""
        return refused(where + _(exc.message))
    return page(request, viewer, "content_import.html", title=_("Import content"),
                errors={}, report=report, filename=upload.filename, columns=_csv_columns())


@router.get("/content/{key}/edit", response_class=HTMLResponse)
def content_edit(key: str, request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    item = content_service.get_item(uow=app_of(request).reader(), key=key)
    return _item_page(request, viewer, values=_item_values(item), errors={}, item=item)


@router.post("/content/{key}/edit", response_model=None)
def content_update(key: str, request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    item = content_service.get_item(uow=app.reader(), key=key)
    values = {**_posted_item(form), "key": item.key}
    changes = {name: values[name] for name in ITEM_FORM_FIELDS if name != "key"}
    changes["topics"] = _words(values["topics"])
    try:
        updated = content_service.update_item(uow=app.uow(), ctx=app.ctx, key=item.key,
                                              changes=changes)
    except InvalidInput as exc:
        return _item_page(request, viewer, values=values, item=item, status=422,
                          errors=_errors(viewer, exc, ITEM_FORM_FIELDS))
    flash(request, viewer._("“{title}” is saved.", title=updated.title))
    return redirect("/content")


@router.post("/content/{key}/archive")
def content_archive(key: str, request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    item = content_service.archive_item(uow=app.uow(), ctx=app.ctx, key=key)
    flash(request, viewer._("“{title}” is archived: out of lists and recommendations; emails "
                            "and forms that use it keep it.", title=item.title))
    return redirect(safe_next(_text(form, "next") or "/content"))


@router.post("/content/{key}/restore")
def content_restore(key: str, request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    item = content_service.update_item(uow=app.uow(), ctx=app.ctx, key=key,
                                       changes={"archived": False})
    flash(request, viewer._("“{title}” is back in the library.", title=item.title))
    return redirect(safe_next(_text(form, "next") or "/content"))


# -- nurture ---------------------------------------------------------------------------------

def _duration(seconds: float, _: Translate) -> str:
    for size, one, many in ((7 * 86400, "1 week", "{n} weeks"), (86400, "1 day", "{n} days"),
                            (3600, "1 hour", "{n} hours"), (60, "1 minute", "{n} minutes")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return _(one) if n == 1 else _(many, n=n)
    if seconds >= 86400:
        return _("{n} days", n=f"{seconds / 86400:g}")
    return _("{n} hours", n=f"{seconds / 3600:g}")


def _either(words: Sequence[str], _: Translate) -> str:
    if len(words) <= 1:
        return "".join(words)
    return _("{a} or {b}", a=", ".join(words[:-1]), b=words[-1])


class Describer:
    """Tracks and their steps in words, in the viewer's language."""

    def __init__(self, _: Translate, config: LifecycleConfig,
                 library: dict[str, ContentItem]) -> None:
        self._ = _
        self.config = config
        self.library = library
        self.milestones = {m.key: _(m.name) for m in config.milestones}

    def duration(self, seconds: float) -> str:
        return _duration(seconds, self._)

    def item(self, key: str) -> str:
        _ = self._
        found = self.library.get(key)
        if found is None:
            return _("item {key} (not in the library: nothing is sent)", key=key)
        if found.archived:
            return _("“{title}” (archived: nothing is sent)", title=found.title)
        return _("“{title}”", title=found.title)

    def content(self, item: str | None, maturities: Sequence[str]) -> str:
        _ = self._
        if item is not None:
            return self.item(item)
        return _("the next best {maturities} content they have not seen",
                 maturities=_either([_(m) for m in maturities], _))

    def condition(self, c: Condition) -> str:
        _ = self._
        parts = []
        if c.engagement_at_least is not None:
            parts.append(_("engagement is at least {n}", n=f"{c.engagement_at_least:g}"))
        if c.engagement_below is not None:
            parts.append(_("engagement is below {n}", n=f"{c.engagement_below:g}"))
        if c.milestone is not None:
            parts.append(_("they reached {m}", m=self.milestones.get(c.milestone, c.milestone)))
        if c.no_milestone is not None:
            parts.append(_("they have not reached {m}",
                           m=self.milestones.get(c.no_milestone, c.no_milestone)))
        if c.consumed is not None:
            parts.append(_("they consumed {m} content", m=_(c.consumed)))
        if c.not_consumed is not None:
            parts.append(_("they consumed no {m} content", m=_(c.not_consumed)))
        if c.temperature is not None:
            parts.append(_("they are {t}", t=_either([_(x) for x in c.temperature], _)))
        return _(" and ").join(parts)

    def step(self, step: Step, audience: str) -> str:
        _ = self._
        if step.kind == "send":
            what = self.content(step.item, step.maturities)
            return (_("Email {what}, from the owner", what=what) if audience == "sales"
                    else _("Email {what}", what=what))
        if step.kind == "wait":
            return _("Wait {d}", d=_duration(step.seconds, _))
        if step.kind == "if":
            assert step.condition is not None
            test = self.condition(step.condition)
            return (_("Go on only if {test}; otherwise stop", test=test)
                    if step.otherwise == "stop"
                    else _("Run the next step only if {test}", test=test))
        return _("Task for the owner: {kind} “{title}”, due in {d}",
                 kind=_(step.task_kind.replace("_", " ")), title=step.title,
                 d=_duration(step.due_seconds, _))

    def stage_roles(self, roles: Sequence[str]) -> list[str]:
        _ = self._
        out = []
        for role in roles:
            names = [_(s.name) for s in self.config.stages if s.role == role]
            out.append(f"{', '.join(names) or '–'} ({_(role)})")
        return out

    def responder(self, a: Autoresponder) -> str:
        _ = self._
        if a.trigger == "milestone":
            when = _("When a contact reaches {m}",
                     m=self.milestones.get(a.match or "", a.match or ""))
        elif a.match is None:
            when = _("When any form is submitted")
        else:
            when = _("When the form {key} is submitted", key=a.match)
        return _("{when}: email {what}", when=when, what=self.content(a.item, a.maturities))


def _library(app: App) -> dict[str, ContentItem]:
    return {i.key: i for i in content_service.list_items(
        uow=app.reader(), include_archived=True, limit=10**9).items}


def _tracks(app: App) -> list[Track]:
    with app.reader() as uow:
        return nurture.all_tracks(uow, app.ctx)


def _nurture_page(request: Request, viewer: Viewer, *, errors: dict[str, str] | None = None,
                  status: int = 200, chosen: str = "") -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    tracks = _tracks(app)
    library = _library(app)
    with app.reader() as uow:
        members = uow.enrollments.counts()
    with app.engine.connect() as conn:
        mail = reads.track_mail(conn, track_keys=[t.key for t in tracks])
    describe = Describer(_, app.config, library)
    config = app.config.nurture
    issues = [i for i in library.values() if i.format == "newsletter_issue" and not i.archived]
    return page(
        request, viewer, "nurture.html", status=status, title=_("Nurture"), tracks=tracks,
        members=members, mail=mail, skipped=_skipped(mail), describe=describe, cap=config.cap,
        consent=config.consent,
        responders=config.autoresponders, issues=sorted(issues, key=lambda i: i.key),
        errors=errors or {}, chosen=chosen)


@router.get("/nurture", response_class=HTMLResponse)
def nurture_tracks(request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    return _nurture_page(request, viewer)


@router.get("/nurture/tracks/{key}", response_class=HTMLResponse)
def nurture_track(key: str, request: Request, viewer: WebUser, status: str = "",
                  offset: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    _marketing(viewer)
    app = app_of(request)
    track = next((t for t in _tracks(app) if t.key == key), None)
    if track is None:
        raise NotFound("There is no such track.", field="key")
    if status not in ("", *MEMBER_STATUSES):
        raise InvalidInput("status is active, done or left", field="status")
    with app.reader() as uow:
        counts = uow.enrollments.counts().get(key, {})
    with app.engine.connect() as conn:
        rows, total = reads.track_members(conn, track_key=key, status=status or None,
                                          limit=MEMBERS_PAGE, offset=offset)
        emails = reads.track_emails(conn, track_key=key, limit=TRACK_EMAILS)
        mail = reads.track_mail(conn, track_keys=[key]).get(key, {})
    describe = Describer(viewer._, app.config, _library(app))
    return page(request, viewer, "nurture_track.html", title=track.name, track=track,
                counts=counts, members=rows, total=total, offset=offset, limit=MEMBERS_PAGE,
                member_filter=status, statuses=MEMBER_STATUSES, emails=emails, mail=mail,
                skipped=emails is None or _skipped({0: mail}),
                describe=describe, params=_params({"status": status}))


def _board(request: Request) -> ProgressBoard:
    found: ProgressBoard = request.app.state.progress
    return found


@router.post("/nurture/run")
def nurture_run(request: Request, viewer: WebUser, form: Posted) -> Response:
    """A nurture pass now, as POST /api/v1/nurture/run: sync members, answer milestones,
    run due steps (sending stays the worker's). It runs beside the page, which follows it."""
    _marketing(viewer)
    app = app_of(request)

    def work(operation: Operation) -> dict[str, Any]:
        return asdict(nurture.tick(uow=app.uow, ctx=app.ctx))
    operation = _board(request).start(owner_id=viewer.user.id, label=viewer._("Nurture pass"),
                                      work=work, redirect="/nurture/runs/{id}")
    return redirect(f"/nurture/runs/{operation.id}")


@router.get("/nurture/runs/{operation_id}", response_class=HTMLResponse)
def nurture_run_result(operation_id: str, request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    operation = _board(request).get(operation_id, owner_id=viewer.user.id)
    if operation is None:
        raise NotFound("There is no such nurture pass (it may have run in another process).",
                       field="operation")
    return page(request, viewer, "nurture_run.html", title=viewer._("Nurture pass"),
                operation=operation, tracks={t.key: t.name for t in _tracks(app_of(request))})


def _newsletter_item(app: App, key: str) -> ContentItem:
    """The issue to send, checked as the service will (a clear message before confirming)."""
    if not key:
        raise InvalidInput("Pick a newsletter issue.", field="item")
    library = _library(app)
    item = library.get(key)
    if item is None:
        raise NotFound("There is no such item in the library.", field="item")
    if item.format != "newsletter_issue":
        raise InvalidInput("This item is not a newsletter issue.", field="item")
    if item.archived:
        raise InvalidInput("This issue is archived.", field="item")
    return item


@router.get("/nurture/newsletter", response_class=HTMLResponse)
def newsletter_confirm(request: Request, viewer: WebUser, item: str = "") -> HTMLResponse:
    """Asks before an issue goes to every subscriber."""
    _marketing(viewer)
    app = app_of(request)
    try:
        issue = _newsletter_item(app, item)
    except (InvalidInput, NotFound) as exc:
        return _nurture_page(request, viewer, status=422, chosen=item,
                             errors=_errors(viewer, exc, ("item",)))
    return page(request, viewer, "nurture_newsletter.html", title=viewer._("Send a newsletter"),
                item=issue, cap=app.config.nurture.cap,
                expires=_duration(app.config.nurture.newsletter_expires_seconds, viewer._))


@router.post("/nurture/newsletter", response_model=None)
def newsletter_send(request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    key = _text(form, "item")
    try:
        issue = _newsletter_item(app, key)
        queued = nurture.send_newsletter(uow=app.uow(), ctx=app.ctx, item_key=issue.key)
    except (InvalidInput, NotFound) as exc:
        return _nurture_page(request, viewer, status=422, chosen=key,
                             errors=_errors(viewer, exc, ("item",)))
    flash(request, viewer._("“{title}” is queued for {n} subscribers; the worker sends it within "
                            "each contact's frequency cap.", title=issue.title, n=queued))
    return redirect("/nurture")


# -- forms -----------------------------------------------------------------------------------

def _public_url(app: App, form_key: str) -> str:
    return f"{app.settings.public_url.rstrip('/')}/p/{quote(form_key)}"


@router.get("/forms", response_class=HTMLResponse)
def forms_list(request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    app = app_of(request)
    found = forms_service.list_forms(uow=app.reader())
    library = _library(app)
    with app.engine.connect() as conn:
        submissions = reads.form_submissions(conn, form_keys=[f.key for f in found])
    asks = {f.key: forms_service.effective_fields(app.ctx, f) for f in found}
    return page(request, viewer, "forms.html", title=viewer._("Forms"),
                forms=sorted(found, key=lambda f: f.key), library=library,
                submissions=submissions, asks=asks, field_names=FIELD_LABELS,
                skipped=any(n is None for n in submissions.values()),
                urls={f.key: _public_url(app, f.key) for f in found})


def _form_values(form: Form | None = None) -> dict[str, Any]:
    if form is None:
        return {"key": "", "name": "", "headline": "", "pitch": "", "item_key": "",
                "fields": "", "max_fields": "0",
                "consent_label": forms_service.FormIn.consent_label, "newsletter": False,
                "language": "en", "active": True}
    return {"key": form.key, "name": form.name, "headline": form.headline,
            "pitch": form.pitch, "item_key": form.item_key or "",
            "fields": ", ".join(form.fields), "max_fields": str(form.max_fields),
            "consent_label": form.consent_label, "newsletter": form.newsletter,
            "language": form.language, "active": form.active}


def _posted_form(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: _text(form, name) for name in FORM_FORM_FIELDS}
    values["newsletter"] = _ticked(form, "newsletter")
    values["active"] = _ticked(form, "active")
    return values


def _form_data(values: dict[str, Any]) -> dict[str, Any]:
    """The posted values as the service takes them."""
    raw = values["max_fields"].strip() or "0"
    if not re.fullmatch(r"\d{1,3}", raw):
        raise InvalidInput("expected a whole number from 0 (the configuration's default) to 20",
                           field="max_fields")
    return {"name": values["name"], "headline": values["headline"], "pitch": values["pitch"],
            "item_key": values["item_key"].strip() or None,
            "fields": [w.lower() for w in _words(values["fields"])],
            "max_fields": int(raw), "consent_label": values["consent_label"],
            "newsletter": values["newsletter"], "language": values["language"],
            "active": values["active"]}


def _js(value: str) -> Markup:
    """A string as a JavaScript literal that cannot end the script element."""
    return Markup(json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e"))


def _embed_snippet(app: App, form: Form) -> str:
    """HTML and a little script that post the form from another site to /v1/forms/<key>."""
    asks, _ = forms_service.effective_fields(app.ctx, form)
    text = TEXT.get(form.language, TEXT["en"])
    specs = [forms_service.field_spec(app.ctx, name) for name in asks]
    labels = {s.name: (LABELS_FR.get(s.name, s.label) if form.language == "fr" else s.label)
              for s in specs}
    base = app.settings.public_url.rstrip("/")
    return ENV.get_template("forms_embed.html").render(
        form=form, specs=specs, labels=labels, text=text, honeypot=HONEYPOT,
        action=f"{base}/v1/forms/{quote(form.key)}",
        action_js=_js(f"{base}/v1/forms/{quote(form.key)}"), form_id=f"leadflow-{form.key}",
        form_id_js=_js(f"leadflow-{form.key}"),
        gated=form.item_key is not None).strip()


def _form_page(request: Request, viewer: Viewer, *, values: dict[str, Any],
               errors: dict[str, str], form: Form | None = None,
               status: int = 200) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    library = _library(app)
    items = sorted((i for i in library.values()
                    if not i.archived or i.key == values.get("item_key")),
                   key=lambda i: i.title.lower())
    extra: dict[str, Any] = {"url": None, "snippet": None, "submissions": None, "asks": None,
                             "skipped": False}
    if form is not None:
        with app.engine.connect() as conn:
            extra["submissions"] = reads.form_submissions(conn, form_keys=[form.key])[form.key]
        extra["skipped"] = extra["submissions"] is None
        extra.update(url=_public_url(app, form.key), snippet=_embed_snippet(app, form),
                     asks=forms_service.effective_fields(app.ctx, form))
    title = _("Edit the form “{name}”", name=form.name) if form else _("Add a form")
    nurture_cfg = app.config.nurture
    return page(request, viewer, "forms_edit.html", status=status, title=title, form=form,
                values=values, errors=errors, items=items, profile_fields=PROFILE_FIELDS,
                field_names=FIELD_LABELS, default_fields=nurture_cfg.profile_fields,
                default_max=nurture_cfg.profile_max_fields, **extra)


@router.get("/forms/new", response_class=HTMLResponse)
def forms_new(request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    return _form_page(request, viewer, values=_form_values(), errors={})


@router.post("/forms/new", response_model=None)
def forms_create(request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    values = _posted_form(form)
    try:
        made = forms_service.create_form(uow=app.uow(), ctx=app.ctx, data=forms_service.FormIn(
            key=values["key"], **_form_data(values)))
    except (InvalidInput, Conflict, NotFound) as exc:
        return _form_page(request, viewer, values=values, status=422,
                          errors=_errors(viewer, exc, FORM_FORM_FIELDS))
    flash(request, viewer._("The form “{name}” is ready: its page is /p/{key}.",
                            name=made.name, key=made.key))
    return redirect(f"/forms/{quote(made.key)}/edit")


@router.get("/forms/{key}/edit", response_class=HTMLResponse)
def forms_edit(key: str, request: Request, viewer: WebUser) -> HTMLResponse:
    _marketing(viewer)
    found = forms_service.get_form(uow=app_of(request).reader(), key=key)
    return _form_page(request, viewer, values=_form_values(found), errors={}, form=found)


@router.post("/forms/{key}/edit", response_model=None)
def forms_update(key: str, request: Request, viewer: WebUser, form: Posted) -> Response:
    _marketing(viewer)
    app = app_of(request)
    current = forms_service.get_form(uow=app.reader(), key=key)
    values = {**_posted_form(form), "key": current.key}
    try:
        saved = forms_service.update_form(uow=app.uow(), ctx=app.ctx, key=current.key,
                                          changes=_form_data(values))
    except (InvalidInput, NotFound) as exc:
        if isinstance(exc, NotFound) and exc.field != "item_key":
            raise
        return _form_page(request, viewer, values=values, form=current, status=422,
                          errors=_errors(viewer, exc, FORM_FORM_FIELDS))
    flash(request, viewer._("The form “{name}” is saved.", name=saved.name))
    return redirect("/forms")
