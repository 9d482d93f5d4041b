"""A study's one progress line: runs done / running / failed / left, the step each running run has
reached, and the ETA: the plan's prediction (lmlab.study.estimate) for what is left, corrected by
how the finished runs compared with theirs (without a plan, the mean time per finished run). A
failed run gets a line of its own, since its error is worth reading; each run's own output goes to
its log, status/<run>.log."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

from lmlab.progress import Progress

REFRESH_S = 1.0  # how often the line rereads the running runs' steps


class StudyLine:
    def __init__(self, tasks: list, workers: int, stream, predicted: dict[str, float] | None = None):
        self.total, self.workers, self.stream = len(tasks), workers, stream
        self.predicted = predicted or {}  # run -> predicted seconds
        self.running: dict[str, object] = {}
        self.since: dict[str, float] = {}  # run -> when it started
        self.ended: set[str] = set()
        self.done = self.failed = 0
        self.actual = self.expected = 0.0  # wall seconds of the finished runs, and their prediction
        self.t0 = time.perf_counter()
        self.lock = threading.RLock()  # note() reads eta() under it
        self.bar = Progress(self.total, desc="study", unit="run", position=0, stream=stream)

    def started(self, task) -> None:
        with self.lock:
            self.running[task.name] = task
            self.since[task.name] = time.perf_counter()
        self.refresh()

    def finished(self, task, status: dict) -> None:
        ok = status.get("status") == "done"
        with self.lock:
            self.running.pop(task.name, None)
            self.ended.add(task.name)
            self.done += ok
            self.failed += not ok
            if task.name in self.predicted and status.get("wall_s"):
                self.actual += status["wall_s"]
                self.expected += self.predicted[task.name]
        if not ok:
            self.bar.message(f"  {status.get('status', 'failed')} {task.name}: {status.get('error', '')}")
        self.bar.set(self.done + self.failed, self.note())

    def note(self) -> str:
        with self.lock:
            running = [f"{name} {step_of(task)}" for name, task in self.running.items()]
            left = self.total - self.done - self.failed - len(self.running)
            return (f"{self.done} done, {len(running)} running{' (' + ', '.join(running) + ')' if running else ''}, "
                    f"{self.failed} failed, {left} left, ETA {duration(self.eta())}")

    def eta(self) -> float:
        """Seconds left: the plan's prediction for the runs not finished (less what the running ones
        have done) x how far off it was on the finished ones, spread over the workers; without a
        plan, the elapsed time per finished run x the runs left."""
        now = time.perf_counter()
        with self.lock:
            if self.predicted:
                scale = self.actual / self.expected if self.expected else 1.0
                rest = sum(max(s * scale - (now - self.since[n] if n in self.since else 0.0), 0.0)
                           for n, s in self.predicted.items() if n not in self.ended)
                return rest / self.workers
            finished = self.done + self.failed
            return (now - self.t0) / finished * (self.total - finished) if finished else 0.0

    def refresh(self) -> None:
        self.bar.note(self.note())

    @contextmanager
    def refreshing(self):
        """Reread the running runs' steps every REFRESH_S while the executor runs."""
        stop = threading.Event()

        def loop():
            while not stop.wait(REFRESH_S):
                self.refresh()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        self.bar.close()


def step_of(task) -> str:
    """'step S/N' from the last training record of the run's metrics.jsonl ('starting' before one)."""
    try:
        with open(task.run_dir / "metrics.jsonl", "rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - 4096, 0))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "starting"
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "train":
            return f"step {record['step']}"
    return "starting"


def duration(seconds: float) -> str:
    m, s = divmod(max(int(seconds), 0), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
