"""Charts for the HTML report, drawn here as inline SVG by pygal (no script, no network at view time).

Same input, same bytes: each chart gets a fixed id instead of pygal's random one, pygal is made to use
the standard library's ElementTree (with lxml installed it would serialise differently), and the comment
pygal stamps with today's date is removed, as is the inline configuration script its (unused, never
loaded) tooltip code would read: the page runs no script at all. Rates are percentages, 0 to 100.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import pygal
from pygal.etree import etree
from pygal.style import Style

# pygal appends a legacy import hook (for its optional map plugins, which the report does not use) to
# sys.meta_path; on Python 3.11 every failed import anywhere in the process then warns about it. Take it out.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222222",
    foreground_strong="#000000",
    foreground_subtle="#666666",
    colors=("#1f5f8b", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085"),
    font_family="Helvetica, Arial, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    title_font_size=14,
    legend_font_size=12,
)
_COMMON: dict[str, Any] = {
    "style": STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "explicit_size": False,
    "show_legend": False,
    "print_values": True,
    "value_formatter": lambda v: f"{v:.1f}%",
    "range": (0, 100),
    "include_x_axis": True,
}


def _render(chart: Any, chart_id: str, title: str) -> str:
    etree.to_etree()
    chart.uuid = chart_id
    svg = _SCRIPT.sub("", _COMMENT.sub("", str(chart.render(is_unicode=True))))
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def rate_bars(chart_id: str, title: str, labels: Sequence[str], rates: Sequence[float | None]) -> str:
    """Horizontal bars, one per label (a measure, a clinician): its performance rate; the first label on
    top (pygal draws the first at the bottom)."""
    height = 80 + 24 * max(1, len(labels))
    chart = pygal.HorizontalBar(width=760, height=height, title=title, **_COMMON)
    chart.x_labels = list(reversed(labels))
    chart.add("rate", list(reversed(rates)))
    return _render(chart, chart_id, title)


def rate_trend(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> str:
    """The rate of each group across runs (one point per run, in the order given)."""
    options = dict(_COMMON)
    options["show_legend"] = len(series) > 1
    chart = pygal.Line(width=760, height=300, title=title, dots_size=4, legend_at_bottom=True, **options)
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, list(values))
    return _render(chart, chart_id, title)
