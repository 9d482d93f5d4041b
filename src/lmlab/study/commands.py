"""The study verbs: `lmlab sweep`, `lmlab study`, `lmlab studies`, `lmlab table`.
`add_parsers(verbs)` registers them (one line in cli.py); each command is a plain function."""

from __future__ import annotations

import sys
from pathlib import Path

from lmlab.errors import UserError

EPILOG = ("Plain --SECTION.FIELD=VALUE settings hold for every run (budget keys such as train.max_steps replace "
          "the study's budget; a key whose value differs between its runs is refused). A study directory is "
          "resumable: run the same command again to finish what was interrupted.")


def parse_axis(spec: str, flag: str) -> tuple[str, list[str]]:
    key, sep, values = spec.partition("=")
    items = [v.strip() for v in values.split(",")] if values.strip() else []
    if not sep or "." not in key:
        raise UserError(f"{flag} {spec!r}: expected {flag} SECTION.FIELD=V1,V2,...")
    if not items or any(v == "" for v in items):
        raise UserError(f"{flag} {key}: empty axis value in {spec!r}; give comma-separated values")
    return key, items


def cmd_sweep(args, overrides) -> int:
    from lmlab.study.expand import with_settings
    from lmlab.study.spec import Study

    _check_seeds(args.seeds)
    grid = dict(parse_axis(s, "--grid") for s in args.grid or [])
    zipped = dict(parse_axis(s, "--zip") for s in args.zip or [])
    if not grid and not zipped:
        raise UserError("lmlab sweep needs at least one --grid or --zip axis")
    name = f"sweep-{Path(args.base).stem}"
    base = str(Path(args.base).resolve()) if args.base.endswith(".toml") else args.base  # study.toml is elsewhere
    study = Study(name, base, grid=grid, zip=zipped, seeds=args.seeds or 1)
    return run(with_settings(with_data(study, args.data, overrides), dict(overrides)), args)


def cmd_study(args, overrides) -> int:
    from lmlab.study.seeds import get_study
    from lmlab.study.expand import with_settings
    from lmlab.study.spec import load_study

    _check_seeds(args.seeds)
    spec = args.study
    study = load_study(spec) if spec.endswith(".toml") or Path(spec).is_file() else get_study(spec, args.size)
    with_settings(with_data(study, args.data, overrides), dict(overrides))
    if args.seeds is not None:
        study.seeds = list(range(args.seeds))
    return run(study, args)


def with_data(study, data: str | None, overrides: dict[str, str]):
    """--data for every run, found as `lmlab train --data` finds it (resolve_config: the current
    directory, else under data.root) and kept absolute: study.toml is read again from anywhere."""
    if data:
        from lmlab.presets.resolve import resolve_config

        study.data = resolve_config(study.base, data, overrides).data.path
    return study


def _check_seeds(seeds: int | None) -> None:
    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds {seeds} is not valid; expected a positive number of seeds")


def run(study, args) -> int:
    from lmlab.study.expand import plan

    from lmlab.study.findings import check_findings

    out = Path(args.out or Path("studies") / study.name)
    workers = args.workers if args.workers == "auto" else _positive(args.workers)
    if args.dry_run:
        runs = plan(study)
        check_findings(study, list(dict.fromkeys(r.variant.slug for r in runs)))
        print(dry_run(study, runs, out, workers, args.executor))
        return 0
    from lmlab.study.runner import run_study

    outcome = run_study(study, out, workers, args.executor, args.address or "", args.force)
    print(outcome.text, end="")
    print(write_page(out), end="")
    print(f"\nstudy directory: {out}  (lmlab table {out} reprints this)")
    if outcome.failed:
        print(f"lmlab: {len(outcome.failed)} of {len(outcome.rows)} runs failed; re-run to retry them",
              file=sys.stderr)
        return 1
    return 0


