"""Everything a training run needs, built from its config: the run directory, data,
tokenizer, model, optimizer, precision and the resumable state. `loop.py` only sequences it."""

from __future__ import annotations

import dataclasses
import json
import os
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmlab.alloc import tune_malloc
from lmlab.checkpoint import (
    load_state_tensors,
    load_weights,
    optimizer_state_dict,
    read_meta,
    require_last,
    restore_optimizer,
)
from lmlab.config import RunConfig, load_config
from lmlab.data.batches import MixtureBatches
from lmlab.data.prepare import Prepared, prepare
from lmlab.data.epochs import EpochBatches
from lmlab.errors import UserError
from lmlab.model import LanguageModel, build_model
from lmlab.io import DirLock, atomic_write_text
from lmlab.runs import RunDir, TrainState, check_same_model  # noqa: F401  (re-exported)
from lmlab.tokenizer import load_tokenizer, save_tokenizer
from lmlab.train import distributed
from lmlab.train.distributed import Dist
from lmlab.train.loggers import check_packages
from lmlab.train.memory import check_fits, predict_config, predict_run, runtime_bytes
from lmlab.train.mfu import MfuMeter, meter_for
from lmlab.train.optim import make_optimizer
from lmlab.device import Precision, configure_matmul, resolve_device, resolve_precision
from lmlab.hardware import PRECISIONS
from lmlab.data.stats import write_stats
from lmlab.manifest import write_manifest

DEFER_FIGURES = "LMLAB_DEFER_FIGURES"  # set (by a study's workers): leave the run's figures to the caller


@dataclass
class Job:
    cfg: RunConfig
    run: RunDir
    device: torch.device
    precision: Precision
    tokenizer: object
    data: Prepared
    batches: MixtureBatches | EpochBatches
    model: LanguageModel
    optimizer: torch.optim.Optimizer
    state: TrainState = field(default_factory=TrainState)
    dist: Dist = field(default_factory=Dist)
    train_model: torch.nn.Module | None = None  # what the step calls: the DDP wrapper, or the model itself
    meter: MfuMeter | None = None  # model FLOPs utilization from tokens/s

    @property
    def value_bytes(self) -> int:
        """Bytes per activation value under this run's precision (for the memory estimate)."""
        return 4 if self.precision.name == "fp32" else 2

    @property
    def tokens_per_step(self) -> int:
        t = self.cfg.train
        return t.batch_size * t.grad_accum * self.cfg.model.context_len

    @property
    def epoch_mode(self) -> bool:
        return isinstance(self.batches, EpochBatches)

    def step_tokens(self, step: int) -> int:
        """Training tokens (input positions) of step `step`, every rank's; an epoch's last step may be short."""
        return self.batches.step_rows(step) * self.cfg.model.context_len


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def new_job(cfg: RunConfig, run_dir: str | Path, overwrite: bool = False) -> Job:
    """Create (and lock) the run directory and build everything; a failure before training
    starts (bad data, Ctrl-C in prepare) removes what it made, so no dead end is left behind."""
    # refuse a precision the device lacks, a tracker that is not installed, and a run that cannot fit,
    # before making anything
    precision = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device))
    check_packages(cfg)
    check_unbuilt(cfg, cfg.model.vocab_size or 1, precision)  # the tokenizer's size is not known yet: 1 at least
    d = distributed.setup(cfg.train)
    if d.is_main:  # rank 0 makes (and locks) the run directory, data cache and tokenizer; the others read them
        try:
            cfg, run, data = _make_run(cfg, run_dir, overwrite)
        finally:
            d.barrier()
    else:
        d.barrier()
        run = RunDir.open(run_dir, need_checkpoint=False)
        cfg = load_config(run.config, saved_run=True)
        data = prepare(cfg, load_tokenizer(run.tokenizer), progress=False)
    try:
        job = _assemble(cfg, run, data.tokenizer, data, d)
        if d.is_main:  # a run that cannot fit says so before it starts (and is discarded below)
            check_fits(*predict_run(job.model, cfg.train.batch_size, job.value_bytes, job.optimizer,
                                     cfg.train.grad_accum),
                       where=f"run {cfg.name}")
            write_manifest(run, cfg, data, job.device, job.precision.name)
            atomic_write_text(run.root / "model.json", json.dumps(job.model.stats(cfg.train.batch_size,
                                                                                  job.value_bytes), indent=1))
        if job.model.learns_by_counting:  # count-based models learn by counting the training split
            job.model.fit(job.data.train_tokens().to(job.device))
    except BaseException:
        if d.is_main:
            run.discard()
        raise
    return job


