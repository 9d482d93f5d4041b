"""The local executor's pool of warm workers (lmlab.study.forkserver), one per slot: each slot
thread hands its worker one run at a time and reports back to the calling thread, which alone
calls `started` / `finished`. A run killed in its child (the OOM killer, a crash) is one failed
run; a worker that dies is restarted once; a worker that cannot start (a broken environment) is
named in the runs' errors, and when no worker is left the runs not yet started are failed with
that line, never waited on. Ctrl-C or SIGTERM here stops every worker's run (saved, recorded
'interrupted', resumed by the next run of the study)."""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lmlab.study.tasks import DEFER_FIGURES, Finished, RunTask, Started, read_status

START_TIMEOUT = 300.0  # seconds a worker may take to import torch on a loaded machine
SERVER = [sys.executable, "-m", "lmlab.study.forkserver"]  # what a worker runs (tests break it on purpose)


class WorkerDied(Exception):
    """A warm worker (not a run) ended or never started; the message says how and what to do."""


class WarmWorker:
    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "LMLAB_STUDY_PARENT": str(os.getpid()),  # it stops when this process dies
               DEFER_FIGURES: "1"}  # the study draws them once (lmlab.study.shared)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         text=True, env=env)
        if "ready" not in self.read(START_TIMEOUT):
            raise WorkerDied(f"a warm worker did not start: {self.log_path}")

    def read(self, timeout: float | None = None) -> dict:
        out = self.proc.stdout
        if timeout is not None and not select.select([out], [], [], timeout)[0]:
            self.kill()
            raise WorkerDied(f"a warm worker did not start within {timeout:.0f} s (see {self.log_path})")
        line = out.readline()
        if not line:
            code = self.proc.wait()
            raise WorkerDied(f"a warm worker exited with code {code}{self.tail()}; check that "
                             f"`{sys.executable} -m lmlab.study.forkserver` starts, or use --executor process")
        return json.loads(line)

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" ({lines[-1][:200]})" if lines else ""

    def run(self, task: RunTask, started) -> dict:
        task.status_path.unlink(missing_ok=True)
        req = {"run_dir": str(task.run_dir), "config_path": str(task.config_path),
               "status_path": str(task.status_path), "threads": task.threads, "log_path": str(task.log_path)}
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except OSError:
            self.read()  # names how the worker ended
        self.read()  # {"pid": ...}: the run's child has started
        started(task)
        end = self.read()
        if "signal" in end:
            oom = " (the out-of-memory killer? see `dmesg`)" if end["signal"] == "SIGKILL" else ""
            return read_status(task, f"killed by {end['signal']}{oom}")
        return read_status(task, f"worker exited with code {end.get('code')}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: the server passes it to its run (which saves) and then exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # the server's loop ends; it exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc.stdout.close()


class Pool:
    def __init__(self, tasks: list[RunTask], workers: int):
        folder = tasks[0].status_path.parent
        self.todo: queue.Queue = queue.Queue()
        for task in tasks:
            self.todo.put(task)
        self.events: queue.Queue = queue.Queue()  # ("started" | "finished", task, status)
        self.workers = [WarmWorker(folder / f"worker-{i}.log") for i in range(max(1, min(workers, len(tasks))))]
        self.alive = len(self.workers)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def slot(self, worker: WarmWorker) -> None:
        """One worker's thread: start it, then run tasks until none is left or the pool stops."""
        error = None
        try:
            worker.start()
        except WorkerDied as err:
            error = str(err)
        while error is None and not self.stopping.is_set():
            try:
                task = self.todo.get_nowait()
            except queue.Empty:
                break
            error = self.one(worker, task)
        worker.close()
        with self.lock:
            self.alive -= 1
            last = self.alive == 0
        if error is not None and last:
            self.fail_rest(error)

    def one(self, worker: WarmWorker, task: RunTask) -> str | None:
        """Run `task`; a worker that dies under it fails the task and is restarted once (an error if not)."""
        try:
            status = worker.run(task, lambda t: self.events.put(("started", t, None)))
        except WorkerDied as err:
            status = read_status(task, str(err))
            self.events.put(("finished", task, status))
            if self.stopping.is_set():
                return None
            try:
                worker.close()
                worker.start()
            except WorkerDied as again:
                return str(again)
            return None
        self.events.put(("finished", task, status))
        return None

    def fail_rest(self, error: str) -> None:
        """No worker is left: the runs not yet started are failed with the reason, not waited on."""
        while True:
            try:
                task = self.todo.get_nowait()
            except queue.Empty:
                return
            self.events.put(("finished", task, {"run": task.name, "status": "failed", "error": error}))

    def stop(self) -> None:
        self.stopping.set()
        for worker in self.workers:
            worker.stop()


def run_pool(tasks: list[RunTask], workers: int, started: Started, finished: Finished) -> None:
    pool = Pool(tasks, workers)
    threads = [threading.Thread(target=pool.slot, args=(w,), daemon=True) for w in pool.workers]
    for t in threads:
        t.start()
    left = len(tasks)
    try:
        while left and any(t.is_alive() for t in threads) or not pool.events.empty():
            try:
                kind, task, status = pool.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "started":
                started(task)
            else:
                finished(task, status)
                left -= 1
    except BaseException:  # Ctrl-C, SIGTERM: every run saves and records itself; then stop
        pool.stop()
        _drain(pool, threads, finished)
        raise


def _drain(pool: Pool, threads: list[threading.Thread], finished: Finished) -> None:
    """Record the runs that were stopping (their status says 'interrupted'); a second Ctrl-C kills."""
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        for worker in pool.workers:
            worker.stop(signal.SIGKILL)
    while not pool.events.empty():
        kind, task, status = pool.events.get_nowait()
        if kind == "finished":
            finished(task, status)