def write_page(out: Path) -> str:
    """The study's report.html (and every run's page): its claims, the seed's tables, results."""
    from lmlab.report.study_page import write_study_report

    try:
        return f"\nstudy page: {write_study_report(out)}\n"
    except UserError as err:  # the results are written; a page that cannot be drawn is named
        return f"\n(no study page: {err})\n"


def _positive(text: str) -> int:
    if not str(text).isdigit() or int(text) < 1:
        raise UserError(f"--workers {text!r}: expected a positive integer or auto")
    return int(text)


def dry_run(study, runs, out: Path, workers: int | str = "auto", executor: str = "local") -> str:
    """The plan without training: variants, seeds, size and cost of each, and the study's wall time
    predicted from a few measured steps of each distinct shape plus the measured per-run overhead,
    over the workers (lmlab.study.estimate)."""
    from lmlab.study.estimate import forecast, retrain_forecast, worker_layout
    from lmlab.study.results import markdown
    from lmlab.study.shared import warm_data
    from lmlab.train.plan import format_seconds

    n_workers, threads = worker_layout(runs, workers)
    warm_data(runs)  # what the study would do first: its runs' data from the token cache
    fc = forecast(runs, n_workers, threads, executor)
    run_s = sum(fc.seconds.values())
    retrain = retrain_forecast(study, runs, fc, executor)
    total = fc.wall_s + (retrain.wall_s if retrain else 0.0)
    retrain_text = (f"; then the selected variant's retrain ({study.retrain or 'the same budget'}): at most "
                    f"{format_seconds(retrain.wall_s)} (the costliest variant's), {format_seconds(total)} in all"
                    if retrain else "")
    return (f"study {study.name}: {len(fc.rows)} variants x {len(study.seeds)} seeds = {len(runs)} runs -> {out}\n"
            f"{markdown(fc.rows)}"
            f"estimated time: about {format_seconds(fc.wall_s)} on {n_workers} {executor} worker(s) x {threads} "
            f"thread(s) ({format_seconds(run_s)} of run time, measured on a few steps of each shape; early "
            f"stopping counted as never firing){retrain_text}; nothing was trained"
            f"{_instruments_line(study, runs)}")


def _instruments_line(study, runs) -> str:
    from lmlab.study.findings import parse_findings
    from lmlab.study.instruments import targets

    f = parse_findings(study)
    n = sum(len(targets(s, runs)) for s in f.instruments)
    if not (n or f.claims):
        return ""
    return (f"\nafter training: {n} instrument measurement(s) on best checkpoints (not in the estimate), "
            f"{len(f.claims)} claim(s) judged, {len(f.seed_tables)} seed table(s) set beside ours")


def cmd_studies(args, overrides) -> int:
    if args.instruments:
        from lmlab.study.claims import TESTS
        from lmlab.study.instruments import INSTRUMENTS, load_kinds, parse_instrument

        load_kinds()

        print("instruments (run after training on each variant's best checkpoint; [[study.instruments]]):")
        for name, doc in INSTRUMENTS.describe().items():
            spec = parse_instrument({"kind": name}, "lmlab studies")
            params = ", ".join(f"{k}={v!r}" for k, v in INSTRUMENTS[name].params.items())
            print(f"  {name:14s} {doc}\n  {'':14s} parameters: {params or 'none'}; metrics: "
                  f"{', '.join(spec.metric_names()) or 'none (text and figures)'}")
        print("claim tests ([[study.claims]] test = ...):")
        for name, doc in TESTS.describe().items():
            print(f"  {name:14s} {doc}")
        return 0
    from lmlab.study.seeds import describe_studies

    for name, doc in describe_studies().items():
        print(f"{name:16s} {doc}")
    return 0


