"""One run of a study, in whatever process an executor gives it: train from scratch, or resume
from `checkpoints/last` when an earlier attempt was interrupted. The outcome goes to a status
file beside the runs (written atomically), so a crashed process is still visible as 'no status'.

`python -m lmlab.study.worker RUN_DIR CONFIG.toml STATUS.json` is how local processes run it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from lmlab.runs import RunDir, atomic_write_text


def one_line(err: BaseException) -> str:
    msg = str(err).strip().splitlines()
    return f"{type(err).__name__}: {msg[0] if msg else ''}"[:300]


def run_one(run_dir: str, config_path: str, status_path: str, threads: int = 0) -> dict:
    """Train or resume one run; never raises for a failing run (its error is the status)."""
    import torch

    from lmlab.config import load_config
    from lmlab.errors import Interrupted
    from lmlab.train import resume, train

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    status: dict = {"run": Path(run_dir).name, "pid": os.getpid()}
    try:
        resumed = Path(run_dir, "config.toml").is_file() and RunDir(run_dir).has_checkpoint("last")
        if not resumed and Path(run_dir).exists():
            shutil.rmtree(run_dir)  # killed before its first checkpoint: start it again (runs/ is the study's)
        result = resume(run_dir) if resumed else train(load_config(config_path), run_dir)
        status.update(status="done", resumed=resumed, steps=result.steps, best_val_loss=result.best_val_loss)
    except BaseException as err:  # noqa: BLE001 — a failed variant must not stop the study
        status.update(status="failed", error=one_line(err))
        if os.environ.get("LMLAB_STUDY_TRACEBACK"):
            traceback.print_exc()
        if isinstance(err, (KeyboardInterrupt, Interrupted)):  # Ctrl-C / SIGTERM: saved, resumed next time
            status["status"] = "interrupted"
    status["wall_s"] = time.perf_counter() - t0
    atomic_write_text(Path(status_path), json.dumps(status, indent=1))
    return status


def main(argv: list[str]) -> int:
    run_dir, config_path, status_path = argv[:3]
    threads = int(argv[3]) if len(argv) > 3 else 0
    return 0 if run_one(run_dir, config_path, status_path, threads)["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
