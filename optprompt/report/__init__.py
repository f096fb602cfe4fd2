"""HTML reports of a study: plots (matplotlib, via Optuna's visualisation), the
baseline-vs-winner comparison with confidence intervals, warnings and the winning prompt.

Typical use::

    from optprompt.report import write_report

    path = write_report("runs/sentiment-demo")   # -> runs/sentiment-demo/report.html
"""

from __future__ import annotations

from optprompt.report.html import REPORT_FILE, render_html, write_report
from optprompt.report.plots import Plot, study_plots
from optprompt.report.source import StudySource, load_source

__all__ = [
    "REPORT_FILE",
    "Plot",
    "StudySource",
    "load_source",
    "render_html",
    "study_plots",
    "write_report",
]
