"""A self-contained HTML report of a trained run (``vgim report RUN``): :func:`build_report`."""

from vgim.report.build import REPORT_FILE, REPORT_JSON, build_report, markdown_table_to_html

__all__ = ["REPORT_FILE", "REPORT_JSON", "build_report", "markdown_table_to_html"]