def check_unbuilt(cfg: RunConfig, vocab_size: int, precision: str) -> None:
    """Refuse a run that cannot fit before its model is built (a huge one takes minutes to build or
    fails in the allocator with a traceback) and before its run directory is made."""
    value_bytes = PRECISIONS.get(precision).activation_bytes
    check_fits(predict_config(cfg, vocab_size, value_bytes), runtime_bytes(), where=f"run {cfg.name}")


def _make_run(cfg: RunConfig, run_dir: str | Path, overwrite: bool) -> tuple[RunConfig, RunDir, Prepared]:
    run = RunDir.create(run_dir, overwrite)
    try:
        data = prepare(cfg, progress=cfg.train.progress)
        tokenizer = data.tokenizer
        if cfg.model.vocab_size and cfg.model.vocab_size < tokenizer.vocab_size:
            raise UserError(f"model.vocab_size={cfg.model.vocab_size} is smaller than the {cfg.tokenizer.kind} "
                            f"tokenizer's {tokenizer.vocab_size} tokens; use 0 (= the tokenizer's) or more")
        cfg = cfg.replace(model={"vocab_size": cfg.model.vocab_size or tokenizer.vocab_size})
        save_tokenizer(tokenizer, run.tokenizer)
        cfg.save(run.config)
        # a study draws its runs' histograms once at its end (lmlab.study.runner.draw_deferred)
        write_stats(data, run.root / "data", plot=not os.environ.get(DEFER_FIGURES))
    except BaseException:
        run.discard()  # bad data or Ctrl-C leaves no half-made run behind
        raise
    return cfg, run, data


def resume_job(run_dir: str | Path, overrides: dict[str, str] | None = None) -> Job:
    """Reopen a run at its last checkpoint; `overrides` may change how it runs (train.parallel,
    train.dist_backend, train.fsdp_offload), never what it computes. A live trainer on the run is
    named before anything is read (it may be swapping its checkpoint in that very moment); rank 0
    locks the run once every check has passed (the lock refuses a second trainer)."""
    run = RunDir.open(run_dir, need_checkpoint=False)
    DirLock(run.root).check()
    require_last(run)
    run = RunDir.open(run_dir)
    try:
        return _resume_job(run, overrides)
    except BaseException:
        run.unlock()
        raise


