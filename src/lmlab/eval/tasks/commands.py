"""`lmlab eval RUN --tasks ...`: load the run, score the tasks, save eval/tasks.json (+ .csv), print a table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lmlab.eval.tasks.loading import TaskSelection, parse_task_names

COLUMNS = ("task", "items", "chance", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "perplexity",
           "truncated", "continuation_windowed", "skipped_unencodable", "seconds", "items_per_s")


def add_task_args(p) -> None:
    """The options `lmlab eval` gains for zero-shot tasks."""
    from lmlab.eval.tasks.specs import TASKS

    p.add_argument("--tasks", default=None, metavar="T1,T2",
                   help=f"zero-shot multiple-choice tasks instead of held-out loss: {','.join(TASKS.names())}")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="score the first N items of each task")
    p.add_argument("--tasks-dir", default=None, metavar="DIR",
                   help="folder holding the task folders (default: $LMLAB_DATA/eval or data.root/eval)")
    p.add_argument("--hf", action="store_true", help="load the tasks from Hugging Face datasets by name (online)")


def run_tasks(run_dir, tasks: str | list[str], limit: int | None = None, tasks_dir=None, checkpoint: str = "last",
              device: str = "auto", hf: bool = False, batch_tokens: int = 0, progress: bool = True) -> dict:
    """Score a saved run on the tasks and save RUN/eval/tasks.json and tasks.csv atomically."""
    from lmlab.eval.tasks.run import STDERR, Scoring, evaluate_tasks
    from lmlab.load import load_run
    from lmlab.io import atomic_write_text

    names = parse_task_names(tasks) if isinstance(tasks, str) else parse_task_names(",".join(tasks))
    selection = TaskSelection(names, limit, tasks_dir, hf=hf)  # a bad --limit is refused before the run loads
    loaded = load_run(run_dir, checkpoint, device)
    cfg = loaded.cfg
    selection = dataclasses.replace(selection, data_root=cfg.data.root)
    scoring = Scoring(cfg.model.context_len, batch_tokens, loaded.device, loaded.precision().autocast, progress)
    results = evaluate_tasks(loaded.model, loaded.tokenizer, selection, scoring)
    source = {"checkpoint": checkpoint, "step": loaded.meta.get("step"), "limit": limit}
    for r in results.values():  # each entry says what scored it: tasks.json gathers entries of several calls
        r.update(source)
    out = {"tasks": results, **source, "context_len": cfg.model.context_len, "stderr": STDERR,
           "run_dir": str(loaded.run.root)}
    eval_dir = Path(loaded.run.root) / "eval"
    saved = merged(eval_dir / "tasks.json", out)
    atomic_write_text(eval_dir / "tasks.json", json.dumps(saved, indent=2) + "\n")
    atomic_write_text(eval_dir / "tasks.csv", tasks_csv(saved["tasks"]))
    return out


def merged(path: Path, out: dict) -> dict:
    """`out` over the results already saved at `path`: a task scored again replaces its own entry, the
    others stay (`--tasks copa` after `--tasks arc_easy` keeps both). An entry saved before entries
    named their source gets the file's checkpoint, step and limit. A damaged file is replaced."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        kept = {k: v for k, v in old["tasks"].items() if isinstance(v, dict)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return out
    for entry in kept.values():
        for key in ("checkpoint", "step", "limit"):
            entry.setdefault(key, old.get(key))
    return {**out, "tasks": {**kept, **out["tasks"]}}


def tasks_csv(results: dict) -> str:
    from lmlab.tables import csv_text

    return csv_text([{COLUMNS[0]: name, **r} for name, r in results.items()], COLUMNS)


