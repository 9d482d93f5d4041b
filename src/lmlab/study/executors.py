"""Executors run a study's pending runs: `local` (separate processes on this machine, CPU threads
divided between them) and `ray` (each run a Ray task on a running cluster, every task writing
to the shared study directory). Both call lmlab.study.worker; the runner only sees callbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmlab.errors import UserError

# Not an lmlab.registry.Registry: those map config fields (checked by config.check_choices), and
# the executor is a command-line choice, not part of any run's config.
EXECUTORS: dict[str, Callable] = {}


def executor(name: str):
    def add(fn):
        EXECUTORS[name] = fn
        return fn
    return add


def get_executor(name: str) -> Callable:
    if name not in EXECUTORS:
        raise UserError(f"--executor {name!r}; valid: {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


@dataclass
class Job:
    name: str
    run_dir: Path
    config_path: Path
    status_path: Path
    threads: int


Started = Callable[[Job], None]
Finished = Callable[[Job, dict], None]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def auto_workers(n_runs: int, params: int) -> int:
    """Small models barely use a second core (bench/bench_study.py): one single-thread process
    per core beats one multi-thread process; larger ones (>= 5M parameters) run one at a time
    with every core."""
    if params >= 5_000_000:
        return 1
    return max(1, min(n_runs, cpu_count()))


def _read_status(job: Job, proc: subprocess.CompletedProcess | None = None) -> dict:
    try:
        return json.loads(job.status_path.read_text())
    except (OSError, ValueError):
        tail = (proc.stderr or "").strip().splitlines()[-1:] if proc is not None else []
        code = proc.returncode if proc is not None else "?"
        return {"run": job.name, "status": "failed",
                "error": f"worker exited with code {code}" + (f": {tail[0][:240]}" if tail else "")}


@executor("local")
def run_local(jobs: list[Job], workers: int, address: str, started: Started, finished: Finished) -> None:
    """Separate processes on this machine (`--workers N`, CPU threads divided between them)."""
    def one(job: Job) -> dict:
        env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "MKL_NUM_THREADS": str(job.threads),
               "LMLAB_STUDY_PARENT": str(os.getpid())}  # the worker stops when this process dies
        cmd = [sys.executable, "-m", "lmlab.study.worker", str(job.run_dir), str(job.config_path),
               str(job.status_path), str(job.threads)]
        job.status_path.unlink(missing_ok=True)
        started(job)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return _read_status(job, proc)

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = {pool.submit(one, job): job for job in jobs}
        for fut in as_completed(futures):
            finished(futures[fut], fut.result())


def _ray_task(run_dir: str, config_path: str, status_path: str, threads: int) -> dict:
    from lmlab.study.worker import run_one

    return run_one(run_dir, config_path, status_path, threads)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A Ray address (HOST:PORT or ray://HOST:PORT) must answer before a study writes anything:
    `ray.init` retries an unreachable one for minutes. "" (a local Ray) and "auto" are not checked."""
    import socket

    if not address or address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--address {address!r} is not valid; expected HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise UserError(f"--address {address}: no Ray cluster answers there ({err.strerror or err}); "
                        f"start one with `ray start --head`, or drop --address for a local Ray") from None


@executor("ray")
def run_ray(jobs: list[Job], workers: int, address: str, started: Started, finished: Finished) -> None:
    """Each run a Ray task on the cluster at `address` (default: a local Ray started here)."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'lmlab[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
    pending = {}
    for job in jobs:
        job.status_path.unlink(missing_ok=True)
        task = ray.remote(num_cpus=job.threads)(_ray_task)
        ref = task.remote(str(job.run_dir), str(job.config_path), str(job.status_path), job.threads)
        pending[ref] = job
        started(job)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        try:
            status = ray.get(done[0])
        except Exception as err:  # noqa: BLE001 — a lost worker is one failed run
            status = _read_status(job) if job.status_path.exists() else {
                "run": job.name, "status": "failed", "error": f"ray task failed: {str(err).splitlines()[0][:240]}"}
        finished(job, status)
