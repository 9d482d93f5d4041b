"""The study verbs: `lmlab sweep`, `lmlab study`, `lmlab studies`, `lmlab table`.
`add_parsers(verbs)` registers them (one line in cli.py); each command is a plain function."""

from __future__ import annotations

import sys
from pathlib import Path

from lmlab.errors import UserError

EPILOG = ("Plain --SECTION.FIELD=VALUE settings change the base for every run. A study directory is "
          "resumable: run the same command again to finish what was interrupted.")
CPU_FLOPS = 5e9  # training FLOP/s one CPU process sustains on tiny models (bench/bench_study.py), for --dry-run


def parse_axis(spec: str, flag: str) -> tuple[str, list[str]]:
    key, sep, values = spec.partition("=")
    items = [v.strip() for v in values.split(",")] if values.strip() else []
    if not sep or "." not in key:
        raise UserError(f"{flag} {spec!r}: expected {flag} SECTION.FIELD=V1,V2,...")
    if not items or any(v == "" for v in items):
        raise UserError(f"{flag} {key}: empty axis value in {spec!r}; give comma-separated values")
    return key, items


def cmd_sweep(args, overrides) -> int:
    from lmlab.study.spec import Study

    grid = dict(parse_axis(s, "--grid") for s in args.grid or [])
    zipped = dict(parse_axis(s, "--zip") for s in args.zip or [])
    if not grid and not zipped:
        raise UserError("lmlab sweep needs at least one --grid or --zip axis")
    name = f"sweep-{Path(args.base).stem}"
    study = Study(name, args.base, overrides=dict(overrides), grid=grid, zip=zipped, seeds=args.seeds or 1)
    return run(study, args)


def cmd_study(args, overrides) -> int:
    from lmlab.study.library import get_study
    from lmlab.study.spec import load_study

    spec = args.study
    study = load_study(spec) if spec.endswith(".toml") or Path(spec).is_file() else get_study(spec, args.size)
    if overrides:
        study.overrides = {**study.overrides, **overrides}
    if args.seeds:
        study.seeds = list(range(args.seeds))
    return run(study, args)


def run(study, args) -> int:
    from lmlab.study.expand import plan

    out = Path(args.out or Path("studies") / study.name)
    if args.dry_run:
        print(dry_run(study, plan(study), out))
        return 0
    from lmlab.study.runner import run_study

    workers = args.workers if args.workers == "auto" else _positive(args.workers)
    outcome = run_study(study, out, workers, args.executor, args.address or "", args.force)
    print(outcome.text, end="")
    print(f"\nstudy directory: {out}  (lmlab table {out} reprints this)")
    if outcome.failed:
        print(f"lmlab: {len(outcome.failed)} of {len(outcome.rows)} runs failed; re-run to retry them",
              file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    if not str(text).isdigit() or int(text) < 1:
        raise UserError(f"--workers {text!r}: expected a positive integer or auto")
    return int(text)


def dry_run(study, runs, out: Path) -> str:
    """The plan without training: variants, seeds, size and cost of each."""
    from lmlab.study.expand import model_stats
    from lmlab.study.results import markdown

    rows, seen = [], {}
    for r in runs:
        if r.variant.slug in seen:
            seen[r.variant.slug]["seeds"] += f",{r.seed}"
            continue
        s = model_stats(r.cfg, r.variant.slug)
        t = r.cfg.train
        per_step = t.batch_size * t.grad_accum * r.cfg.model.context_len
        steps = t.max_steps if not t.epochs else None
        if t.max_tokens:
            steps = min(steps or 10**12, -(-t.max_tokens // per_step))
        tokens = steps * per_step if steps else None
        row = {"variant": r.variant.slug, "seeds": str(r.seed), "params": s["params"],
               "params_non_emb": s["params_non_embedding"], "flops_per_token": s["flops_per_token"],
               "steps": steps if steps else f"{t.epochs} epochs", "tokens": tokens,
               "est_s_per_run": round(tokens * s["flops_per_token"] / CPU_FLOPS, 1) if tokens else None}
        seen[r.variant.slug] = row
        rows.append(row)
    total = sum((row["est_s_per_run"] or 0) * len(row["seeds"].split(",")) for row in rows)
    return (f"study {study.name}: {len(rows)} variants x {len(study.seeds)} seeds = {len(runs)} runs -> {out}\n"
            f"{markdown(rows)}"
            f"estimated CPU time: {total:.0f} s in one process at ~{CPU_FLOPS / 1e9:.0f} GFLOP/s "
            f"(epoch budgets depend on the data and are left out); nothing was trained")


def cmd_studies(args, overrides) -> int:
    from lmlab.study.library import describe_studies

    for name, doc in describe_studies().items():
        print(f"{name:16s} {doc}")
    return 0


def cmd_table(args, overrides) -> int:
    from lmlab.study.expand import plan
    from lmlab.study.runner import MARKER, tabulate
    from lmlab.study.spec import load_study

    out = Path(args.study_dir)
    if not (out / MARKER).is_file() or not (out / "study.toml").is_file():
        raise UserError(f"{out} is not an lmlab study directory (no {MARKER} / study.toml)")
    study = load_study(out / "study.toml")
    print(tabulate(study, out, plan(study)).text, end="")
    return 0


def _common(p) -> None:
    p.add_argument("--out", metavar="DIR", help="the study directory (default studies/<name>)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per variant (0..N-1)")
    p.add_argument("--workers", default="auto", help="parallel runs (local executor); auto = one single-thread "
                   "process per core for models under 5M parameters, else one run at a time")
    p.add_argument("--executor", default="local", choices=("local", "ray"), help="local processes (default) or "
                   "Ray tasks (pip install 'lmlab[ray]')")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (variants, seeds, params, FLOPs/token, "
                   "estimated tokens and time) without training")
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
    p.add_argument("--size", default="cpu", choices=("cpu", "full"), help="cpu (minutes on 2 cores; default) or "
                   "full (the seed's own dimensions and budget)")
    _common(p)
    p.set_defaults(fn=cmd_study)

    p = verbs.add_parser("studies", help="list the named studies")
    p.set_defaults(fn=cmd_studies)

    p = verbs.add_parser("table", help="reprint (and refresh) a study directory's results and statistics")
    p.add_argument("study_dir", metavar="STUDY_DIR")
    p.set_defaults(fn=cmd_table)
