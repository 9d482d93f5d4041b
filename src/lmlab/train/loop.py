"""The training loop. It only sequences calls; each box lives in its own module:
job (build / resume), step (one optimizer step), schedule (lr), eval (metrics),
checkpoint (save), loggers (metrics.jsonl and trackers), progress (the bar)."""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lmlab.checkpoint import all_finite, save_checkpoint
from lmlab.config import RunConfig
from lmlab.errors import Interrupted, LmlabError, StorageError, TrainingDiverged
from lmlab.eval import evaluate
from lmlab.io import fault_point
from lmlab.runs import step_checkpoint
from lmlab.train.distributed import checkpoint_state, teardown
from lmlab.train.job import Job, new_job, resume_job, rng_tensors
from lmlab.train.loggers import FanOut, open_loggers
from lmlab.train.memory import describe, peak_memory_mb, predict_run
from lmlab.train.optim import describe as describe_optimizer
from lmlab.train.mfu import format_mfu
from lmlab.train.progress import Progress
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
            return _run(job, stop)
    except OSError as err:  # disk full, file-size limit, a folder made read-only
        raise StorageError(f"could not write {err.filename or 'into ' + str(job.run.root)}: "
                           f"{err.strerror or err}; {_kept(job)}; free space and continue with "
                           f"`lmlab train --resume {job.run.root}`") from None
    finally:
        job.run.unlock()


