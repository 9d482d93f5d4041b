"""A run's plan without training it (`lmlab train --dry-run`, `lmlab study --dry-run`): its length
in steps and tokens (epochs counted on the prepared data), its size, its predicted peak memory and
whether that fits, and a time estimate measured on this machine.

The estimate is measured, not assumed: the plan builds the run's real model and optimizer, times
a few optimizer steps on real batches after one warm-up step, times evaluation on a slice of the
validation split, and adds up steps x seconds per step + evaluations x seconds per evaluation +
what building the run took. Nothing is written except the token cache that training would fill
anyway."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from lmlab.config import RunConfig
from lmlab.eval.metrics import evaluate
from lmlab.train.distributed import Dist
from lmlab.train.memory import describe, peak_memory_mb, predict_run, reset_peak_memory
from lmlab.train.memory import fits as memory_fits
from lmlab.train.step import train_step
from lmlab.data.prepare import prepare
from lmlab.train.job import _assemble

MEASURE_STEPS = 2  # timed optimizer steps after the warm-up step
EVAL_PROBE_TOKENS = 4096  # validation tokens the evaluation timing scores


@dataclass
class RunEstimate:
    steps: int
    tokens: int
    params: int
    params_non_embedding: int
    flops_per_token: int
    memory_parts: dict  # predicted peak by part (lmlab.train.memory.predict_peak)
    runtime_bytes: int
    measured_peak_bytes: int  # this process's peak over the timed steps (what a run of this config holds)
    fits: bool
    seconds_per_step: float
    seconds_per_eval: float
    evals: int
    build_seconds: float  # this process's start-up (interpreter, imports) plus building the run
    threads: int

    @property
    def memory_bytes(self) -> int:
        return self.memory_parts["total"] + self.runtime_bytes

    @property
    def seconds(self) -> float:
        return self.build_seconds + self.steps * self.seconds_per_step + self.evals * self.seconds_per_eval

    def line(self) -> str:
        size = (f"{self.steps} steps, {self.tokens:,} tokens; {self.params:,} parameters "
                f"({self.params_non_embedding:,} non-embedding), {self.flops_per_token:,} FLOPs/token; "
                f"{describe(self.memory_parts, self.runtime_bytes)}")
        if not self.measured_peak_bytes:
            return f"{size} - MORE THAN IS AVAILABLE, so nothing was timed"
        return (f"{size}, measured {self.measured_peak_bytes / 2**30:.2f} GiB over the timed steps"
                f"{'' if self.fits else ' - MORE THAN IS AVAILABLE'}; measured {self.seconds_per_step * 1e3:.0f} "
                f"ms/step and {self.seconds_per_eval:.2f} s/eval on {self.threads} thread(s): about "
                f"{format_seconds(self.seconds)}")


def format_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def estimate_run(cfg: RunConfig, threads: int | None = None, measure_steps: int = MEASURE_STEPS) -> RunEstimate:
    """Build the run in memory (no run directory), predict its memory and time its steps."""
    t0 = time.perf_counter()
    before = torch.get_num_threads()
    if threads:
        cfg = cfg.replace(train={"threads": threads})
    try:
        data = prepare(cfg, progress=False)
        cfg = cfg.replace(model={"vocab_size": cfg.model.vocab_size or data.tokenizer.vocab_size})
        job = _assemble(cfg, None, data.tokenizer, data, Dist())
        build = time.perf_counter() - t0 + STARTUP
        t = job.cfg.train
        tokens = (sum(job.step_tokens(s) for s in range(job.batches.steps_per_epoch)) * t.epochs
                  if job.epoch_mode else job.tokens_per_step * t.max_steps)
        tokens = min(tokens, t.max_tokens) if t.max_tokens else tokens
        parts, runtime = predict_run(job.model, t.batch_size, job.value_bytes, job.optimizer, t.grad_accum)
        fits = memory_fits(parts["total"] + runtime)
        per_step = per_eval = 0.0
        measured = 0
        if fits:  # a config predicted not to fit is not stepped (that could exhaust the machine)
            reset_peak_memory(job.device)
            per_step = _time_steps(job, min(measure_steps, max(t.max_steps - 1, 1)))
            measured = int(peak_memory_mb(job.device) * 2**20)
            fits = memory_fits(measured)
            per_eval = _time_eval(job)
        evals = t.max_steps // job.cfg.eval.every + 1 + (t.epochs if job.epoch_mode else 0)
        est = RunEstimate(t.max_steps, tokens, job.model.num_params(), job.model.num_params(embeddings=False),
                          job.model.flops_per_token(), parts, runtime, measured, fits, per_step, per_eval,
                          evals, build, torch.get_num_threads())
    finally:
        torch.set_num_threads(before)
    if t.max_time:  # a time budget stops training (after one last evaluation)
        est.steps = min(est.steps, max(math.ceil(t.max_time / max(per_step, 1e-9)), 1))
    return est


def startup_seconds() -> float:
    """How long this process took to get here (the interpreter and imports a run pays too), from
    /proc on Linux; 0 where that cannot be read."""
    import os

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


def _time_steps(job, n: int) -> float:
    """Seconds per optimizer step, over `n` steps after one warm-up step (kernels, allocator)."""
    t = job.cfg.train
    if job.model.learns_by_counting:  # count-based: fitting is the whole run
        t0 = time.perf_counter()
        job.model.fit(job.data.train_tokens().to(job.device))
        return (time.perf_counter() - t0) / max(t.max_steps, 1)
    times = []
    for step in range(n + 1):
        t0 = time.perf_counter()
        train_step(job.train_model, job.optimizer, job.batches, step, job.precision, job.device,
                   grad_clip=t.grad_clip)
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / max(len(times) - 1, 1)


def _time_eval(job) -> float:
    """Seconds for one evaluation: a probe of the validation split scaled to what eval scores."""
    e, T = job.cfg.eval, job.cfg.model.context_len
    val = job.data.splits["val"]
    total = sum(p.real_tokens for p in val.values())
    target = min(total, e.max_tokens) if e.max_tokens else total
    probe = min(target, max(EVAL_PROBE_TOKENS, (e.batch_size or job.cfg.train.batch_size) * T))
    if probe <= 0:
        return 0.0
    t0 = time.perf_counter()
    evaluate(job.model, val, job.tokenizer, T, e.batch_size or job.cfg.train.batch_size, probe, job.device,
             job.precision.autocast)
    return (time.perf_counter() - t0) * target / probe


STARTUP = startup_seconds()  # taken when the plan is first imported: the interpreter and torch's import
