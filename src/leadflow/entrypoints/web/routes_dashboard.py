"""The dashboard: the funnel, entries over time, hot prospects and overdue follow-ups, of the
contacts the viewer may see."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from leadflow.adapters.db.dashboard_reads import overdue_tasks, weekly_entries
from leadflow.adapters.db.read_models import funnel, hottest_prospects
from leadflow.entrypoints.web.charts import funnel_chart, weekly_chart
from leadflow.entrypoints.web.render import page
from leadflow.entrypoints.web.routing import web_router
from leadflow.entrypoints.web.session import WebUser, app_of
from leadflow.entrypoints.web.slow_cache import SlowResultCache
from leadflow.services.temperatures import refresh_expired_temperatures

router = web_router()
WEEKS = 12
SLOW_SECONDS = 0.5  # figures that took longer than this to compute …
KEEP_SECONDS = 60.0  # … are shown for up to this long (per viewer scope and configuration)


def figures_cache() -> SlowResultCache:
    """The dashboard's cache, one per web application (mount.install_web makes it)."""
    return SlowResultCache(slow_seconds=SLOW_SECONDS, keep_seconds=KEEP_SECONDS)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: WebUser) -> HTMLResponse:
    app = app_of(request)
    _ = viewer._
    owners = viewer.principal.visible_owners
    config = app.config
    milestone = next((m for m in config.milestones if m.key == "mql"),
                     config.milestones[0] if config.milestones else None)
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    now = app.clock.now()

    def aggregates() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with app.engine.connect() as conn:
            return (funnel(conn, config, owners=owners),
                    weekly_entries(conn, config, now=now, weeks=WEEKS, owners=owners,
                                   milestone=milestone.key if milestone else None))
    cache: SlowResultCache = request.app.state.dashboard_figures
    (counts, weeks), as_of = cache.get((config.config_version, owners), aggregates, as_of=now)
    with app.engine.connect() as conn:
        hot = hottest_prospects(conn, config, now=now, limit=10, owners=owners)
        overdue, overdue_total = overdue_tasks(conn, now=now, owners=owners, limit=10)
    stage_names = {s.key: _(s.name) for s in config.stages}
    milestone_name = _(milestone.name) if milestone else None
    return page(
        request, viewer, "dashboard.html", title=_("Dashboard"), funnel=counts,
        funnel_svg=funnel_chart(counts, lambda k: stage_names.get(k, k), _),
        weekly_svg=weekly_chart(weeks, milestone_name=milestone_name, _=_),
        reached={r["stage"]: r["count"] for r in counts["reached"]},
        conv={c["to"]: c["conversion"] for c in counts["conversion"]},
        weeks=weeks, milestone_name=milestone_name, hot=hot, overdue=overdue,
        overdue_total=overdue_total, mine=owners is not None, as_of=as_of)
