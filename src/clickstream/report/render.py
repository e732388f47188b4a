"""One self-contained HTML file: Jinja2 (autoescaped) + inline CSS, plotly.js and chart data.

Data reaches the page two ways, both inert: as HTML text through Jinja2's autoescaping, and as
JSON in a ``<script type="application/json">`` block with every ``<``, ``>``, ``&`` and U+2028/9
written as a ``\\uXXXX`` escape, so no value can close the block or start markup. A Content
Security Policy then lets only the page's own two scripts run (by hash) and forbids every network
request, so even a mistake in escaping could not run or fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

#: The vendored plotly.js bundle (bar, pie and scatter traces): see vendor/README.md.
PLOTLY_JS = "plotly-basic.min.js"
PLOTLY_SHA256 = "99784e3abfb07b142a15e521a439e6d9addceadb3f79553fd24c72774f0649ba"

_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(value: Any) -> Markup:
    """JSON safe to place inside a <script> element (it cannot end the element or open markup)."""
    text = json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str
    )
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return Markup(text)


def _inline_script(text: str) -> Markup:
    lowered = text.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise ValueError("script text would end its <script> element early")
    return Markup(text)


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@cache
def plotly_js() -> str:
    data = resources.files("clickstream.report").joinpath("vendor", PLOTLY_JS).read_bytes()
    if hashlib.sha256(data).hexdigest() != PLOTLY_SHA256:
        raise RuntimeError(f"vendor/{PLOTLY_JS} does not match its pinned checksum")
    return data.decode()


def _asset(name: str) -> str:
    return resources.files("clickstream.report").joinpath("templates", name).read_text()


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("clickstream.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(context: dict[str, Any], data: dict[str, Any]) -> str:
    """The page, with ``data`` (chart specs) embedded as inert JSON."""
    plotly = plotly_js()
    app = _asset("report.js")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_csp_hash(plotly)} {_csp_hash(app)}",
            # plotly.js sets inline styles on the SVG it draws.
            "style-src 'unsafe-inline'",
            "img-src data:",
            "font-src 'none'",
            "connect-src 'none'",
            "form-action 'none'",
            "base-uri 'none'",
        ]
    )
    template = environment().get_template("report.html.j2")
    return template.render(
        **context,
        csp=csp,
        css=Markup(_asset("report.css")),
        data_json=script_json(data),
        plotly_js=_inline_script(plotly),
        app_js=_inline_script(app),
    )
