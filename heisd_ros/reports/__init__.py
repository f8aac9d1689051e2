"""Human reports of the evaluation commands: a Markdown summary plus PNG plots (matplotlib, Agg backend)."""
from heisd_ros.reports.report import write_report

__all__ = ["write_report"]
