"""Charts as inline SVG, drawn on the server by pygal: no script and nothing fetched."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

from leadflow.entrypoints.web.i18n import Translate

# pygal appends an old-style import hook for its map plugins (unused here) to sys.meta_path;
# every later failed import then warns (ImportWarning: find_spec() not found). Take it out.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

STYLE = Style(background="transparent", plot_background="transparent",
              foreground="#1d2330", foreground_strong="#1d2330", foreground_subtle="#8a94a6",
              colors=("#2f6fde", "#e8833a", "#2a9d6b", "#c53030", "#7a5cc7"),
              font_family="system-ui, sans-serif", label_font_size=13,
              major_label_font_size=13, value_font_size=12, legend_font_size=13,
              tooltip_font_size=13)
COMMON: dict[str, Any] = {"style": STYLE, "js": [], "disable_xml_declaration": True,
                          "explicit_size": False, "pretty_print": False}


# pygal writes its settings into a <script> for its tooltip library, which is not loaded here
# (and which the pages' Content-Security-Policy would refuse anyway).
_CONFIG_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


def _svg(chart: Any) -> Markup:
    svg = _CONFIG_SCRIPT.sub("", chart.render(is_unicode=True))
    return Markup(svg)


def funnel_chart(funnel: dict[str, Any], stage_name: Any, _: Translate) -> Markup:
    """How many contacts ever reached each main stage, top to bottom, each bar labelled with
    its count and the conversion from the stage above."""
    reached = funnel["reached"]
    conversions = {step["to"]: step["conversion"] for step in funnel["conversion"]}
    chart = pygal.HorizontalBar(**COMMON, show_legend=False, width=720,
                                height=60 + 46 * len(reached), print_values=True,
                                print_values_position="top", show_y_guides=False,
                                margin=8, spacing=6,
                                title=_("Reached each stage (conversion from the stage above)"))
    chart.x_labels = [stage_name(row["stage"]) for row in reversed(reached)]
    values = []
    for row in reversed(reached):
        rate = conversions.get(row["stage"])
        label = f"{row['count']:,}" + (f" · {rate * 100:.1f} %" if rate is not None else "")
        values.append({"value": row["count"], "label": label, "formatter": lambda _v,
                       text=label: text})
    chart.add(_("contacts"), values)
    return _svg(chart)


def weekly_chart(weeks: list[dict[str, Any]], *, milestone_name: str | None,
                 _: Translate) -> Markup:
    """New leads (and milestone reached) per week."""
    chart = pygal.Bar(**COMMON, width=720, height=300, legend_at_bottom=True,
                      x_label_rotation=0, show_minor_x_labels=False, margin=8,
                      title=_("New leads per week"))
    labels = [datetime.fromtimestamp(w["week_start"], UTC).strftime("%d/%m") for w in weeks]
    chart.x_labels = labels
    chart.x_labels_major = labels[::max(1, len(labels) // 6)]
    chart.add(_("new leads"), [w["leads"] for w in weeks])
    if milestone_name is not None:
        chart.add(milestone_name, [w["milestone"] for w in weeks])
    return _svg(chart)


# ---------------------------------------------------------------- analytics (routes_analytics)


def conversion_chart(labels: list[str], series: list[tuple[str, list[float | None]]], *,
                     title: str, over_time: bool) -> Markup:
    """Conversion rates (0-1) of several steps across groups: a line per step over cohorts
    (``over_time``), else bars grouped by group."""
    kind = pygal.Line if over_time else pygal.Bar
    chart = kind(**COMMON, width=760, height=340, legend_at_bottom=True, margin=8,
                 x_label_rotation=0 if len(labels) <= 6 else 30, show_minor_x_labels=True,
                 title=title, value_formatter=lambda v: f"{v:.1f} %", range=(0, 100),
                 include_x_axis=True)
    chart.x_labels = labels
    for name, rates in series:
        chart.add(name, [None if r is None else round(r * 100, 1) for r in rates])
    return _svg(chart)


def stage_time_chart(labels: list[str], median_days: list[float | None],
                     p90_days: list[float | None], *, title: str, median: str,
                     p90: str) -> Markup:
    """Median and 90th percentile of the days spent in each stage."""
    chart = pygal.HorizontalBar(**COMMON, width=720, height=80 + 44 * len(labels),
                                legend_at_bottom=True, margin=8, title=title,
                                value_formatter=lambda v: f"{v:.1f}")
    chart.x_labels = labels
    chart.add(median, median_days)
    chart.add(p90, p90_days)
    return _svg(chart)


SLA_STYLE = Style(background="transparent", plot_background="transparent",
                  foreground="#1d2330", foreground_strong="#1d2330",
                  foreground_subtle="#8a94a6", colors=("#2a9d6b", "#e8833a", "#c53030"),
                  font_family="system-ui, sans-serif", label_font_size=13,
                  major_label_font_size=13, value_font_size=12, legend_font_size=13,
                  tooltip_font_size=13)


def sla_chart(names: list[str], parts: list[tuple[str, list[int]]], *, title: str) -> Markup:
    """Each rep's due tasks, stacked: on time (green), late (orange), overdue (red)."""
    chart = pygal.HorizontalStackedBar(**{**COMMON, "style": SLA_STYLE}, width=720,
                                       height=90 + 40 * len(names), legend_at_bottom=True,
                                       margin=8, title=title)
    chart.x_labels = names
    for label, values in parts:
        chart.add(label, values)
    return _svg(chart)


def threshold_chart(thresholds: list[str], rates: list[tuple[str, list[float | None]]], *,
                    flagged: tuple[str, list[int]], title: str) -> Markup:
    """Precision, recall (and the metric) in % per threshold tried (the names say "%": one
    number format serves both axes), and how many contacts each threshold flags on a second
    axis."""
    chart = pygal.Line(**COMMON, width=760, height=340, legend_at_bottom=True, margin=8,
                       title=title, range=(0, 100), include_x_axis=True, dots_size=3,
                       x_label_rotation=0 if len(thresholds) <= 14 else 30,
                       value_formatter=lambda v: f"{v:,.0f}")
    chart.x_labels = thresholds
    for name, values in rates:
        chart.add(f"{name} (%)", [None if v is None else round(v * 100, 1) for v in values],
                  formatter=lambda v: f"{v:.1f} %")
    chart.add(flagged[0], flagged[1], secondary=True, stroke_style={"dasharray": "4, 4"})
    return _svg(chart)