def _run(job: Job, stop: "StopSignals") -> TrainResult:
    cfg, state = job.cfg.train, job.state
    bar = Progress(cfg.max_steps, state.step, enabled=cfg.progress and job.dist.is_main)
    if bar.enabled:
        verb = f"resuming at step {state.step}" if state.step else "training"
        bar.message(f"lmlab: {verb} {job.cfg.name} into {job.run.root} on {job.device} ({job.precision.name}, "
                    f"{describe_optimizer(job.optimizer)}); "
                    f"{job.model.summary(cfg.batch_size, job.value_bytes)}; {job.meter.describe()}; "
                    f"{describe(*predict_run(job.model, cfg.batch_size, job.value_bytes, job.optimizer, cfg.grad_accum))}")
    # metrics.jsonl + the configured trackers, written by rank 0 alone
    log = open_loggers(job.cfg, job.run) if job.dist.is_main else FanOut([])
    step_model = torch.compile(job.train_model) if cfg.compile else job.train_model
    if cfg.compile:
        bar.message("lmlab: train.compile: the first step compiles the model (about half a minute on a small "
                    "CPU, seconds once torch has cached it)")
    last_eval: dict = {}
    t_start, elapsed_before, first_step = time.perf_counter(), state.elapsed, state.step
    keep_if_due(job, last_eval)  # step 0: the initialization
    try:
        while state.step < cfg.max_steps and not (state.stopped_early or state.stopped_by_time):
            t0 = time.perf_counter()
            lr = lr_at(state.step, cfg)
            set_lr(job.optimizer, lr)
            step_tokens = job.step_tokens(state.step)
            counts = {}
            loss, grad_norm = train_step(step_model, job.optimizer, job.batches, state.step, cfg.grad_accum,
                                         cfg.grad_clip, job.precision, job.device, job.dist,
                                         inject_nan=state.step + 1 == cfg.debug_nan_at_step,
                                         skip_nonfinite=state.skipped < cfg.skip_nonfinite, counts=counts)
            dt = time.perf_counter() - t0
            finite = math.isfinite(loss) and math.isfinite(grad_norm)
            if not finite and state.skipped < cfg.skip_nonfinite:
                state.skipped += 1
                bar.message(f"lmlab: warning: step {state.step + 1}: loss {loss}, grad norm {grad_norm}; skipped "
                            f"it without an update ({state.skipped} of train.skip_nonfinite={cfg.skip_nonfinite})")
                log.write({"kind": "skip", "step": state.step + 1, "loss": str(loss), "grad_norm": str(grad_norm),
                           "skipped": state.skipped})
            else:
                check_finite(loss, job, bar)
            if state.step == 0 and not hasattr(job.model, "fit") and finite:
                warn_initial_loss(loss, job.tokenizer.vocab_size, bar)
            state.step += 1
            fault_point("train:step")
            state.tokens += step_tokens
            state.train_time += dt
            if finite:
                state.epoch_loss_sum += loss
                state.epoch_loss_steps += 1
            state.elapsed = elapsed_before + time.perf_counter() - t_start
            # every rank decides on the same flags, read once here (a signal that comes later counts
            # at the next step): else one rank stops while another blocks in the next all-reduce
            stopping, out_of_time = job.dist.agree(
                [stop.received is not None, bool(cfg.max_time) and state.elapsed >= cfg.max_time], job.device)
            reason = stop.received or "a stop signal to another rank"
            if out_of_time:
                state.stopped_by_time = True
            scored_share = counts["scored"] / max(counts["positions"], 1)  # positions with a loss
            mfu = job.meter.mfu(step_tokens / dt, scored_share)
            peak_mb = peak_memory_mb(job.device)  # a /proc read: once per step, for the log and the bar
            if finite and (state.step % cfg.log_every == 0 or state.step == cfg.max_steps):
                log.write({"kind": "train", "step": state.step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                           "tokens": state.tokens, "tokens_per_s": step_tokens / dt,
                           "elapsed_s": state.elapsed, "train_time_s": state.train_time,
                           "peak_mem_mb": peak_mb, "mfu": mfu, "scored_share": scored_share})
            if finite:
                bar.update(state.step, loss, step_tokens / dt,
                           f" MFU {format_mfu(mfu)}" + (f" val {last_eval['loss']:.4f}" if last_eval else "")
                           + f" mem {peak_mb / 1024:.2f} GiB")
            epoch_end = job.epoch_mode and state.step % job.batches.steps_per_epoch == 0
            if (state.step % job.cfg.eval.every == 0 or state.step == cfg.max_steps or epoch_end
                    or state.stopped_by_time):
                last_eval = evaluate_and_save(job, log, bar, epoch_end)
                state.elapsed = elapsed_before + time.perf_counter() - t_start
            elif (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) or stopping:
                save(job, "last", last_eval)
            keep_if_due(job, last_eval)
            if stopping and state.step < cfg.max_steps and not (state.stopped_early or state.stopped_by_time):
                log.flush()
                raise Interrupted(f"{reason} at step {state.step}: saved {job.run.checkpoint('last')}; "
                                  f"continue with `lmlab train --resume {job.run.root}`")
        if state.stopped_by_time:
            bar.message(f"lmlab: train.max_time={cfg.max_time:g}s reached at step {state.step}; evaluated and saved")
    finally:
        log.close()
        bar.close()
    return TrainResult(job.run.root, state.step, last_eval, state.best_val, state.best_step, state.stopped_early,
                       state.train_time, state.tokens / max(state.train_time, 1e-9),
                       nothing_to_train(job) if state.step == first_step > 0 else "")


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


def _kept(job: Job) -> str:
    try:
        if job.run.has_checkpoint():
            return f"{job.run.checkpoint('last')} (step {_saved_step(job)}) is intact"
    except LmlabError:
        pass
    return "no checkpoint had been saved yet"


def evaluate_and_save(job: Job, log: FanOut, bar: Progress, epoch_end: bool = False) -> dict:
    """Evaluate on validation, log it (and the epoch's summary at an epoch's end), keep `best`,
    save `last`, and apply early stopping."""
    state, ecfg = job.state, job.cfg.eval
    metrics = evaluate(job.model, job.data.splits["val"], job.tokenizer, job.cfg.model.context_len,
                       ecfg.batch_size or job.cfg.train.batch_size, ecfg.max_tokens, job.device,
                       job.precision.autocast)
    if not math.isfinite(metrics["loss"]):
        raise TrainingDiverged(f"validation loss is {metrics['loss']} at step {state.step}; "
                               f"{job.run.checkpoint('last')} keeps the last good state")
    log.write({"kind": "eval", "step": state.step, "elapsed_s": state.elapsed,
               **{f"val_{k}": v for k, v in metrics.items()}})
    if epoch_end:
        log.write(epoch_record(job, metrics))
    log.flush()
    if metrics["loss"] < state.best_val:
        state.best_val, state.best_step, state.bad_evals = metrics["loss"], state.step, 0
        save(job, "best", metrics)
    else:
        state.bad_evals += 1
        patience = job.cfg.train.patience
        if patience and state.bad_evals >= patience:
            state.stopped_early = True
            bar.message(f"early stop at step {state.step}: no better val loss for {patience} evaluations "
                        f"(best {state.best_val:.4f} at step {state.best_step})")
    save(job, "last", metrics)
    return metrics


