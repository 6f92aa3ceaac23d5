"""Pages: backtests of scoring rules and MQL/SQL thresholds (admins and marketers). The form
checks everything at once and names each problem at its field (a candidate configuration's at
its line); the replay runs in the background with a progress bar; the result page shows, per
rule, a chart and a table of every threshold tried and the suggested one. The figures come
from services/backtest.py, as the CLI's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from leadflow.adapters.config_file import parse_config_text
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.bootstrap import App
from leadflow.domain.backtest import (
    DEFAULT_MIN_FLAGGED,
    MAX_THRESHOLDS,
    METRICS,
    BadThresholds,
    Rule,
    parse_thresholds,
    threshold_rules,
)
from leadflow.domain.choices import day_start
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import ConfigInvalid, InvalidInput, NotFound
from leadflow.domain.users import Principal
from leadflow.entrypoints.web.charts import threshold_chart
from leadflow.entrypoints.web.i18n import Translate
from leadflow.entrypoints.web.progress import Operation, OperationProgress, ProgressBoard
from leadflow.entrypoints.web.render import page, redirect
from leadflow.entrypoints.web.routes_analytics import analytics_views
from leadflow.entrypoints.web.routes_settings import located_problems
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Posted, Viewer, WebUser, app_of, flash
from leadflow.services import pipeline_config
from leadflow.services.backtest import backtest_summary, may_backtest, run_backtest

router = web_router()
# Each backtest replays every contact in a thread of this process: one per user, two at once.
MAX_RUNNING = 2
_starting = threading.Lock()
FIELDS = ("mql", "sql", "metric", "min_flagged", "created_before", "candidate", "content")


def _metrics(_: Translate) -> list[tuple[str, str]]:
    names = {"f1": _("F1: precision and recall alike"),
             "f2": _("F2: recall counts twice as much"),
             "f0.5": _("F0.5: precision counts twice as much"),
             "precision": _("Precision"), "recall": _("Recall")}
    return [(m, names[m]) for m in METRICS]


def _metric_names(_: Translate) -> dict[str, str]:
    """How each metric heads a column."""
    return {"f1": "F1", "f2": "F2", "f0.5": _("F0.5"), "precision": _("Precision"),
            "recall": _("Recall")}


def _in_force_text(request: Request) -> str:
    app = app_of(request)
    try:
        return pipeline_config.read_pipeline(path=app.settings.pipeline_in_use).text
    except ConfigInvalid:  # the file went bad since it was loaded: start from the shipped one
        return pipeline_config.read_pipeline(path=None).text


def _form_page(request: Request, viewer: Viewer, *, values: dict[str, str],
               errors: dict[str, str] | None = None,
               problems: list[dict[str, Any]] | None = None, status: int = 200
               ) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    current = {r.kind: r.current for r in _rules_or_none(app.config)}
    return page(request, viewer, "analytics_backtest.html", status=status,
                title=_("Backtest"), views=analytics_views(viewer), values=values,
                errors=errors or {}, problems=problems or [], metrics=_metrics(_),
                current=current, version=app.config.config_version)


def _rules_or_none(config: LifecycleConfig) -> list[Rule]:
    try:
        return threshold_rules(config)
    except InvalidInput:
        return []


@router.get("/analytics/backtest", response_class=HTMLResponse)
def backtest_form(request: Request, viewer: WebUser) -> HTMLResponse:
    may_backtest(viewer.principal)
    values = {"mql": "", "sql": "", "metric": "f1", "min_flagged": str(DEFAULT_MIN_FLAGGED),
              "created_before": "", "candidate": "in_force",
              "content": _in_force_text(request)}
    return _form_page(request, viewer, values=values)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _choices(form: FormData, viewer: Viewer
             ) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
    """What the form asks for, each problem by field, and a candidate's problems by line."""
    _ = viewer._
    errors: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    asked: dict[str, Any] = {"metric": _text(form, "metric").lower() or "f1"}
    for name in ("mql", "sql"):
        try:
            asked[name] = parse_thresholds(_text(form, name), field_name=name) \
                if _text(form, name) else None
        except BadThresholds as exc:
            errors[name] = _threshold_problem(exc, _)
    if asked["metric"] not in METRICS:
        errors["metric"] = _("Choose a metric from the list.")
    try:
        asked["min_flagged"] = int(_text(form, "min_flagged") or DEFAULT_MIN_FLAGGED)
        if asked["min_flagged"] < 1:
            raise ValueError
    except ValueError:
        errors["min_flagged"] = _("A whole number of contacts, 1 or more.")
    try:
        asked["created_before"] = day_start(_text(form, "created_before"),
                                            field="created_before") \
            if _text(form, "created_before") else None
    except InvalidInput:
        errors["created_before"] = _("A day, like 2026-06-01.")
    asked["candidate"] = None
    if _text(form, "candidate") == "edited":
        content = form.get("content")
        text = content if isinstance(content, str) else ""
        try:
            asked["candidate"] = parse_config_text(text, source="candidate")
        except ConfigInvalid as exc:
            errors["content"] = _("The candidate configuration has problems: fix them first.")
            problems = located_problems(exc, text)
    return asked, errors, problems


