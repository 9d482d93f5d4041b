"""Studies at the speed of their training (issue 24): the `process` executor (a fresh Python process
per run, the old default) against `local` warm workers (a pre-imported fork server per worker),
side by side in one invocation, on

    tiny   12 tiny runs (2 x 2 grid x 3 seeds) x 40 steps, --workers auto
    pico   `lmlab study pico --size cpu`
    minigpt_sizes   `lmlab study minigpt_sizes --size cpu`

Each case runs the process executor, then the warm one, in fresh study folders. Reported per case
and executor: the study's wall time (the whole run_study call), the executor's wall time, the
per-run overhead outside training -- in-run (a run's own wall time - its training time, median) and
per run slot ((executor wall x workers - summed training time) / runs, which includes process
starts) -- and the prediction made at the study's start (the dry-run's, timing.json) against the
executor's measured wall time.

    LMLAB_DATA=... PYTHONPATH=src python bench/bench_study.py [--cases tiny,pico,minigpt_sizes] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from lmlab.runs import RunDir
from lmlab.study.seeds import get_study
from lmlab.study.runner import run_study
from lmlab.study.spec import Study


def tiny() -> Study:
    return Study("bench", "tiny", grid={"model.n_layer": [1, 2], "train.lr": [1e-3, 3e-3]}, seeds=3,
                 overrides={"train.max_steps": 40, "eval.every": 40})


CASES = {"tiny": tiny, "pico": lambda: get_study("pico", "cpu"),
         "minigpt_sizes": lambda: get_study("minigpt_sizes", "cpu")}


def measure(case: str, executor: str, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    outcome = run_study(CASES[case](), out, "auto", executor, stream=open("/dev/null", "w"))
    wall = time.perf_counter() - t0
    timing = json.loads((out / "timing.json").read_text())
    in_run, train = [], 0.0
    for row in outcome.rows:
        trained = RunDir(out / "runs" / row["run"]).read_metrics("train")
        t = trained[-1]["train_time_s"] if trained else 0.0
        train += t
        in_run.append(row["wall_s"] - t)
    runs = len(outcome.rows)
    return {"case": case, "executor": executor, "runs": runs, "failed": len(outcome.failed), "wall_s": wall,
            "executor_s": timing["actual_s"], "predicted_s": timing["predicted_s"], "workers": timing["workers"],
            "train_s": train, "overhead_in_run_s": statistics.median(in_run),
            "overhead_per_run_s": (timing["actual_s"] * timing["workers"] - train) / runs}


def table(results: list[dict]) -> str:
    lines = ["| case | executor | runs | study wall s | executor wall s | speed-up | overhead/run in-run s (median) "
             "| overhead/run incl. start s | predicted s | predicted / actual |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = {r["case"]: r for r in results if r["executor"] == "process"}
    for r in results:
        speed = base[r["case"]]["wall_s"] / r["wall_s"] if r["case"] in base else float("nan")
        lines.append(f"| {r['case']} | {r['executor']} | {r['runs']}{' (' + str(r['failed']) + ' failed)' if r['failed'] else ''} "
                     f"| {r['wall_s']:.1f} | {r['executor_s']:.1f} | {speed:.2f}x | {r['overhead_in_run_s']:.2f} "
                     f"| {r['overhead_per_run_s']:.2f} | {r['predicted_s']:.1f} | {r['predicted_s'] / r['executor_s']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="tiny,pico,minigpt_sizes")
    ap.add_argument("--out", default="/tmp/bench_study")
    args = ap.parse_args()
    results = []
    for case in args.cases.split(","):
        for executor in ("process", "local"):
            results.append(measure(case, executor, Path(args.out) / f"{case}-{executor}"))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    Path(args.out, "bench_study.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
