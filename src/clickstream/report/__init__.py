"""The HTML dashboard: numbers from the lake's views, Jinja2 templates, plotly.js charts."""

from clickstream.report.build import ReportOptions, ReportResult, build_report

__all__ = ["ReportOptions", "ReportResult", "build_report"]
