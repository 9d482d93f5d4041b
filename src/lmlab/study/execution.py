"""Executing a study's runs: skip those whose status says done, resume interrupted ones (the
worker does), and report one line per run started / finished with an ETA under an overall bar."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lmlab.progress import Progress
from lmlab.io import atomic_write_text
from lmlab.study import executors
from lmlab.study.expand import RunPlan, model_stats


def status_of(out: Path, name: str) -> dict:
    path = out / "status" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def shape(pending: list[RunPlan], workers: int | str) -> tuple[int, int]:
    """(parallel workers, CPU threads each) for these runs: `--workers auto` decides by model size."""
    params = max(model_stats(r.cfg)["params"] for r in pending)  # one build per distinct model (cached)
    n_workers = executors.auto_workers(len(pending), params) if workers == "auto" else int(workers)
    return n_workers, max(1, executors.cpu_count() // max(n_workers, 1))


def execute(runs: list[RunPlan], out: Path, workers: int | str, executor: str, address: str, stream) -> None:
    run_executor = executors.get_executor(executor)
    pending = [r for r in runs if status_of(out, r.name).get("status") != "done"]
    skipped = len(runs) - len(pending)
    if skipped:
        print(f"lmlab: {skipped} of {len(runs)} runs already finished; skipping them", file=stream)
    if not pending:
        return
    n_workers, threads = shape(pending, workers)
    jobs = []
    for r in pending:
        cfg = r.cfg.replace(train={"threads": threads})
        cfg_path = out / "status" / f"{r.name}.config.toml"
        cfg.save(cfg_path)
        jobs.append(executors.Job(r.name, out / "runs" / r.name, cfg_path, out / "status" / f"{r.name}.json", threads))
    print(f"lmlab: {len(jobs)} runs on {executor} ({n_workers} workers x {threads} threads)", file=stream, flush=True)
    t0, done = time.perf_counter(), [0]
    overall = Progress(len(jobs), desc="study", unit="run", position=0, stream=stream)

    def started(job):
        resumed = " (resuming)" if (job.run_dir / "checkpoints").exists() else ""
        overall.message(f"  start  {job.name}{resumed}")

    def finished(job, status):
        done[0] += 1
        elapsed = time.perf_counter() - t0
        eta = elapsed / done[0] * (len(jobs) - done[0])
        what = (f"best val {status['best_val_loss']:.4f}" if status.get("status") == "done"
                else f"FAILED: {status.get('error', '')}")
        overall.message(f"  {'done' if status.get('status') == 'done' else 'fail'}   {job.name}: {what} in "
                        f"{status.get('wall_s', 0):.1f}s  [{done[0]}/{len(jobs)}, ETA {duration(eta)}]")
        overall.update(1)
        if not (job.status_path.exists()):
            atomic_write_text(job.status_path, json.dumps(status))

    try:
        run_executor(jobs, n_workers, address, started, finished)
    finally:
        overall.close()


def duration(seconds: float) -> str:
    m, s = divmod(max(int(seconds), 0), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