def cmd_table(args, overrides) -> int:
    """One study folder: refresh and reprint its tables and findings. Two: their claims' verdicts
    side by side (does a finding survive a change of corpus?)."""
    dirs = [Path(d) for d in args.study_dir]
    if len(dirs) > 2:
        raise UserError(f"lmlab table takes one study directory, or two to compare; got {len(dirs)}")
    studies = [_study_at(d) for d in dirs]
    if len(dirs) == 2:
        from lmlab.study.compare import compare_text

        print(compare_text(dirs[0], dirs[1]), end="")
        return 0
    out, study = dirs[0], studies[0]
    from lmlab.study.expand import plan
    from lmlab.study.findings import find
    from lmlab.study.runner import tabulate

    runs = plan(study)
    outcome = tabulate(study, out, runs)
    print(outcome.text, end="")
    if study.select and (out / "selected.json").is_file():  # the grid search's outcome, as the study printed it
        import json

        from lmlab.study.select import selection_text

        try:
            print(selection_text(json.loads((out / "selected.json").read_text(encoding="utf-8"))), end="")
        except (ValueError, KeyError, TypeError):
            print(f"\n({out / 'selected.json'} is damaged; run the study again to redo the selection)")
    print(find(study, out, runs, outcome.rows, outcome.epochs), end="")
    return 0


def _study_at(out: Path):
    from lmlab.study.runner import MARKER
    from lmlab.study.spec import load_study

    if not (out / MARKER).is_file() or not (out / "study.toml").is_file():
        raise UserError(f"{out} is not an lmlab study directory (no {MARKER} / study.toml)")
    return load_study(out / "study.toml")


def _common(p) -> None:
    from lmlab.commands import add_data_arg

    add_data_arg(p, "train every run on")
    p.add_argument("--out", metavar="DIR", help="the study directory (default studies/<name>)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per variant (0..N-1)")
    p.add_argument("--workers", default="auto", help="parallel runs (local executor); auto = one single-thread "
                   "process per core for models under 5M parameters, else one run at a time")
    from lmlab.study.executors import EXECUTORS

    p.add_argument("--executor", default="local", choices=EXECUTORS.names(), help="; ".join(
        f"{name}: {doc}" for name, doc in EXECUTORS.describe().items()) + " (default local)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--dry-run", action="store_true", help="print the plan without training: variants, seeds, "
                   "params, FLOPs/token, steps, tokens, peak memory and a time estimate measured on a few steps")
    p.add_argument("--force", action="store_true", help="delete an existing study directory and start over")
    p.set_defaults(takes_overrides=True)


def add_parsers(verbs) -> None:
    p = verbs.add_parser("sweep", help="train a grid / zip of settings x seeds and compare them", epilog=EPILOG)
    p.add_argument("base", metavar="BASE", help="a preset name or a config .toml")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="an axis of the cartesian product")
    p.add_argument("--zip", action="append", metavar="KEY=V1,V2", help="axes walked together (equal lengths)")
    _common(p)
    p.set_defaults(fn=cmd_sweep, seeds=None)

    p = verbs.add_parser("study", help="run a named study (see `lmlab studies`) or a STUDY.toml", epilog=EPILOG)
    p.add_argument("study", metavar="NAME|STUDY.toml")
    from lmlab.study.seeds import SIZES

    p.add_argument("--size", default="cpu", choices=list(SIZES), help="; ".join(
        f"{name}: {doc}" for name, doc in SIZES.describe().items()) + " (default cpu)")
    _common(p)
    p.set_defaults(fn=cmd_study)

    p = verbs.add_parser("studies", help="list the named studies")
    p.add_argument("--instruments", action="store_true", help="list the instruments and claim tests a study "
                   "can declare instead")
    p.set_defaults(fn=cmd_studies)

    p = verbs.add_parser("table", help="reprint (and refresh) a study directory's results, statistics and claims; "
                         "with two, their claims' verdicts side by side")
    p.add_argument("study_dir", metavar="STUDY_DIR", nargs="+", help="a study directory, or two to compare")
    p.set_defaults(fn=cmd_table)