def _threshold_problem(exc: BadThresholds, _: Translate) -> str:
    how = _("Write numbers separated by commas (20, 30, 45) or ranges from:to:step "
            "(10:120:10).")
    if exc.problem == "reversed":
        return _("{part}: a range goes from the lower number to the higher.", part=exc.part)
    if exc.problem == "too_many":
        return _("Try at most {n} thresholds at once.", n=MAX_THRESHOLDS)
    if exc.problem == "not_positive":
        return _("Thresholds are numbers above 0.")
    if exc.problem == "format":
        return _("{part} is not a threshold.", part=exc.part) + " " + how
    return how


def _board(request: Request) -> ProgressBoard:
    board: ProgressBoard = request.app.state.progress
    return board


@router.post("/analytics/backtest", response_class=HTMLResponse)
def backtest_start(request: Request, viewer: WebUser, form: Posted) -> Response:
    may_backtest(viewer.principal)
    app = app_of(request)
    _ = viewer._
    content = form.get("content")
    values = {name: _text(form, name) for name in FIELDS}
    values["content"] = content if isinstance(content, str) else ""
    asked, errors, problems = _choices(form, viewer)
    if not errors:
        try:
            threshold_rules(asked["candidate"] or app.config)
        except InvalidInput as exc:
            errors["candidate" if asked["candidate"] is None else "content"] = _(exc.message)
    if errors:
        return _form_page(request, viewer, values=values, errors=errors, problems=problems,
                          status=422)
    principal = viewer.principal
    board = _board(request)
    with _starting:
        mine = board.running(kind="backtest", owner_id=viewer.user.id)
        if mine:
            flash(request, _("Your backtest below is still running: one at a time."), "error")
            return redirect(f"/analytics/backtest/{mine[0].id}")
        if len(board.running(kind="backtest")) >= MAX_RUNNING:
            errors["_"] = _("Other backtests are running in this process; try again when "
                            "one has finished.")
            return _form_page(request, viewer, values=values, errors=errors,
                              problems=problems, status=409)
        operation = board.start(owner_id=viewer.user.id, label=_("Replaying contacts"),
                                work=_work(app, principal, asked),
                                redirect="/analytics/backtest/{id}", kind="backtest")
    return redirect(f"/analytics/backtest/{operation.id}")


def _work(app: App, principal: Principal, asked: dict[str, Any]
          ) -> Callable[[Operation], dict[str, Any]]:
    def work(operation: Operation) -> dict[str, Any]:
        started = time.monotonic()
        with app.engine.connect() as conn:
            report = run_backtest(
                reads=SqlBacktestReads(conn), ctx=app.ctx, principal=principal,
                progress=OperationProgress(operation), candidate=asked["candidate"],
                mql_thresholds=asked["mql"], sql_thresholds=asked["sql"],
                metric=asked["metric"], min_flagged=asked["min_flagged"],
                created_before=asked["created_before"])
        return {**backtest_summary(report), "seconds": round(time.monotonic() - started, 1)}
    return work


@router.get("/analytics/backtest/{operation_id}", response_class=HTMLResponse)
def backtest_result(operation_id: str, request: Request, viewer: WebUser) -> HTMLResponse:
    may_backtest(viewer.principal)
    _ = viewer._
    operation = _board(request).get(operation_id, owner_id=viewer.user.id)
    if operation is None:
        raise NotFound("no such backtest (it may have been run by another process, or long "
                       "ago)", field="operation")
    charts = {}
    finished = operation.finished  # once: it may finish while this page is drawn
    if finished and not operation.error:
        metric_names = _metric_names(_)
        for s in operation.result["sweeps"]:
            rows = s["thresholds"]
            charts[s["kind"]] = threshold_chart(
                [f"{r['threshold']:g}" for r in rows],
                [(_("precision"), [r["precision"] for r in rows]),
                 (_("recall"), [r["recall"] for r in rows])]
                + ([(metric_names[s["metric"]],
                     [r["scores"][s["metric"]] for r in rows])]
                   if s["metric"] not in ("precision", "recall") else []),
                flagged=(_("contacts flagged (right axis)"), [r["flagged"] for r in rows]),
                title=_("MQL threshold") if s["kind"] == "mql" else
                _("SQL (hand-off) threshold"))
    return page(request, viewer, "analytics_backtest_result.html", title=_("Backtest"),
                views=analytics_views(viewer), operation=operation, finished=finished,
                charts=charts, metric_names=_metric_names(_))
