"""The phases of one training step, in the order `loop.train_loop` calls them, and the loop's own
state (bar, log, clock). Each phase is a plain function of (job, loop, ...):

    take_step -> judge_step -> account -> agree_to_stop -> report_step -> checkpoint_if_due
    -> stop_if_asked

(`take_step` lives in loop.py beside the loop, where fault and resume tests reach `train_step`.)"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from lmlab.device import slow_path_note
from lmlab.errors import Interrupted
from lmlab.io import fault_point
from lmlab.train.checkpointing import (  # noqa: F401  (keep_if_due: a phase of the loop too)
    check_finite, evaluate_and_save, initial_record, keep_if_due, save, warn_initial_loss)
from lmlab.train.job import Job
from lmlab.train.loggers import FanOut, open_loggers
from lmlab.train.memory import describe, peak_memory_mb, predict_run
from lmlab.train.mfu import format_mfu
from lmlab.train.optim import describe as describe_optimizer
from lmlab.train.progress import Progress
from lmlab.train.step import StepOutcome


@dataclass
class Step:
    """One optimizer step as the loop saw it: the outcome, its lr, seconds and global tokens."""

    outcome: StepOutcome
    lr: float
    seconds: float
    tokens: int


@dataclass
class Loop:
    """What the loop carries from step to step besides the job's TrainState."""

    bar: Progress
    log: FanOut
    step_model: torch.nn.Module
    first_step: int
    elapsed_before: float
    t_start: float = field(default_factory=time.perf_counter)
    last_eval: dict = field(default_factory=dict)
    stop_reason: str = ""

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def close(self) -> None:
        self.log.close()
        self.bar.close()


def finished(job: Job) -> bool:
    state = job.state
    return state.step >= job.cfg.train.max_steps or state.stopped_early or state.stopped_by_time


def begin(job: Job) -> Loop:
    """The start line (what trains where, how, and how big), the loggers (rank 0 alone writes
    metrics.jsonl and the trackers) and the model the steps run (compiled if asked)."""
    cfg, state = job.cfg.train, job.state
    bar = Progress(cfg.max_steps, state.step, enabled=cfg.progress and job.dist.is_main)
    if bar.enabled:
        verb = f"resuming at step {state.step}" if state.step else "training"
        bar.message(f"lmlab: {verb} {job.cfg.name} into {job.run.root} on {job.device} ({job.precision.name}, "
                    f"{describe_optimizer(job.optimizer)}); "
                    f"{job.model.summary(cfg.batch_size, job.value_bytes)}; {job.meter.describe()}; "
                    f"{describe(*predict_run(job.model, cfg.batch_size, job.value_bytes, job.optimizer, cfg.grad_accum))}")
    if job.dist.is_main and (note := slow_path_note(job.precision.name, job.device)):
        bar.message(note)  # once, whether or not the bar is shown: the setting that avoids the slow path
    log = open_loggers(job.cfg, job.run) if job.dist.is_main else FanOut([])
    if cfg.compile:
        bar.message("lmlab: train.compile: the first step compiles the model (about half a minute on a small "
                    "CPU, seconds once torch has cached it)")
    step_model = torch.compile(job.train_model) if cfg.compile else job.train_model
    return Loop(bar, log, step_model, state.step, state.elapsed)


def judge_step(job: Job, loop: Loop, step: Step) -> None:
    """A non-finite step is skipped (within train.skip_nonfinite) or stops the run; the first step's
    loss (the initialization's) is recorded, and flagged when far from ln(V)."""
    cfg, state, out = job.cfg.train, job.state, step.outcome
    if not out.finite and state.skipped < cfg.skip_nonfinite:
        state.skipped += 1
        loop.bar.message(f"lmlab: warning: step {state.step + 1}: loss {out.loss}, grad norm {out.grad_norm}; "
                         f"skipped it without an update ({state.skipped} of train.skip_nonfinite="
                         f"{cfg.skip_nonfinite})")
        loop.log.write({"kind": "skip", "step": state.step + 1, "loss": str(out.loss),
                        "grad_norm": str(out.grad_norm), "skipped": state.skipped})
    else:
        check_finite(out.loss, job, loop.bar)
    if state.step == 0 and not job.model.learns_by_counting and out.finite:
        loop.log.write(initial_record(out.loss, job.cfg.model.vocab_size or job.tokenizer.vocab_size))
        warn_initial_loss(out.loss, job.tokenizer.vocab_size, loop.bar)


