"""The contact list: filters kept in the URL, sorting by column, pages; saved segments; the
CSV export of what the list shows; importing a CSV file of contacts with its progress.

Whoever looks sees only the contacts their role lets them see (a rep: their own), in the
list, in every segment they open and in every export.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile

from leadflow.adapters.csv_mapping import load_mapping, shipped_mappings
from leadflow.adapters.csv_source import CsvSource, open_csv
from leadflow.adapters.db.read_models import SORTS, ContactFilters, iter_contacts, list_contacts
from leadflow.domain.config import GRADES
from leadflow.domain.errors import Conflict, InvalidInput, LeadflowError, NotFound
from leadflow.domain.ports import SavedSegment
from leadflow.domain.users import SALES_ROLES, User
from leadflow.entrypoints.web.progress import Operation, OperationProgress, ProgressBoard
from leadflow.entrypoints.web.render import HEADERS, page, redirect
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services.import_mapping import ImportMapping
from leadflow.services.importing import ImportReport, import_contacts, import_stage
from leadflow.services.segments import (
    FILTER_KEYS,
    NAME_MAX,
    TEMPERATURES,
    CheckedFilters,
    check_filters,
    delete_segment,
    list_segments,
    open_segment,
    save_segment,
)
from leadflow.services.temperatures import refresh_expired_temperatures
from leadflow.services.users import list_users

router = web_router()
PAGE = 50
COUNT_LIMIT = 10_000  # the list counts this far; past it, it says "more than 10,000"
MAX_OFFSET = COUNT_LIMIT - PAGE  # deeper pages: narrow the filters instead
UPLOAD_MAX = 50 * 1024 * 1024
BAD_ROWS_SHOWN = 500
GRADE_CHOICES = ("A", "B+", "C+", *GRADES[1:])
# Column headers that sort: (sort key, first sort key again reverses where SORTS allows).
TOGGLE = {"score": "-score", "-score": "score"}


# ---------------------------------------------------------------- filters


def _query_values(request: Request) -> dict[str, str]:
    """The filter parameters of the URL; a repeated one (stage=a&stage=b) is joined."""
    params = request.query_params
    return {k: ",".join(v for v in params.getlist(k) if v.strip()) for k in FILTER_KEYS
            if k in params}


def _owner_choices(app: Any, viewer: Viewer) -> list[User]:
    users = list_users(uow=app.reader(), principal=viewer.principal)
    return sorted((u for u in users if u.role in SALES_ROLES or u.id == viewer.user.id),
                  key=lambda u: (not u.active, u.name.lower()))


def _checked(app: Any, viewer: Viewer, values: dict[str, str]) -> tuple[CheckedFilters,
                                                                         list[User]]:
    owners = _owner_choices(app, viewer)
    checked = check_filters(config=app.config, values=values, sorts=SORTS,
                            owner_ids={u.id for u in owners})
    return checked, owners


def _filters(checked: CheckedFilters, viewer: Viewer) -> ContactFilters:
    def listed(value: tuple[str, ...] | None) -> list[str] | None:
        return list(value) if value else None
    return ContactFilters(stage=listed(checked.stage), temperature=listed(checked.temperature),
                          grade=listed(checked.grade), min_score=checked.min_score,
                          max_score=checked.max_score, milestone=checked.milestone,
                          source=checked.source, owner_id=checked.owner_id,
                          starts_with=checked.search,
                          visible_owners=viewer.principal.visible_owners)


def _errors(checked: CheckedFilters, viewer: Viewer) -> dict[str, str]:
    _ = viewer._
    return {key: _(p.text, **p.values) for key, p in checked.problems.items()}


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0").strip()
    offset = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    return min(offset - offset % PAGE, MAX_OFFSET)


# ---------------------------------------------------------------- the list


def _segments(app: Any, viewer: Viewer) -> list[SavedSegment]:
    return list_segments(uow=app.reader(), principal=viewer.principal)


def _list_page(request: Request, viewer: Viewer, *, values: dict[str, str],
               segment_name: str = "", shared: bool = False,
               segment_errors: dict[str, str] | None = None, status: int = 200
               ) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    checked, owners = _checked(app, viewer, values)
    errors = _errors(checked, viewer)
    offset = _offset(request)
    sort = checked.sort if checked.sort and "sort" not in errors else "score"
    rows: list[dict[str, Any]] = []
    total = 0
    if not errors:
        refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
        with app.engine.connect() as conn:
            rows, total = list_contacts(conn, app.config, _filters(checked, viewer),
                                        now=app.clock.now(), sort=sort, limit=PAGE,
                                        offset=offset, count_limit=COUNT_LIMIT)
    current = checked.text if not errors else values
    names = {u.id: u.name for u in owners}
    segments = _segments(app, viewer)
    return page(
        request, viewer, "contacts.html", status=422 if errors else status,
        title=_("Contacts"), rows=rows, total=total, capped=total > COUNT_LIMIT,
        shown_total=min(total, COUNT_LIMIT), count_limit=COUNT_LIMIT, offset=offset,
        limit=PAGE, sort=sort, values=current, errors=errors,
        params=_params_maker(current, sort), sort_link=_sort_link_maker(current, sort),
        query=urlencode(current), owners=owners, owner_names=names,
        stages=[(s.key, _(s.name)) for s in app.config.stages],
        milestones=[(m.key, _(m.name)) for m in app.config.milestones],
        temperatures=[(k, _(k)) for k in TEMPERATURES],
        grade_pairs=[(g, _("{grade} or better", grade=g[0]) if g.endswith("+") else g)
                     for g in GRADE_CHOICES],
        owner_pairs=[(u.id, u.name if u.active else _("{name} (inactive)", name=u.name))
                     for u in owners],
        segments=segments, open_segment=next(
            (s for s in segments if s.filters == checked.text and checked.text), None),
        segment_name=segment_name, shared=shared, segment_errors=segment_errors or {},
        can_import=viewer.works_marketing, mine=viewer.principal.visible_owners is not None)


def _params_maker(values: dict[str, str], sort: str) -> Any:
    def params(**changes: Any) -> str:
        merged: dict[str, Any] = {**values, "sort": sort, **changes}
        if merged.get("sort") == "score":
            merged.pop("sort")
        return urlencode({k: v for k, v in merged.items() if v not in (None, "", 0)})
    return params


def _sort_link_maker(values: dict[str, str], sort: str) -> Any:
    def sort_link(key: str) -> str:
        target = TOGGLE[key] if key in TOGGLE and sort == key else key
        merged = {k: v for k, v in values.items() if k != "sort"}
        if target != "score":
            merged["sort"] = target
        return "?" + urlencode(merged) if merged else "?"
    return sort_link


@router.get("/contacts", response_class=HTMLResponse)
def contacts(request: Request, viewer: WebUser) -> HTMLResponse:
    return _list_page(request, viewer, values=_query_values(request))


# ---------------------------------------------------------------- segments


@router.post("/contacts/segments", response_class=HTMLResponse)
def segment_save(request: Request, viewer: WebUser, form: Posted) -> Response:
    app = app_of(request)
    _ = viewer._
    values = {k: str(form.get(k) or "") for k in FILTER_KEYS if form.get(k)}
    name = str(form.get("name") or "")
    shared = form.get("shared") == "on"
    checked, _owners = _checked(app, viewer, values)
    if not checked.ok:  # the list shows what is wrong with the filters
        return _list_page(request, viewer, values=values, segment_name=name, shared=shared)
    clean = " ".join(name.split())
    problem = (_("Give the segment a name.") if not clean else
               _("Enter at most {n} characters.", n=NAME_MAX) if len(clean) > NAME_MAX else None)
    if problem is None:
        try:
            segment = save_segment(uow=app.uow(), ctx=app.ctx, principal=viewer.principal,
                                   name=clean, filters=checked.text, shared=shared,
                                   sorts=SORTS)
        except Conflict:
            problem = _("You have a segment of that name already.")
    if problem is not None:
        return _list_page(request, viewer, values=checked.text, segment_name=name,
                          shared=shared, segment_errors={"name": problem}, status=422)
    flash(request, _("Segment “{name}” saved.", name=segment.name))
    return redirect(_segment_url(segment))


def _segment_url(segment: SavedSegment) -> str:
    query = urlencode(segment.filters)
    return "/contacts" + (f"?{query}" if query else "")


def _segment_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound("no such segment", field="segment")
    return int(raw)


@router.get("/contacts/segments/{segment_id}")
def segment_open(segment_id: str, request: Request, viewer: WebUser) -> Response:
    segment = open_segment(uow=app_of(request).reader(), principal=viewer.principal,
                           segment_id=_segment_id(segment_id))
    return redirect(_segment_url(segment))


@router.post("/contacts/segments/{segment_id}/delete")
def segment_delete(segment_id: str, request: Request, viewer: WebUser,
                   form: Posted) -> Response:
    del form
    segment = delete_segment(uow=app_of(request).uow(), principal=viewer.principal,
                             segment_id=_segment_id(segment_id))
    flash(request, viewer._("Segment “{name}” deleted.", name=segment.name))
    return redirect("/contacts")


# ---------------------------------------------------------------- export

EXPORT_COLUMNS = ("id", "email", "name", "stage", "temperature", "grade", "fit", "engagement",
                  "owner", "source", "created", "last_activity")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ (or a tab
    or carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@router.get("/contacts/export.csv")
def export_csv(request: Request, viewer: WebUser) -> Response:
    app = app_of(request)
    checked, _owners = _checked(app, viewer, _query_values(request))
    if not checked.ok:  # the list page says what is wrong, next to each filter
        return _list_page(request, viewer, values=_query_values(request))
    filters = _filters(checked, viewer)
    sort = checked.sort or "score"
    owner_names = {u.id: u.email for u in list_users(uow=app.reader(),
                                                      principal=viewer.principal)}
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    now = app.clock.now()

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text
        writer.writerow(EXPORT_COLUMNS)
        n = 0
        with app.engine.connect() as conn:
            for r in iter_contacts(conn, app.config, filters, now=now, sort=sort):
                writer.writerow([neutralise(x) for x in (
                    r["id"], r["email"], r["name"], r["stage"], r["temperature"],
                    r["fit_grade"], round(r["fit_score"], 1), r["engagement"],
                    owner_names.get(r["owner_id"], r["owner_id"]), r["source"],
                    _iso(r["created_at"]), _iso(r["last_event_at"]))])
                n += 1
                if n % 500 == 0:
                    yield flush()
        yield flush()

    stamp = _iso(now)[:10]
    headers = {**HEADERS, "Content-Disposition":
               f'attachment; filename="contacts-{stamp}.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


# ---------------------------------------------------------------- import


def _may_import(viewer: Viewer) -> None:
    viewer.principal.need_role("admin", "marketer", what="import contacts")


def _mappings() -> list[tuple[str, str, bool, str]]:
    """(key, name, whether it joins a second file, that file's usual name) of each shipped
    mapping."""
    out = []
    for key in shipped_mappings():
        mapping = load_mapping(key)
        join = mapping.join
        out.append((key, mapping.name, join is not None, join.file if join else ""))
    return out


def _import_form(request: Request, viewer: Viewer, *, mapping: str = "",
                 errors: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    mappings = _mappings()
    return page(request, viewer, "import.html", status=status,
                title=viewer._("Import contacts"), mappings=mappings,
                mappings_options=[(m[0], m[0]) for m in mappings], mapping=mapping,
                errors=errors or {})


@router.get("/contacts/import", response_class=HTMLResponse)
def import_form(request: Request, viewer: WebUser) -> HTMLResponse:
    _may_import(viewer)
    return _import_form(request, viewer)


def _keep_upload(upload: Any, folder: Path, name: str) -> Path | None:
    """Copy an uploaded file to ``folder``; None when none was sent. Too large: InvalidInput."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    target = folder / name
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            size += len(chunk)
            if size > UPLOAD_MAX:
                raise InvalidInput("too large", field=name)
            out.write(chunk)
    return target


@router.post("/contacts/import", response_class=HTMLResponse)
def import_start(request: Request, viewer: WebUser, form: Posted) -> Response:
    try:
        return _import_start(request, viewer, form)
    finally:  # the uploads were copied (or refused): their spooled files can go
        for value in form.values():
            if isinstance(value, UploadFile):
                value.file.close()


def _import_start(request: Request, viewer: Viewer, form: FormData) -> Response:
    _may_import(viewer)
    app = app_of(request)
    _ = viewer._
    choice = str(form.get("mapping") or "")
    if choice not in shipped_mappings():
        return _import_form(request, viewer, mapping=choice, status=422,
                            errors={"mapping": _("Choose a mapping from the list.")})
    mapping = load_mapping(choice)
    import_stage(mapping=mapping, config=app.config)
    folder = Path(tempfile.mkdtemp(prefix="leadflow-import-"))
    try:
        source = _open_upload(viewer, form, folder, mapping)
    except _UploadRefused as refused:
        shutil.rmtree(folder, ignore_errors=True)
        return _import_form(request, viewer, mapping=choice, status=422,
                            errors=refused.errors)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def work(operation: Operation) -> dict[str, Any]:
        try:
            report = import_contacts(uow_factory=app.uow, ctx=app.ctx, mapping=mapping,
                                     rows=source.rows(), total=source.total,
                                     progress=OperationProgress(operation))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return _summary(report)

    board: ProgressBoard = request.app.state.progress
    operation = board.start(owner_id=viewer.user.id, label=_("Importing contacts"), work=work,
                            redirect="/contacts/import/{id}")
    return redirect(f"/contacts/import/{operation.id}")


class _UploadRefused(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("upload refused")
        self.errors = errors


def _open_upload(viewer: Viewer, form: FormData, folder: Path, mapping: ImportMapping
                 ) -> CsvSource:
    _ = viewer._
    try:
        path = _keep_upload(form.get("file"), folder, "upload.csv")
        join_name = mapping.join.file if mapping.join is not None else "joined.csv"
        joined = _keep_upload(form.get("join_file"), folder, join_name)
    except InvalidInput as exc:
        raise _UploadRefused({exc.field or "file": _("The file is larger than {n} MB.",
                                                      n=UPLOAD_MAX // (1024 * 1024))}) from None
    if path is None:
        raise _UploadRefused({"file": _("Choose a CSV file.")})
    if mapping.join is not None and joined is None:
        raise _UploadRefused({"join_file": _("This mapping joins a second file: choose it "
                                             "too ({name}).", name=mapping.join.file)})
    try:
        source = open_csv(path, mapping, join_path=joined)
    except LeadflowError as exc:
        where = "join_file" if exc.field == "join.file" else "file"
        line = _(" (line {n})", n=exc.line) if exc.line else ""
        raise _UploadRefused({where: _("This file cannot be imported with this mapping: "
                                       "{reason}", reason=exc.message) + line}) from None
    return source


def _summary(report: ImportReport) -> dict[str, Any]:
    return {"rows": report.rows, "imported": report.imported, "updated": report.updated,
            "unchanged": report.unchanged, "events": report.events,
            "skipped": [{"line": i.line, "reason": i.reason}
                        for i in report.skipped[:BAD_ROWS_SHOWN]],
            "skipped_count": len(report.skipped),
            "bad": [{"line": i.line, "column": i.column, "reason": i.reason}
                    for i in report.bad[:BAD_ROWS_SHOWN]],
            "bad_count": len(report.bad)}


@router.get("/contacts/import/{operation_id}", response_class=HTMLResponse)
def import_progress(operation_id: str, request: Request, viewer: WebUser) -> HTMLResponse:
    _may_import(viewer)
    board: ProgressBoard = request.app.state.progress
    operation = board.get(operation_id, owner_id=viewer.user.id)
    if operation is None:
        raise NotFound("no such import (it may have been started by another process)",
                       field="operation")
    _ = viewer._
    if not operation.finished:
        return page(request, viewer, "import_progress.html", title=_("Importing contacts"),
                    operation=operation)
    return page(request, viewer, "import_result.html", title=_("Import finished"),
                operation=operation, result=operation.result, shown=BAD_ROWS_SHOWN)
