"""Pages: funnel analytics — the funnel broken down by a chosen dimension (a chart and a
table), time in stage, SLA per rep — over what the viewer sees: admins and marketers every
contact, a sales manager their team's. Reps have no analytics pages (the dashboard shows
their own funnel). The figures come from services/analytics.py, as the REST routes'."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from leadflow.adapters.db.analytics_reads import CONSUMED, SqlAnalyticsReads
from leadflow.domain.analytics import BREAKDOWNS, FunnelReport, SlaReport, TimeInStageReport
from leadflow.domain.errors import Forbidden, InvalidInput
from leadflow.entrypoints.web.charts import (
    conversion_chart,
    funnel_chart,
    sla_chart,
    stage_time_chart,
)
from leadflow.entrypoints.web.i18n import Translate
from leadflow.entrypoints.web.render import page
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import Viewer, WebUser, app_of
from leadflow.entrypoints.web.slow_cache import SlowResultCache
from leadflow.services import analytics
from leadflow.services.content import list_items

router = web_router()
CHART_GROUPS = 12  # groups drawn (the largest; cohorts: the latest); the table has them all
DAY = 86400.0
# Per viewer scope and choice: kept five minutes when they took over half a second (on the
# 1M demo a breakdown reads millions of rows); a small install always shows what is true now.
SLOW_SECONDS = 0.5
KEEP_SECONDS = 300.0


def _kept(request: Request, viewer: Viewer, view: str, compute: Any) -> tuple[Any, Any]:
    """(the figures, None) — or figures computed at most five minutes ago and their time.
    The cache belongs to the web application (one per ``create_app``)."""
    app = app_of(request)
    state = request.app.state
    cache = getattr(state, "analytics_figures", None)
    if cache is None:
        cache = state.analytics_figures = SlowResultCache(slow_seconds=SLOW_SECONDS,
                                                          keep_seconds=KEEP_SECONDS)
    key = (app.config.config_version, viewer.principal.visible_owners, view,
           _choice(request, "by"), _choice(request, "item"))
    return cache.get(key, compute, as_of=app.clock.now())


def analytics_views(viewer: Viewer) -> list[tuple[str, str]]:
    """The analytics pages' menu; backtests replay every contact (admins, marketers)."""
    _ = viewer._
    views = [("/analytics", _("Funnel")), ("/analytics/time-in-stage", _("Time in stage")),
             ("/analytics/sla", _("SLA per rep"))]
    if viewer.principal.sees_all:
        views.append(("/analytics/backtest", _("Backtest")))
    return views


def _breakdowns(_: Translate) -> list[tuple[str, str]]:
    names = {"cohort-week": _("Week created"), "cohort-month": _("Month created"),
             "source": _("Source"), "campaign": _("First campaign"),
             "persona": _("Persona"), "content": _("Content consumed")}
    return [(key, names[key]) for key in BREAKDOWNS]


def _viewer_may(viewer: Viewer) -> None:
    if viewer.user.role not in ("admin", "marketer", "sales_manager"):
        raise Forbidden("analytics are for admins, marketers and sales managers",
                        field="authorization")


