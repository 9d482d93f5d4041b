"""Executing a study's runs: skip those whose status says done, resume interrupted ones (the
worker does), and show one study-level progress line (lmlab.study.live)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lmlab.io import atomic_write_text, iter_jsonl
from lmlab.runs import RunDir
from lmlab.study import executors
from lmlab.study.executors import Execution
from lmlab.study.expand import RunPlan
from lmlab.study.estimate import forecast, worker_layout
from lmlab.study.live import StudyLine, duration
from lmlab.study.shared import warm_data


def status_of(out: Path, name: str) -> dict:
    """The run's status record. 'done' holds only while the run's folder proves it (a checkpoint
    and an evaluation in its metrics): a deleted or emptied run folder is 'lost', trained again on
    the next run of the study, and never counted in a table."""
    path = out / "status" / f"{name}.json"
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(status, dict):
        return {}
    if status.get("status") == "done" and not proves_done(out / "runs" / name):
        status = {**status, "status": "lost",
                  "error": "(its run folder no longer holds a checkpoint and evaluation; the next run of the "
                           "study trains it again)"}
    return status


def proves_done(run_dir: Path) -> bool:
    run = RunDir(run_dir)
    return run.has_checkpoint("last") and any(r.get("kind") == "eval" for r in iter_jsonl(run.metrics, quiet=True))


def pending_runs(runs: list[RunPlan], out: Path, stream) -> list[RunPlan]:
    """The runs still to train, saying which were skipped (done) and which lost their folder."""
    pending = [r for r in runs if status_of(out, r.name).get("status") != "done"]
    skipped = len(runs) - len(pending)
    if skipped:
        print(f"lmlab: {skipped} of {len(runs)} runs already finished; skipping them", file=stream)
    lost = [r.name for r in pending if status_of(out, r.name).get("status") == "lost"]
    if lost:
        print(f"lmlab: {len(lost)} finished runs lost their folder's checkpoint or metrics "
              f"({', '.join(lost[:5])}{'...' if len(lost) > 5 else ''}); training them again", file=stream)
    return pending


def execute(runs: list[RunPlan], out: Path, execution: Execution) -> None:
    stream = execution.stream or sys.stderr
    executor = executors.get_executor(execution.executor)
    pending = pending_runs(runs, out, stream)
    if not pending:
        return
    if execution.workers != "auto" and int(execution.workers) > len(pending):
        print(f"lmlab: --workers {execution.workers} is more than the {len(pending)} runs to train; "
              f"using {len(pending)}", file=stream)
    n_workers, threads = worker_layout(pending, execution.workers)
    warm_data(pending)  # once per distinct data config, before two workers race to tokenize it
    fc = forecast(pending, n_workers, threads, execution.executor, strict=False)
    tasks = []
    for r in pending:
        cfg = r.cfg.replace(train={"threads": threads})
        cfg_path = out / "status" / f"{r.name}.config.toml"
        cfg.save(cfg_path)
        tasks.append(executors.RunTask(r.name, out / "runs" / r.name, cfg_path, out / "status" / f"{r.name}.json",
                                       threads))
    print(f"lmlab: {len(tasks)} runs on {execution.executor} ({n_workers} workers x {threads} threads); "
          f"predicted {duration(fc.wall_s)}", file=stream, flush=True)
    line = StudyLine(tasks, n_workers, stream, fc.seconds)
    t0 = time.perf_counter()

    def finished(task, status):
        line.finished(task, status)
        if not task.status_path.exists():
            atomic_write_text(task.status_path, json.dumps(status))

    try:
        with line.refreshing():
            executor.run(tasks, n_workers, execution.address, line.started, finished)
    finally:
        line.close()
    took = time.perf_counter() - t0
    print(f"lmlab: took {duration(took)}, predicted {duration(fc.wall_s)}", file=stream, flush=True)
    atomic_write_text(out / "timing.json", json.dumps(fc.record(took), indent=1))
