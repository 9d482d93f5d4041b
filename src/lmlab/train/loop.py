"""The training loop. It only sequences calls, in the order `train_loop` states: each step is
taken (step.py), judged, accounted for, agreed on across ranks, reported and checkpointed
(phases.py); evaluation and saving live in checkpointing.py, the run's construction in job.py."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lmlab.config import RunConfig
from lmlab.errors import StorageError
from lmlab.train import phases
from lmlab.train.checkpointing import kept_note, save  # noqa: F401  (save: re-exported for fault tests)
from lmlab.train.distributed import teardown
from lmlab.train.job import Job, new_job, resume_job
from lmlab.train.phases import Loop, Step
from lmlab.train.schedule import lr_at
from lmlab.train.step import set_lr, train_step


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    metrics: dict  # the last evaluation
    best_val_loss: float
    best_step: int
    stopped_early: bool
    train_time: float
    tokens_per_s: float
    idle: str = ""  # why a resumed run had no step left to train ("already finished at step N; ..."), else ""


def train(cfg: RunConfig, run_dir: str | Path, overwrite: bool = False) -> TrainResult:
    """Train a new run from `cfg` into `run_dir` (on every rank, under torchrun)."""
    return run_distributed(new_job(cfg, run_dir, overwrite))


def resume(run_dir: str | Path, overrides: dict[str, str] | None = None) -> TrainResult:
    """Continue a run from its `last` checkpoint; on CPU the result is bit-identical to an
    uninterrupted run (same batches, same RNG, same optimizer state)."""
    return run_distributed(resume_job(run_dir, overrides))


def run_distributed(job: Job) -> TrainResult:
    try:
        return run_job(job)
    finally:
        teardown(job.dist)


def run_job(job: Job) -> TrainResult:
    """Train until max_steps; holds the run's lock throughout and releases it however it ends."""
    try:
        with StopSignals() as stop:
            return train_loop(job, stop)
    except OSError as err:  # disk full, file-size limit, a folder made read-only
        raise StorageError(f"could not write {err.filename or 'into ' + str(job.run.root)}: "
                           f"{err.strerror or err}; {kept_note(job)}; free space and continue with "
                           f"`lmlab train --resume {job.run.root}`") from None
    finally:
        job.run.unlock()


def train_loop(job: Job, stop: "StopSignals") -> TrainResult:
    """Step until the budget, early stopping, train.max_time or a stop signal ends the run."""
    loop = phases.begin(job)
    try:
        phases.keep_if_due(job, loop.last_eval)  # step 0: the initialization
        while not phases.finished(job):
            step = take_step(job, loop)
            phases.judge_step(job, loop, step)
            phases.account(job, loop, step)
            stopping = phases.agree_to_stop(job, loop, stop)
            phases.report_step(job, loop, step)
            phases.checkpoint_if_due(job, loop, stopping)
            phases.stop_if_asked(job, loop, stopping)
        phases.finish(job, loop)
    finally:
        loop.close()
    state = job.state
    return TrainResult(job.run.root, state.step, loop.last_eval, state.best_val, state.best_step, state.stopped_early,
                       state.train_time, state.tokens / max(state.train_time, 1e-9),
                       nothing_to_train(job) if state.step == loop.first_step > 0 else "")


def nothing_to_train(job: Job) -> str:
    """Why a resumed run trained no step, and (when one does) the setting that gives it more: resume
    takes no overrides, so the run's own config.toml is where to raise it."""
    state, cfg = job.state, job.cfg.train
    if state.stopped_early:
        return f"stopped early at step {state.step} (train.patience={cfg.patience}); nothing to train"
    if state.stopped_by_time:
        return f"stopped at train.max_time={cfg.max_time:g}s at step {state.step}; nothing to train"
    budget = "train.epochs" if cfg.epochs else "train.max_steps" + (" and train.max_tokens" if cfg.max_tokens else "")
    return f"already finished at step {state.step}; nothing to train (raise {budget} in {job.run.config} to continue)"


def take_step(job: Job, loop: Loop) -> Step:
    """One optimizer step at the scheduled lr (train.debug_nan_at_step poisons its loss)."""
    cfg, state = job.cfg.train, job.state
    lr = lr_at(state.step, cfg)
    set_lr(job.optimizer, lr)
    t0 = time.perf_counter()
    outcome = train_step(loop.step_model, job.optimizer, job.batches, state.step, job.precision, job.device,
                         grad_clip=cfg.grad_clip, dist=job.dist, inject_nan=state.step + 1 == cfg.debug_nan_at_step,
                         skip_nonfinite=state.skipped < cfg.skip_nonfinite)
    return Step(outcome, lr, time.perf_counter() - t0, job.step_tokens(state.step))


class StopSignals:
    """SIGTERM (preemption) and SIGINT (Ctrl-C) during training set a flag instead of killing the
    process: the loop finishes its step, saves `last` and stops cleanly. A second SIGINT while
    stopping interrupts at once. SIGXFSZ is ignored so a file-size limit is an error, not a kill."""

    def __init__(self):
        self.received: str | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
            self._old[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
