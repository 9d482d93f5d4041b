"""`lmlab report`: (re)write a run's report."""

from __future__ import annotations


def add_parser(verbs) -> None:
    p = verbs.add_parser("report", help="(re)write report.md and loss.png of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(fn=cmd_report)


def cmd_report(args, overrides) -> int:
    from lmlab.report import write_report
    from lmlab.runs import RunDir

    print(write_report(RunDir.open(args.run_dir, need_checkpoint=False).root))
    return 0