def _choice(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def group_label(by: str | None, group: str | None, item: str | None, _: Translate) -> str:
    """How a group reads on the page."""
    if by == "content" and item:
        return _("Consumed {item}", item=item) if group == CONSUMED else \
            _("Did not consume it")
    if by == "content":
        return _(group) if group else _("No content consumed")
    if group is None:
        return _("(none)")
    if by == "cohort-week":
        return _("Week of {day}", day=group)
    return group


def _form(request: Request, viewer: Viewer) -> dict[str, Any]:
    """What the breakdown form offers and holds."""
    _ = viewer._
    items = list_items(uow=app_of(request).reader(), include_archived=True,
                       limit=10_000).items
    return {"breakdowns": _breakdowns(_), "items": [(i.key, i.title) for i in items],
            "values": {"by": _choice(request, "by") or "", "item": _choice(request, "item") or ""},
            "views": analytics_views(viewer), "mine": viewer.principal.visible_owners is not None}


def _problem(exc: InvalidInput, _: Translate) -> dict[str, str]:
    """A bad breakdown in the address (the form offers only good ones), next to its field."""
    if exc.field == "item":
        return {"item": _("Choose a content item from the list, with the content breakdown.")}
    return {"by": _("Choose a breakdown from the list.")}


def _charted(by: str | None, groups: list[Any]) -> list[Any]:
    if by in ("cohort-week", "cohort-month"):
        return groups[-CHART_GROUPS:]
    return groups[:CHART_GROUPS]


def _funnel_svg(report: FunnelReport, summary: dict[str, Any], viewer: Viewer,
                stage_name: Any) -> Any:
    _ = viewer._
    total = summary["total"]
    if report.by is None:
        return funnel_chart({
            "reached": [{"stage": k, "count": v} for k, v in total["reached"].items()],
            "conversion": [{"to": s["to"], "conversion": s["cumulative_rate"]}
                           for s in total["steps"]]}, stage_name, _)
    groups = _charted(report.by, summary["groups"])
    labels = [g["group"] or _("(none)") if report.by in ("cohort-week", "cohort-month")
              else group_label(report.by, g["group"], report.item, _) for g in groups]
    series = [(f"{stage_name(s['from'])} → {stage_name(s['to'])}",
               [g["steps"][i]["cumulative_rate"] for g in groups])
              for i, s in enumerate(total["steps"])]
    return conversion_chart(labels, series, title=_("Cumulative conversion by group"),
                            over_time=report.by in ("cohort-week", "cohort-month"))


@router.get("/analytics", response_class=HTMLResponse)
def funnel_page(request: Request, viewer: WebUser) -> HTMLResponse:
    _viewer_may(viewer)
    app = app_of(request)
    _ = viewer._
    stage_names = {s.key: _(s.name) for s in app.config.stages}

    def stage_name(key: str) -> str:
        return stage_names.get(key, key)

    form = _form(request, viewer)
    def compute() -> FunnelReport:
        with app.engine.connect() as conn:
            return analytics.funnel_report(
                reads=SqlAnalyticsReads(conn), ctx=app.ctx, principal=viewer.principal,
                by=_choice(request, "by"), item=_choice(request, "item"))
    try:
        report, as_of = _kept(request, viewer, "funnel", compute)
    except InvalidInput as exc:
        return page(request, viewer, "analytics.html", status=422, title=_("Analytics"),
                    errors=_problem(exc, _), summary=None, as_of=None, **form)
    summary = analytics.funnel_summary(report)
    for g in summary["groups"]:
        g["label"] = group_label(report.by, g["group"], report.item, _)
    return page(request, viewer, "analytics.html", title=_("Analytics"), errors={},
                summary=summary, by=report.by, overlapping=report.overlapping,
                steps_to={s["to"]: s for s in summary["total"]["steps"]}, as_of=as_of,
                chart=_funnel_svg(report, summary, viewer, stage_name), **form)


@router.get("/analytics/time-in-stage", response_class=HTMLResponse)
def time_page(request: Request, viewer: WebUser) -> HTMLResponse:
    _viewer_may(viewer)
    app = app_of(request)
    _ = viewer._
    form = _form(request, viewer)
    def compute() -> TimeInStageReport:
        with app.engine.connect() as conn:
            return analytics.time_in_stage_report(
                reads=SqlAnalyticsReads(conn), ctx=app.ctx, principal=viewer.principal,
                by=_choice(request, "by"), item=_choice(request, "item"))
    try:
        report, as_of = _kept(request, viewer, "time", compute)
    except InvalidInput as exc:
        return page(request, viewer, "analytics_time.html", status=422,
                    title=_("Time in stage"), errors=_problem(exc, _), report=None, as_of=None,
                    **form)
    names = {s.key: _(s.name) for s in app.config.stages}
    shown = [r for r in reversed(report.total) if r.left]  # top to bottom, as the table
    chart = stage_time_chart(
        [names.get(r.stage, r.stage) for r in shown],
        [None if r.median is None else round(r.median / DAY, 1) for r in shown],
        [None if r.p90 is None else round(r.p90 / DAY, 1) for r in shown],
        title=_("Days in each stage, for the stays that ended"), median=_("median"),
        p90=_("90th percentile")) if shown else None
    groups: list[tuple[str, list[Any]]] = []
    for r in report.groups:
        label = group_label(report.by, r.group, report.item, _)
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        if r.left or r.still_in:
            groups[-1][1].append(r)
    return page(request, viewer, "analytics_time.html", title=_("Time in stage"), errors={},
                report=report, chart=chart, groups=[g for g in groups if g[1]],
                has_stays=any(r.left or r.still_in for r in report.total), as_of=as_of,
                **form)


@router.get("/analytics/sla", response_class=HTMLResponse)
def sla_page(request: Request, viewer: WebUser) -> HTMLResponse:
    _viewer_may(viewer)
    app = app_of(request)
    _ = viewer._
    def compute() -> SlaReport:
        with app.engine.connect() as conn:
            return analytics.sla_report(reads=SqlAnalyticsReads(conn), ctx=app.ctx,
                                        principal=viewer.principal)
    report, as_of = _kept(request, viewer, "sla", compute)
    reps = [r for r in report.reps if r.due]
    chart = sla_chart([r.name or r.email or f"#{r.owner_id}" for r in reps], [
        (_("done on time"), [r.on_time for r in reps]),
        (_("done late"), [r.late for r in reps]),
        (_("open, overdue"), [r.overdue for r in reps])],
        title=_("Follow-up tasks due, by rep")) if reps else None
    return page(request, viewer, "analytics_sla.html", title=_("SLA per rep"), report=report,
                total=report.total, chart=chart, views=analytics_views(viewer), as_of=as_of,
                mine=viewer.principal.visible_owners is not None)