def format_table(out: dict) -> str:
    """One row per task: items, chance, acc ± stderr, acc_norm ± stderr, perplexity (LAMBADA), truncated,
    windowed, skipped."""
    def pm(v, se):
        return "-" if v is None else f"{v:.3f} ± {se:.3f}" if se is not None else f"{v:.3f}"

    head = (f"{'task':<14}{'items':>6}{'chance':>8}  {'acc':<15}{'acc_norm':<15}{'ppl':>9}{'trunc':>7}{'windowed':>9}"
            f"{'skip':>6}")
    lines = [head, "-" * len(head)]
    for name, r in out["tasks"].items():
        if not r["items"]:
            lines.append(f"{name:<14}{0:>6}{'-':>8}  {'-':<15}{'-':<15}{'-':>9}{0:>7}{0:>9}"
                         f"{r['skipped_unencodable']:>6}")
            continue
        ppl = "-" if r.get("perplexity") is None else \
            f"{r['perplexity']:.1f}" if r["perplexity"] < 1e6 else f"{r['perplexity']:.2e}"  # fits the column
        lines.append(f"{name:<14}{r['items']:>6}{r['chance']:>8.3f}  {pm(r['acc'], r['acc_stderr']):<15}"
                     f"{pm(r['acc_norm'], r['acc_norm_stderr']):<15}{ppl:>9}{r['truncated']:>7}"
                     f"{r.get('continuation_windowed', 0):>9}{r['skipped_unencodable']:>6}")
    lines.append(f"checkpoint {out['checkpoint']} (step {out['step']}); ± = standard error ({out['stderr']}); "
                 f"trunc = items whose context was cut from the left to fit {out['context_len']} tokens; windowed = "
                 f"items with a choice longer than {out['context_len']} tokens, scored whole in windows; skip = items "
                 f"with characters the tokenizer cannot encode")
    return "\n".join(lines)


def cmd_eval_tasks(args) -> int:
    from lmlab.errors import UserError

    if args.tasks is None:
        raise UserError("--limit, --tasks-dir and --hf go with --tasks T1,T2 (zero-shot tasks)")
    if args.split != "val" or args.max_tokens:
        raise UserError("--split and --max-tokens apply to held-out loss, not to --tasks; use --limit N")
    out = run_tasks(args.run_dir, args.tasks, args.limit, args.tasks_dir, args.checkpoint, args.device, args.hf)
    print(json.dumps(out, indent=2) if args.json else format_table(out))
    if not args.json:
        print(f"saved {Path(out['run_dir']) / 'eval' / 'tasks.json'} (with any other tasks scored before)")
    return 0


def add_lm_eval_parser(verbs) -> None:
    """`lmlab lm-eval ARGS...`: lm-evaluation-harness's own CLI with the `lmlab` model registered."""
    p = verbs.add_parser("lm-eval", help="run lm-evaluation-harness with the 'lmlab' model registered "
                         "(arguments as lm_eval's: --model lmlab --model_args run=RUN_DIR --tasks ...)",
                         add_help=False, prefix_chars="+")  # every "--x" goes to lm_eval untouched
    p.add_argument("harness_args", nargs="...", help="passed to lm_eval unchanged")
    p.set_defaults(fn=cmd_lm_eval, usage=p.format_usage())


LM_EVAL_HELP = """
Runs lm-evaluation-harness's own command line (lm_eval 0.4.13 cannot discover third-party models by
itself) after registering the model `lmlab`; every argument goes to lm_eval unchanged. model_args:
run=RUN_DIR (required), checkpoint=last|best, device=auto|cpu|cuda|mps, batch_tokens=N, max_gen_toks=N.

  lmlab lm-eval --model lmlab --model_args run=runs/shake --tasks arc_easy --include_path my_tasks/
  python -m lmlab.eval.harness ...   (the same)

`lmlab lm-eval run --help` shows lm_eval's own options."""


def cmd_lm_eval(args, overrides) -> int:
    if args.harness_args in ([], ["-h"], ["--help"]):
        print(args.usage.rstrip() + "\n" + LM_EVAL_HELP)
        raise SystemExit(0)
    from lmlab.eval.harness import main

    return main(args.harness_args)
