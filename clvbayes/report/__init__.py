"""The CLV report: one call from a transaction log to a reproducible report.

>>> from clvbayes.report import ReportOptions, build_report, render_html, write_report
>>> options = ReportOptions(customer_col="customer_id", date_col="date",
...                         value_col="value", calibration_end="1997-09-30",
...                         holdout_end="1998-06-30")                     # doctest: +SKIP
>>> report = build_report("orders.parquet", options)                    # doctest: +SKIP
>>> report.content.top_customers                                        # doctest: +SKIP
>>> write_report(report, "reports/orders")                              # doctest: +SKIP

Layers: the analyses it shows are library functions (:mod:`clvbayes.analyses`,
:mod:`clvbayes.segments`; one call each gives the same table in a notebook),
:mod:`~clvbayes.report.content` (what each section shows, as frames),
:mod:`~clvbayes.report.pipeline` (the stages), :mod:`~clvbayes.report.html` (rendering)
and :mod:`~clvbayes.report.output` (atomic writing). The figures are the public
functions of :mod:`clvbayes.plots`.
"""

from clvbayes.report.content import CUSTOMER_COLUMNS, ReportContent
from clvbayes.report.html import render_html
from clvbayes.report.output import FILES, MARKER, ReportTarget, write_report
from clvbayes.report.pipeline import Report, ReportOptions, build_report

__all__ = [
    "CUSTOMER_COLUMNS",
    "FILES",
    "MARKER",
    "Report",
    "ReportContent",
    "ReportOptions",
    "ReportTarget",
    "build_report",
    "render_html",
    "write_report",
]