def _resume_job(run: RunDir, overrides: dict[str, str] | None) -> Job:
    cfg = distributed.execution_overrides(load_config(run.config, saved_run=True), overrides or {})
    ckpt = run.checkpoint("last")
    meta = read_meta(ckpt)
    check_same_model(run, cfg, meta)
    d = distributed.setup(cfg.train)
    tokenizer = load_tokenizer(run.tokenizer)
    job = _assemble(cfg, run, tokenizer, prepare(cfg, tokenizer, progress=cfg.train.progress and d.is_main), d, ckpt)
    tensors = load_state_tensors(ckpt)
    if meta.get("optimizer"):  # an imported model starts with a fresh optimizer (fine-tuning)
        if distributed.is_sharded(job.model):
            distributed.load_full_optimizer(job.model, job.optimizer,
                                              optimizer_state_dict(tensors, meta["optimizer"]))
        else:
            restore_optimizer(job.optimizer, tensors, meta["optimizer"])
    restore_rng(tensors)
    distributed.restore_rank_rng(d, tensors, cfg.train.seed)
    if job.precision.scaler is not None and "scaler" in meta:
        job.precision.scaler.load_state_dict(meta["scaler"])
    known = {f.name for f in dataclasses.fields(TrainState)}
    if not isinstance(meta.get("state"), dict) or set(meta["state"]) - known:
        raise UserError(f"{ckpt}/meta.json has no valid 'state' (expected the keys {sorted(known)}); "
                        f"the checkpoint is damaged")
    job.state = TrainState(**meta["state"])
    saved_world = meta.get("world_size", 1)
    if d.is_main:
        run.lock()  # everything checked: from here on this process writes into the run
        if overrides:
            cfg.save(run.config)  # the next resume runs the same way unless told otherwise
        run.truncate_metrics(job.state.step)
        if saved_world != d.world and cfg.train.progress:
            print(f"lmlab: resuming a run saved on {saved_world} rank(s) on {d.world}: every step trains on the "
                  f"same rows (drawn for the global batch, then split), so only the floating-point summation "
                  f"order and dropout streams differ", flush=True)
    d.barrier()  # rank 0 has truncated the log before anyone trains
    return job


def _assemble(cfg: RunConfig, run: RunDir, tokenizer, data: Prepared, d: Dist,
              checkpoint: Path | None = None) -> Job:
    t = cfg.train
    tune_malloc()  # large per-step temporaries reuse heap memory instead of mmap/munmap each step
    if t.threads:
        torch.set_num_threads(t.threads)
    device = d.device(resolve_device(t.device))
    precision = Precision(resolve_precision(t.precision, device), device)
    configure_matmul(device)
    seed_everything(t.seed)
    if t.batch_size % d.world:
        distributed.check_world(t, d.world)  # one line naming the batch and the world size
    batches = train_batches(cfg, data, d)
    cfg = cfg.replace(train={"max_steps": total_steps(cfg, batches)})  # in memory; config.toml keeps the user's
    if d.is_main:
        check_unbuilt(cfg, tokenizer.vocab_size, precision.name)
    model = build_model(cfg.model, tokenizer.vocab_size).to(device)  # vocab_size: the config's if set
    if checkpoint is not None:  # full weights go in before sharding
        load_weights(checkpoint, model)
    meter = meter_for(model, device, precision.name, d.world)
    distributed.seed_rank(d, t.seed)
    train_model = distributed.wrap(model, d, t, device)
    optimizer = make_optimizer(model, t, device)
    return Job(cfg, run, device, precision, tokenizer, data, batches, model, optimizer, dist=d,
               train_model=train_model, meter=meter)



def train_batches(cfg: RunConfig, data: Prepared, d):
    """Epochs (train.epochs > 0) or the seeded mixture stream split over micro-steps and ranks."""
    t, T = cfg.train, cfg.model.context_len
    if not t.epochs:
        return data.train_batches(t.batch_size, T, t.seed).split(t.grad_accum, d.rank, d.world)
    if d.world > 1:
        raise UserError(f"train.epochs={t.epochs} runs on one process for now; use train.max_steps or "
                        f"train.max_tokens with {d.world} ranks")
    parts = data.splits["train"]
    names = [n for n in parts if data.probs.get(n, 0) > 0]
    try:
        return EpochBatches([parts[n] for n in names], t.batch_size, T, t.seed, t.grad_accum)
    except ValueError as e:
        raise UserError(f"train.epochs={t.epochs}: {e}; use a shorter model.context_len or more data") from None


def total_steps(cfg: RunConfig, batches) -> int:
    """The run's length in optimizer steps: train.epochs x steps per epoch, else train.max_steps,
    capped by train.max_tokens. The lr schedule decays over this length."""
    t = cfg.train
    steps = t.epochs * batches.steps_per_epoch if isinstance(batches, EpochBatches) else t.max_steps
    if t.max_tokens:
        per_step = t.batch_size * t.grad_accum * cfg.model.context_len
        steps = min(steps, max(math.ceil(t.max_tokens / per_step), 1))
    return steps


def rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
