"""A 12-run sweep of tiny models (2 x 2 grid x 3 seeds), run sequentially (--workers 1, every
core to one process) and with --workers auto (one single-thread process per core); prints the
wall-time ratio, and each run's overhead outside training (process start, imports, data,
checkpointing, evaluation) as a share of its wall time.

    PYTHONPATH=src python bench/bench_study.py [--steps 40] [--out /tmp/bench_study]
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
from lmlab.study.runner import run_study
from lmlab.study.spec import Study


def sweep(out: Path, workers, steps: int) -> tuple[float, list[dict]]:
    shutil.rmtree(out, ignore_errors=True)
    study = Study("bench", "tiny", grid={"model.n_layer": [1, 2], "train.lr": [1e-3, 3e-3]}, seeds=3,
                  overrides={"train.max_steps": steps, "eval.every": steps})
    t0 = time.perf_counter()
    outcome = run_study(study, out, workers, "local", stream=open("/dev/null", "w"))
    wall = time.perf_counter() - t0
    shares = []
    for row in outcome.rows:
        train_s = RunDir(out / "runs" / row["run"]).read_metrics("train")[-1]["train_time_s"]
        shares.append({"run": row["run"], "wall_s": row["wall_s"], "train_s": train_s,
                       "overhead_share": 1 - train_s / row["wall_s"]})
    return wall, shares


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--out", default="/tmp/bench_study")
    args = ap.parse_args()
    results = {}
    for label, workers in (("sequential", 1), ("auto", "auto")):
        wall, shares = sweep(Path(args.out) / label, workers, args.steps)
        results[label] = {"wall_s": wall, "median_overhead_share": statistics.median(s["overhead_share"] for s in shares),
                          "runs": shares}
        print(f"{label:10s} 12 runs in {wall:7.1f} s; median overhead outside training "
              f"{results[label]['median_overhead_share']:.0%} of a run's wall time", flush=True)
    print(f"speed-up of --workers auto over sequential: {results['sequential']['wall_s'] / results['auto']['wall_s']:.2f}x")
    Path(args.out, "bench_study.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
