"""`lmlab report RUN_DIR|STUDY_DIR [--open]`: the page of a run or of a study (see lmlab.report)."""

from __future__ import annotations


def add_parser(verbs) -> None:
    p = verbs.add_parser("report", help="write report.html (self-contained) and report.md of a run or a study",
                         description="Write one self-contained report.html (figures embedded, no network) and "
                                     "its plain-text twin report.md. A run's page: config and its diff from the "
                                     "preset, model, data statistics, curves, evaluation, samples, analysis. "
                                     "A study's page: plan, results with intervals and verdicts, overlaid "
                                     "curves, scaling fit, and a link to each run's page (written too).")
    p.add_argument("directory", metavar="RUN_DIR|STUDY_DIR")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(fn=cmd_report)


def cmd_report(args, overrides) -> int:
    from lmlab.report import write_page

    page = write_page(args.directory)
    print(page)
    if args.open:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
    return 0
