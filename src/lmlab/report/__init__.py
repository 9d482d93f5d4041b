"""Reports: a run directory or a study directory -> one self-contained report.html and its
plain-text twin report.md, assembled from lmlab.figures (the one module that imports matplotlib);
pages come from the Jinja2 templates in `templates/`. Imports are deferred so that the CLI's
parser can register `lmlab report` without loading numpy or jinja2."""

from __future__ import annotations

from pathlib import Path


def write_report(run_dir: str | Path) -> Path:
    """A run's report.html, report.md and figures (what the trainer and `lmlab demo` call)."""
    from lmlab.report.run_page import write_report as write

    return write(run_dir)


def write_page(directory: str | Path) -> Path:
    """report.html of a run or of a study (with every run's page); a directory that is neither is a UserError."""
    from lmlab.report.load import kind_of
    from lmlab.report.study_page import write_study_report

    directory = Path(directory)
    return write_study_report(directory) if kind_of(directory) == "study" else write_report(directory)


__all__ = ["write_page", "write_report"]
