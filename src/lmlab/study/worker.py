"""One run of a study, in whatever process an executor gives it: train from scratch, or resume
from `checkpoints/last` when an earlier attempt was interrupted. The outcome goes to a status
file beside the runs (written atomically), so a crashed process is still visible as 'no status'.

`python -m lmlab.study.worker RUN_DIR CONFIG.toml STATUS.json` is how local processes run it."""

from __future__ import annotations

import json
import os
import signal
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
        # a run killed before its first checkpoint starts again: train() empties the folder only while
        # holding its lock, and only of lmlab's own files (--force: a deleted checkpoint is retrained too)
        result = resume(run_dir) if resumed else train(load_config(config_path), run_dir, overwrite=True)
        status.update(status="done", resumed=resumed, steps=result.steps, best_val_loss=result.best_val_loss)
    except BaseException as err:  # noqa: BLE001 — a failed variant must not stop the study
        status.update(status="failed", error=one_line(err))
        if os.environ.get("LMLAB_STUDY_TRACEBACK"):
            traceback.print_exc()
        if isinstance(err, (KeyboardInterrupt, Interrupted)):  # Ctrl-C / SIGTERM: saved, resumed next time
            status["status"] = "interrupted"
    status["wall_s"] = time.perf_counter() - t0
    status["attempts"] = record_attempt(Path(status_path), status)
    atomic_write_text(Path(status_path), json.dumps(status, indent=1))
    return status


def record_attempt(status_path: Path, status: dict) -> list[dict]:
    """Every attempt at this run so far, this one appended (STATUS.attempts.jsonl beside the status,
    which each attempt replaces): the study's wall_s is their sum, not the last attempt's."""
    from lmlab.io import MetricsLog, iter_jsonl

    path = status_path.with_name(status_path.stem + ".attempts.jsonl")
    log = MetricsLog(path)
    log.write({k: status.get(k) for k in ("status", "wall_s", "resumed")})
    log.close()
    return list(iter_jsonl(path, quiet=True))


def die_with_parent(parent: int = 0) -> None:
    """Stop (SIGTERM: save and record 'interrupted') when the process that started this worker
    (the study, or a warm worker's server; default $LMLAB_STUDY_PARENT) dies, however it dies, even
    by SIGKILL: an orphaned worker would train on unseen and hold its run. Linux's parent-death
    signal; elsewhere the study's own Ctrl-C reaches it."""
    parent = parent or int(os.environ.get("LMLAB_STUDY_PARENT", "0"))
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # until training installs its own handler (save, then stop), SIGTERM stops like Ctrl-C: the
    # run is recorded as interrupted instead of leaving no status at all
    signal.signal(signal.SIGTERM, _interrupt)
    if parent and os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    die_with_parent()
    run_dir, config_path, status_path = argv[:3]
    threads = int(argv[3]) if len(argv) > 3 else 0
    return 0 if run_one(run_dir, config_path, status_path, threads)["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
