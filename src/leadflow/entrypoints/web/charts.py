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