def epoch_record(job: Job, metrics: dict) -> dict:
    """The per-epoch row the seed studies tabulate: mean train loss over the epoch's steps, val
    metrics at its end, and the gap between them. Resets the epoch's running sum."""
    state = job.state
    train_loss = state.epoch_loss_sum / max(state.epoch_loss_steps, 1)
    state.epoch_loss_sum, state.epoch_loss_steps = 0.0, 0
    return {"kind": "epoch", "epoch": job.batches.epoch_of(state.step - 1) + 1, "step": state.step,
            "tokens": state.tokens, "elapsed_s": state.elapsed, "train_loss": train_loss,
            **{f"val_{k}": v for k, v in metrics.items()}, "gap": metrics["loss"] - train_loss}


def save(job: Job, which: str, metrics: dict) -> None:
    """Save a checkpoint, never one holding NaN or inf (that would poison every resume)."""
    if not all_finite(job.model):
        raise TrainingDiverged(f"the weights hold NaN or inf at step {job.state.step}; not saving them. "
                               f"{_kept(job)}")
    meta = {"step": job.state.step, "state": job.state.to_dict(), "metrics": metrics,
            "config": job.cfg.to_dict(), "tokenizer": job.tokenizer.kind,
            "data_position": {"step": job.state.step, "seed": job.cfg.train.seed},
            "precision": job.precision.name, "device": str(job.device),
            "tokenizer_sha256": _tokenizer_sha(job)}
    if job.precision.scaler is not None:
        meta["scaler"] = job.precision.scaler.state_dict()
    model, optimizer, rng = checkpoint_state(job, rng_tensors())  # collective: every rank takes part
    meta["world_size"] = job.dist.world
    if job.dist.is_main:
        save_checkpoint(job.run.checkpoint(which), model, optimizer, meta, rng)
    job.dist.barrier()


def _tokenizer_sha(job: Job) -> str | None:
    from lmlab.checkpoint import sha256_file
    from lmlab.tokenizer.base import FILE_NAME

    file = job.run.tokenizer / FILE_NAME
    return sha256_file(file) if file.is_file() else None

def keep_if_due(job: Job, metrics: dict) -> None:
    """train.keep_checkpoints (e.g. "log"): also save checkpoints/step-XXXXXX at the kept steps."""
    from lmlab.train.keep import KEEP

    cfg = job.cfg.train
    if KEEP.get(cfg.keep_checkpoints)(job.state.step, cfg, job.cfg.eval.every):
        save(job, step_checkpoint(job.state.step), metrics)


def check_finite(loss: float, job: Job, bar: Progress) -> None:
    if not math.isfinite(loss):
        last = job.run.checkpoint("last")
        kept = (f"{last} (step {_saved_step(job)}) is the last good state" if job.run.has_checkpoint()
                else "no checkpoint had been saved yet")
        raise TrainingDiverged(f"training diverged: the loss is {loss} at step {job.state.step + 1}; {kept}. "
                               f"Try a lower train.lr (now {job.cfg.train.lr}), train.grad_clip=1.0, "
                               f"or train.precision=fp32")


def _saved_step(job: Job) -> int:
    from lmlab.checkpoint import read_meta

    return read_meta(job.run.checkpoint("last"))["step"]


def warn_initial_loss(loss: float, vocab_size: int, bar: Progress) -> None:
    """A model that starts far from uniform predictions (loss ln V) is usually mis-initialized."""
    expected = math.log(vocab_size)
    if abs(loss - expected) > 0.5:
        bar.message(f"lmlab: warning: initial loss {loss:.3f} is far from ln(V) = {expected:.3f} "
                    f"(V = {vocab_size}); check model.init and the data")
