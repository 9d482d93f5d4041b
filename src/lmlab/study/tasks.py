"""What an executor is handed and what it hands back: a run to train (RunTask) and, when the
run's process died before writing its status, a failed status naming how it ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class RunTask:
    """One run handed to an executor: where it trains, its config, where its outcome and log go."""
    name: str
    run_dir: Path
    config_path: Path
    status_path: Path
    threads: int

    @property
    def log_path(self) -> Path:  # the run's stdout and stderr (beside its status; the run folder is train's)
        return self.status_path.with_suffix(".log")


Started = Callable[[RunTask], None]
Finished = Callable[[RunTask, dict], None]
DEFER_FIGURES = "LMLAB_DEFER_FIGURES"  # lmlab.train.job's switch (not imported: it imports torch)
RunAll = Callable[[list[RunTask], int, str, Started, Finished], None]


def read_status(task: RunTask, how: str = "") -> dict:
    """The status the run wrote; none (the process died first) is a failure naming how it ended
    (`how`) and the last line of its log."""
    try:
        return json.loads(task.status_path.read_text())
    except (OSError, ValueError):
        return {"run": task.name, "status": "failed", "error": f"{how or 'its worker died'}{log_tail(task)}"}


def log_tail(task: RunTask) -> str:
    try:
        lines = task.log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1][:240]}" if lines else ""
