"""Executors run a study's pending runs: `local` (warm workers on this machine: each a process that
imported torch once and forks a child per run, lmlab.study.warm), `process` (a fresh Python
process per run: slower to start, nothing shared) and `ray` (each run a Ray task on a running
cluster, every task writing to the shared study directory). All call lmlab.study.worker; the
runner only sees callbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, TextIO

from lmlab.errors import UserError
from lmlab.registry import Registry
from lmlab.study.tasks import DEFER_FIGURES, Finished, RunAll, RunTask, Started, read_status  # noqa: F401 (API)

# The executor is a command-line choice, not part of any run's config.
EXECUTORS = Registry("study.executor", config_field=False)


@dataclass(frozen=True)
class Executor:
    run: RunAll  # (tasks, workers, address, started, finished)
    check: Callable[[str], None] | None = None  # refuses a bad --address before the study writes anything


@dataclass
class Execution:
    """How a study executes its runs, as the command line asked."""
    workers: int | str = "auto"
    executor: str = "local"
    address: str = ""
    stream: TextIO | None = None


def get_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise UserError(f"--executor {name!r}; valid: {', '.join(EXECUTORS.names())}")
    return EXECUTORS[name]


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


def run_processes(tasks: list[RunTask], workers: int, address: str, started: Started, finished: Finished) -> None:
    """A fresh process per run (`python -m lmlab.study.worker`), `workers` at a time."""
    def one(task: RunTask) -> dict:
        env = {**os.environ, "OMP_NUM_THREADS": str(task.threads), "MKL_NUM_THREADS": str(task.threads),
               "LMLAB_STUDY_PARENT": str(os.getpid()),  # the worker stops when this process dies
               DEFER_FIGURES: "1"}  # the study draws them once (lmlab.study.shared)
        cmd = [sys.executable, "-m", "lmlab.study.worker", str(task.run_dir), str(task.config_path),
               str(task.status_path), str(task.threads)]
        task.status_path.unlink(missing_ok=True)
        started(task)
        with open(task.log_path, "w") as log:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        return read_status(task, f"worker exited with code {proc.returncode}")

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = {pool.submit(one, task): task for task in tasks}
        for fut in as_completed(futures):
            finished(futures[fut], fut.result())


def run_warm(tasks: list[RunTask], workers: int, address: str, started: Started, finished: Finished) -> None:
    from lmlab.study.warm import run_pool

    run_pool(tasks, workers, started, finished)


def _ray_task(run_dir: str, config_path: str, status_path: str, threads: int) -> dict:
    from lmlab.study.worker import run_one

    return run_one(run_dir, config_path, status_path, threads)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Ray must be installed, and an address (HOST:PORT or ray://HOST:PORT) must answer, before a
    study writes anything: `ray.init` retries an unreachable one for minutes. "" (a local Ray) and
    "auto" are not dialled."""
    import socket

    from lmlab.errors import need

    need("ray", "--executor ray")
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


def run_ray(tasks: list[RunTask], workers: int, address: str, started: Started, finished: Finished) -> None:
    """Each run a Ray task on the cluster at `address` (default: a local Ray started here)."""
    from lmlab.errors import need

    ray = need("ray", "--executor ray")
    if not ray.is_initialized():
        ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
    pending = {}
    for task in tasks:
        task.status_path.unlink(missing_ok=True)
        remote = ray.remote(num_cpus=task.threads)(_ray_task)
        ref = remote.remote(str(task.run_dir), str(task.config_path), str(task.status_path), task.threads)
        pending[ref] = task
        started(task)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(done[0])
        try:
            status = ray.get(done[0])
        except Exception as err:  # noqa: BLE001 — a lost worker is one failed run
            status = read_status(task) if task.status_path.exists() else {
                "run": task.name, "status": "failed", "error": f"ray task failed: {str(err).splitlines()[0][:240]}"}
        finished(task, status)


EXECUTORS.register("local", "warm workers on this machine (torch imported once, a forked child per run)")(
    Executor(run_warm))
EXECUTORS.register("process", "a fresh Python process per run on this machine")(Executor(run_processes))
EXECUTORS.register("ray", "each run a Ray task (pip install 'lmlab[ray]'; --address HOST:PORT)")(
    Executor(run_ray, check_ray_address))
