"""Plotly chart specs (data + layout, plain JSON) for the dashboard; plotly.js draws them.

Plotly reads a small set of HTML tags and entities inside any label (``<b>``, ``<a href>``,
``&amp;``), so every label taken from the data is entity-escaped first: it then shows as the
text it is, whatever it contains.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

Spec = dict[str, Any]

#: Colours of the two series and of bars (readable on white, distinct for colour-blind readers).
VISITORS = "#4f46e5"
PAGEVIEWS = "#0ea5e9"
BAR = "#6366f1"
PIE = ["#4f46e5", "#0ea5e9", "#14b8a6", "#f59e0b", "#ef4444", "#8b5cf6", "#64748b", "#ec4899"]
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}
#: Plotly's options for every chart: no toolbar (its PNG export and logo link are not needed).
CONFIG = {"displayModeBar": False, "responsive": True}


#: Longer labels are cut (the tables beside the charts show them whole).
LABEL_CHARS = 64


def label(value: object, missing: str = "(none)") -> str:
    """A data value as Plotly label text that Plotly shows literally (cut to LABEL_CHARS)."""
    if value is None:
        return missing
    text = str(value)
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    return html.escape(text, quote=False)


def labels(values: Sequence[object], missing: str) -> list[str]:
    """Labels for a category axis, kept distinct (Plotly merges equal categories)."""
    out: list[str] = []
    for value in values:
        text, n = label(value, missing), 1
        while text in out:
            n += 1
            text = f"{label(value, missing)} ({n})"
        out.append(text)
    return out


def _layout(height: int, **extra: Any) -> Spec:
    layout: Spec = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 30},
        "font": FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": False,
    }
    layout.update(extra)
    return layout


def _x(bucket: date | datetime | str) -> str:
    if isinstance(bucket, datetime):
        return bucket.strftime("%Y-%m-%d %H:%M")
    if isinstance(bucket, date):
        return bucket.isoformat()
    return str(bucket)


def timeseries(rows: Sequence[dict[str, Any]], hourly: bool) -> Spec:
    """Visitors and page views per bucket, two lines on one axis."""
    x = [_x(r["bucket"]) for r in rows]
    hover = "%{x|%Y-%m-%d %H:00}" if hourly else "%{x|%a %Y-%m-%d}"
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": x,
            "y": [r[key] for r in rows],
            "line": {"color": colour, "width": 2, "shape": "linear"},
            "fill": "tozeroy" if key == "visitors" else "none",
            "fillcolor": "rgba(79,70,229,0.08)",
            "hovertemplate": f"{hover}<br>{name}: %{{y:,}}<extra></extra>",
        }
        for key, name, colour in (
            ("pageviews", "Pageviews", PAGEVIEWS),
            ("visitors", "Visitors", VISITORS),
        )
    ]
    layout = _layout(
        300,
        showlegend=True,
        legend={"orientation": "h", "y": 1.12, "x": 0},
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        xaxis={"type": "date", "showgrid": False},
        yaxis={"rangemode": "tozero", "tickformat": ",d", "gridcolor": "#eef0f4"},
        hovermode="x unified",
    )
    return {"data": traces, "layout": layout, "config": CONFIG}


def bars(
    names: Sequence[object], values: Sequence[float], name: str, missing: str = "(none)"
) -> Spec:
    """Horizontal bars, largest on top."""
    shown = labels(names, missing)
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": list(values),
        "y": shown,
        "marker": {"color": BAR},
        "hovertemplate": f"%{{y}}<br>{name}: %{{x:,}}<extra></extra>",
        "cliponaxis": False,
    }
    layout = _layout(
        max(160, 28 * len(shown) + 40),
        margin={"l": 10, "r": 20, "t": 10, "b": 30},
        xaxis={"tickformat": ",d", "gridcolor": "#eef0f4", "rangemode": "tozero"},
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        bargap=0.3,
    )
    return {"data": [trace], "layout": layout, "config": CONFIG}


def donut(names: Sequence[object], values: Sequence[float], missing: str = "(none)") -> Spec:
    trace = {
        "type": "pie",
        "hole": 0.55,
        "labels": labels(names, missing),
        "values": list(values),
        "sort": False,
        "marker": {"colors": PIE},
        "textinfo": "percent",
        "hovertemplate": "%{label}: %{value:,} (%{percent})<extra></extra>",
    }
    layout = _layout(
        260,
        showlegend=True,
        legend={"orientation": "v", "x": 1.0, "y": 0.5},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return {"data": [trace], "layout": layout, "config": CONFIG}
