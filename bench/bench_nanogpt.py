#!/usr/bin/env python
"""Side-by-side CPU benchmark: lmlab vs. karpathy/nanoGPT on char-level Shakespeare.

Both trainers run as subprocesses with the same hyperparameters (nanoGPT's
`config/train_shakespeare_char.py` recipe, scaled down for CPU), interleaved
(nanoGPT, lmlab, nanoGPT, lmlab, ...) so that machine noise hits both alike.

nanoGPT is *not* vendored: point --nanogpt at a checkout (see README_nanogpt_notes.md).
Its stdout is parsed (`iter N: loss X, time Y ms, ...` and `step N: train loss X, val loss Y`);
lmlab's `RUN_DIR/metrics.jsonl` is read.

Examples (from the repository root):

    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config tiny --steps 50
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config tiny --repeats 3
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config 6x384 --repeats 2
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config speedrun \\
        --lmlab-preset shakespeare_speedrun
    .venv/bin/python -m pytest tests/test_bench_nanogpt.py   # parsers/analysis only, no training

Timing conventions (important for reading the numbers):
  * nanoGPT's per-iter `time` of iter N is measured from the end of iter N-1 to the end of
    iter N, so for N % eval_interval == 0 it INCLUDES the evaluation at step N and any
    checkpoint save (nanoGPT saves `ckpt.pt` whenever val loss improves; this cannot be
    turned off from the command line). Such iters are excluded from ms/step statistics.
  * nanoGPT with max_iters=N performs N+1 optimizer steps (iters 0..N); the eval printed as
    `step N` happens after N updates, before the last one. We compare evals at equal N.
  * "wall" time of the eval at step N = wall-clock time since the training loop started until
    the model after N updates exists, i.e. just BEFORE that eval runs; earlier evaluations and
    checkpoint saves are included (nanoGPT: sum of the per-iter times of iters 0..N-1, which
    includes its step-0 eval; lmlab: `elapsed_s` of the train record of step N, falling back
    to the eval record's `elapsed_s`).
    "train" time = the same without any evaluation/checkpointing (nanoGPT: eval iters' times
    replaced by the median step time; lmlab: `train_time_s`).
  * nanoGPT evaluates at step 0 and on BOTH splits (2 x eval_iters forward passes per eval);
    the duration of each eval is estimated from stdout arrival times (`eval_s` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the nanogpt_bench package

from nanogpt_bench.analysis import add_utilization, aggregate, compare_pair, markdown  # noqa: E402
from nanogpt_bench.config import CONFIGS, DEFAULT_SPEEDRUN_PRESET, NANOGPT_RECIPE  # noqa: E402
from nanogpt_bench.run import (REPO_ROOT, _git_head, cpu_info, dataset_name, ensure_nanogpt_data,  # noqa: E402
                               find_data, measure_peak, run_lmlab, run_nanogpt, slim, torch_info)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nanogpt", type=Path, help="path to a karpathy/nanoGPT checkout")
    ap.add_argument("--data", help="a plain-text corpus, trained on character by character (default: "
                                   "../shared/data/tinyshakespeare/input.txt relative to the repo root)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--steps", type=int, help="override max steps (lr decay length follows it)")
    ap.add_argument("--eval-interval", type=int, help="override eval interval (both)")
    ap.add_argument("--eval-iters", type=int, help="override nanoGPT eval_iters (lmlab eval tokens follow)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved pairs: nanoGPT, lmlab, nanoGPT, ...")
    ap.add_argument("--only", choices=("both", "nanogpt", "lmlab"), default="both")
    ap.add_argument("--lmlab-preset", help="run lmlab with its own preset instead of matched hparams "
                                           f"(config speedrun default: {DEFAULT_SPEEDRUN_PRESET})")
    ap.add_argument("--lmlab-args", nargs=argparse.REMAINDER, default=[],
                    help="extra lmlab overrides, e.g. --lmlab-args --train.lr=2e-3 (must be last)")
    ap.add_argument("--threads", type=int, default=0,
                    help="set OMP/MKL threads (and lmlab train.threads) for both; 0 = inherit env / torch default")
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps excluded from timing")
    ap.add_argument("--python", default=sys.executable, help="python for nanoGPT (default: this one)")
    ap.add_argument("--lmlab-python", default=None, help="python for lmlab (default: repo .venv or this one)")
    ap.add_argument("--peak", action=argparse.BooleanOptionalAction, default=None,
                    help="measure this CPU's fp32/bf16 matmul peak before and after the pairs and report useful "
                         "GFLOP/s as a share of it (default: on for 6x384 and llmini_c)")
    ap.add_argument("--speedrun-target", type=float, default=None,
                    help="speedrun pass: lmlab reaches nanoGPT's final val loss within this fraction of nanoGPT's "
                         "wall time (default 0.2 on Tiny Shakespeare, 0.25 on other corpora: issue 14)")
    ap.add_argument("--out", type=Path, help="write JSON results here")
    ap.add_argument("--tmp", default=None, help="directory for temp run dirs (default: system tmp)")
    ap.add_argument("--keep-runs", action="store_true", help="keep lmlab run dirs; copy metrics next to logs")
    ap.add_argument("--timeout", type=float, default=3600, help="per-subprocess timeout (s)")
    ap.add_argument("--verbose", action="store_true", help="echo subprocess output")
    ap.add_argument("--full", action="store_true", help="include per-step times/losses in the JSON")
    ap.add_argument("--lmlab-precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="lmlab's train.precision (auto = bf16 autocast where the CPU has it)")
    args = ap.parse_args(argv)
    if args.only != "lmlab" and not args.nanogpt:
        ap.error("--nanogpt PATH is required (a karpathy/nanoGPT checkout)")
    if args.nanogpt:
        args.nanogpt = args.nanogpt.expanduser().resolve()
    args.data = find_data(args.data)
    if args.lmlab_python is None:
        venv = REPO_ROOT / ".venv" / "bin" / "python"
        args.lmlab_python = str(venv) if venv.exists() else sys.executable
    if args.config == "speedrun" and not args.lmlab_preset:
        args.lmlab_preset = DEFAULT_SPEEDRUN_PRESET

    hp = {**NANOGPT_RECIPE, **CONFIGS[args.config]}
    if args.steps is not None:
        hp["max_iters"] = args.steps
        if args.config in ("6x384", "llmini_c"):
            hp["eval_interval"] = args.steps
    hp["lr_decay_iters"] = hp["max_iters"]
    if args.eval_interval:
        hp["eval_interval"] = args.eval_interval
    if args.eval_iters:
        hp["eval_iters"] = args.eval_iters

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # line-by-line stdout, so arrival stamps are meaningful
    if args.threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(args.threads)
    lm_env = dict(env)
    src = str(REPO_ROOT / "src")
    lm_env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    workdir = Path(tempfile.mkdtemp(prefix="bench_nanogpt_", dir=args.tmp))
    if args.only != "lmlab":
        args.nanogpt_dataset = ensure_nanogpt_data(args.nanogpt, args.data, args.python, env)

    peaks = [measure_peak(args.lmlab_python, lm_env)] if (args.peak is None and args.config in ("6x384", "llmini_c")) or args.peak \
        else []
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        ng = lm = None
        if args.only != "lmlab":
            ng = run_nanogpt(args, hp, env, workdir, rep)
            runs.append(ng)
        if args.only != "nanogpt":
            lm = run_lmlab(args, hp, lm_env, workdir, rep)
            if ng and ng.get("ok") and lm.get("ok"):
                lm["comparison"] = compare_pair(ng, lm)
            runs.append(lm)

    if peaks:
        peaks.append(measure_peak(args.lmlab_python, lm_env))
    results = {
        "bench": {
            "peak_gflops": {k: sum(p[k] for p in peaks) / len(peaks) for k in peaks[0]} if peaks else None,
            "peak_gflops_before_after": peaks or None,
            "config": args.config, "steps": hp["max_iters"], "repeats": args.repeats,
            "threads": args.threads or None, "hparams": hp, "lmlab_preset": args.lmlab_preset,
            "lmlab_args": args.lmlab_args, "data": str(args.data),
            "nanogpt": str(args.nanogpt) if args.nanogpt else None,
            "nanogpt_commit": _git_head(args.nanogpt) if args.nanogpt else None,
            "warmup_steps_excluded": args.warmup_steps, "cpu_count": os.cpu_count(), "cpu": cpu_info(),
            "lmlab_precision": sorted({r["precision"] for r in runs if r.get("precision")}) or None,
            "env_threads": {k: env.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
            "torch": torch_info(args.python, env), "logs": str(workdir),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "runs": [r if args.full else slim(r) for r in runs],
        "aggregate": aggregate(runs, args.speedrun_target or (0.2 if dataset_name(args.data) == "shakespeare_char"
                                                              else 0.25)),
    }
    add_utilization(results)
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {args.out}", file=sys.stderr)
    print(f"logs: {workdir}", file=sys.stderr)
    if not all(r.get("ok") for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
