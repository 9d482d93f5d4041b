"""`lmlab eval`: a run's metrics on its validation or test split."""

from __future__ import annotations

import json

from lmlab.eval.tasks.commands import add_task_args


def add_parser(verbs) -> None:
    p = verbs.add_parser("eval", help="evaluate a run on its validation (or test) split")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="val", choices=("val", "test"), help="val (default) or test")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--checkpoint", default="last", help="last (default), best or a step kept by train.keep_checkpoints=log")
    p.add_argument("--max-tokens", type=int, default=0, help="score at most N tokens (default: the whole split)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_task_args(p)  # --tasks, --limit, --tasks-dir, --hf: zero-shot tasks (lmlab/eval/tasks/)
    p.set_defaults(fn=cmd_eval)


def cmd_eval(args, overrides) -> int:
    from lmlab.eval.run import eval_run, format_metrics

    if args.tasks is not None or args.limit is not None or args.tasks_dir or args.hf:
        from lmlab.eval.tasks.commands import cmd_eval_tasks

        return cmd_eval_tasks(args)

    metrics = eval_run(args.run_dir, args.checkpoint, args.max_tokens, args.device, args.split)
    print(json.dumps(metrics) if args.json else format_metrics(metrics))
    return 0