def account(job: Job, loop: Loop, step: Step) -> None:
    """The step counts: position, tokens, training time, the epoch's running loss, wall time."""
    state = job.state
    state.step += 1
    fault_point("train:step")
    state.tokens += step.tokens
    state.train_time += step.seconds
    if step.outcome.finite:
        state.epoch_loss_sum += step.outcome.loss
        state.epoch_loss_steps += 1
    state.elapsed = loop.elapsed()


def agree_to_stop(job: Job, loop: Loop, signals) -> bool:
    """Whether to stop after this step. Every rank decides on the same flags, read once here (a
    signal that comes later counts at the next step): else one rank stops while another blocks in
    the next all-reduce."""
    cfg, state = job.cfg.train, job.state
    stopping, out_of_time = job.dist.agree(
        [signals.received is not None, bool(cfg.max_time) and state.elapsed >= cfg.max_time], job.device)
    loop.stop_reason = signals.received or "a stop signal to another rank"
    if out_of_time:
        state.stopped_by_time = True
    return stopping


def report_step(job: Job, loop: Loop, step: Step) -> None:
    """The step's metrics.jsonl record (every train.log_every steps) and the progress bar."""
    cfg, state, out = job.cfg.train, job.state, step.outcome
    mfu = job.meter.mfu(step.tokens / step.seconds, out.scored_share)
    peak_mb = peak_memory_mb(job.device)  # a /proc read: once per step, for the log and the bar
    if not out.finite:
        return
    if state.step % cfg.log_every == 0 or state.step == cfg.max_steps:
        loop.log.write({"kind": "train", "step": state.step, "loss": out.loss, "lr": step.lr,
                        "grad_norm": out.grad_norm, "tokens": state.tokens, "tokens_per_s": step.tokens / step.seconds,
                        "elapsed_s": state.elapsed, "train_time_s": state.train_time, "peak_mem_mb": peak_mb,
                        "mfu": mfu, "scored_share": out.scored_share})
    val = f" val {loop.last_eval['loss']:.4f}" if loop.last_eval else ""
    loop.bar.update(state.step, out.loss, step.tokens / step.seconds,
                    f" MFU {format_mfu(mfu)} ({job.precision.name}){val} mem {peak_mb / 1024:.2f} GiB")


def checkpoint_if_due(job: Job, loop: Loop, stopping: bool) -> None:
    """Evaluate and save at the eval cadence, an epoch's end, the last step and train.max_time;
    else save `last` every train.checkpoint_every steps or when stopping; keep kept steps."""
    cfg, state = job.cfg.train, job.state
    epoch_end = job.epoch_mode and state.step % job.batches.steps_per_epoch == 0
    if (state.step % job.cfg.eval.every == 0 or state.step == cfg.max_steps or epoch_end
            or state.stopped_by_time):
        loop.last_eval = evaluate_and_save(job, loop.log, loop.bar, epoch_end)
        state.elapsed = loop.elapsed()
    elif (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) or stopping:
        save(job, "last", loop.last_eval)
    keep_if_due(job, loop.last_eval)


def stop_if_asked(job: Job, loop: Loop, stopping: bool) -> None:
    """A stop signal (or another rank's) ends the run here, `last` saved at this step."""
    if stopping and not finished(job):
        loop.log.flush()
        raise Interrupted(f"{loop.stop_reason} at step {job.state.step}: saved {job.run.checkpoint('last')}; "
                          f"continue with `lmlab train --resume {job.run.root}`")


def finish(job: Job, loop: Loop) -> None:
    if job.state.stopped_by_time:
        loop.bar.message(f"lmlab: train.max_time={job.cfg.train.max_time:g}s reached at step {job.state.step}; "
                         f"evaluated and saved")
