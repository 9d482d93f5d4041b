"""Training on several processes with PyTorch's own engine: torchrun + DDP or FSDP2.

One design, three settings of `train.parallel`:

    none   one process (the default)
    ddp    DistributedDataParallel: every rank holds the whole model, gradients are averaged
    fsdp   FSDP2 `fully_shard` per transformer block and at the root: parameters, gradients and
           optimizer state sharded over the ranks (`train.fsdp_offload` keeps them on the CPU)

Processes come from torchrun (`torchrun --nproc-per-node N -m lmlab train ...`, or `lmlab train
--nproc N`, which runs it). Each rank reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT from the environment torchrun sets; the backend is NCCL on CUDA and gloo on CPU.

What keeps N ranks equal to one process (tested on CPU with gloo):
- `train.batch_size` is the global micro-batch; each rank trains on its own disjoint
  `batch_size / N` rows of it, drawn as a pure function of (seed, step, micro-step, rank)
  (see `lmlab.data.batches`), so resume is exact and the world size may change on resume;
- gradients are synchronised on the last micro-batch only (`no_sync` / FSDP's
  `set_requires_gradient_sync`), so accumulation costs one all-reduce per step;
- the logged loss is the mean over ranks; logging, the progress bar and checkpoint files are
  rank 0's; evaluation runs on every rank over the same batches (FSDP needs all ranks for a
  forward), so every rank holds the same numbers without communication;
- checkpoints are full state dicts in the single-process format, so a run trained on N ranks
  resumes, evaluates, exports and generates on one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from lmlab.errors import UserError
from lmlab.hardware import AUTO, BACKENDS, device_kind
from lmlab.registry import Registry
from lmlab.config import apply_overrides
from lmlab.model import build_model

PARALLEL: Registry = Registry("train.parallel")
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
EXECUTION_FIELDS = ("train.parallel", "train.dist_backend", "train.fsdp_offload")  # may change on resume
LAUNCH_HINT = "launch with `lmlab train --nproc N ...` or `torchrun --nproc-per-node N -m lmlab train ...`"


@dataclass
class Dist:
    """This process's place in the job; the defaults are a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    parallel: str = "none"
    wrapped: nn.Module | None = field(default=None, repr=False)  # the DDP / FSDP module, for sync control

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return PARALLEL.get(self.parallel).distributed

    def device(self, base: torch.device) -> torch.device:
        """One GPU per rank on CUDA (cuda:LOCAL_RANK; with more ranks than GPUs, ranks share them
        round-robin, which only gloo allows); the CPU is shared."""
        if base.type != "cuda" or not self.active:
            return base
        return torch.device("cuda", self.local_rank % torch.cuda.device_count())

    def sync(self, last_micro: bool):
        """Context for one micro-batch's backward: gradients are reduced only on the last one."""
        model = self.wrapped
        if not self.active or model is None:
            return contextlib.nullcontext()
        if hasattr(model, "no_sync"):  # DDP
            return contextlib.nullcontext() if last_micro else model.no_sync()
        model.set_requires_gradient_sync(last_micro)  # FSDP2
        return contextlib.nullcontext()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The average of a scalar over ranks (the logged loss)."""
        if self.active and self.world > 1:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world
        return value

    def agree(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag true on every rank when it is true on any, in one all-reduce: decisions to stop
        (a signal that reached some ranks first, train.max_time on clocks that differ) must be the
        same on all ranks, or the others block in the next step's all-reduce. `device` is the one
        the backend reduces on (the job's)."""
        if not (self.active and self.world > 1):
            return list(flags)
        value = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return [bool(v) for v in value.tolist()]

    def barrier(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()


# ----------------------------------------------------------------------------- launch and setup

def torchrun_env() -> dict[str, str] | None:
    """torchrun's variables when all are set, else None."""
    values = {k: os.environ.get(k) for k in ENV}
    return values if all(values.values()) else None


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def resolve_backend(name: str, device: str) -> str:
    """auto: NCCL when the run uses CUDA, gloo otherwise; NCCL needs a GPU."""
    cuda = torch.cuda.is_available() and device_kind(device) in ("cuda", AUTO)
    if BACKENDS.get(name).needs_cuda and not cuda:
        why = "this machine has no CUDA GPU" if not torch.cuda.is_available() else f"train.device={device!r}"
        raise UserError(f"train.dist_backend={name!r} needs CUDA GPUs, but {why}; use gloo (or auto)")
    if name == AUTO:
        return "nccl" if cuda else "gloo"
    return name


def check_world(train_cfg, world: int) -> None:
    """What must hold before N processes start (the --nproc launcher checks it too)."""
    PARALLEL.get(train_cfg.parallel).check()
    if train_cfg.batch_size % world:
        raise UserError(f"train.batch_size={train_cfg.batch_size} is not divisible by the world size {world}; "
                        f"each rank trains on batch_size / world rows: use a multiple of {world}")
    resolve_backend(train_cfg.dist_backend, train_cfg.device)


def check_fsdp_available() -> None:
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        raise UserError(f"train.parallel='fsdp' needs FSDP2 (torch.distributed.fsdp.fully_shard, torch >= 2.6); "
                        f"this torch {torch.__version__} lacks it: use ddp") from None


def setup(train_cfg) -> Dist:
    """Join the process group torchrun started (or stay one process for parallel = none)."""
    env = torchrun_env()
    world = int(env["WORLD_SIZE"]) if env else 1
    if not PARALLEL.get(train_cfg.parallel).distributed:
        if world > 1:
            raise UserError(f"torchrun started {world} processes but train.parallel='none'; "
                            f"set --train.parallel=ddp (or fsdp)")
        return Dist()
    if env is None:
        raise UserError(f"train.parallel={train_cfg.parallel!r} needs torchrun's environment "
                        f"({', '.join(ENV)} are unset); {LAUNCH_HINT}")
    check_world(train_cfg, world)
    backend = resolve_backend(train_cfg.dist_backend, train_cfg.device)
    local = int(env["LOCAL_RANK"])
    if backend == "nccl":
        if local >= torch.cuda.device_count():
            raise UserError(f"NCCL needs a GPU per rank: local rank {local} on a machine with "
                            f"{torch.cuda.device_count()} GPU(s); start fewer ranks per node, or share GPUs "
                            f"with --train.dist_backend=gloo")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return Dist(int(env["RANK"]), world, local, train_cfg.parallel)


def execution_overrides(cfg, overrides: dict[str, str]):
    """Apply overrides of how a run executes (not what it computes) to a resumed run's config."""
    bad = sorted(set(overrides) - set(EXECUTION_FIELDS))
    if bad:
        raise UserError(f"--{bad[0]} cannot change on resume; only {', '.join(EXECUTION_FIELDS)} can")
    return apply_overrides(cfg, overrides) if overrides else cfg


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- wrapping

def wrap(model: nn.Module, d: Dist, train_cfg, device: torch.device) -> nn.Module:
    """The module the training step calls; for fsdp the model itself is sharded in place."""
    if d.active and not any(p.requires_grad for p in model.parameters()):
        raise UserError(f"train.parallel={d.parallel!r} needs a model with trainable parameters; "
                        f"{type(model).__name__} learns by counting: use train.parallel=none")
    d.wrapped = PARALLEL.get(d.parallel)(model, train_cfg, device)
    return d.wrapped


def _kind(distributed: bool, check=None):
    """What a train.parallel choice is besides its wrapper: whether it needs a process group, and
    what must hold before processes start (so callers never compare the config string)."""
    def mark(wrapper):
        wrapper.distributed, wrapper.check = distributed, check or (lambda: None)
        return wrapper

    return mark


@PARALLEL.register("none", "one process")
@_kind(distributed=False)
def _plain(model: nn.Module, train_cfg, device: torch.device) -> nn.Module:
    return model


@PARALLEL.register("ddp", "DistributedDataParallel: a full replica per rank, gradients all-reduced")
@_kind(distributed=True)
def _ddp(model: nn.Module, train_cfg, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


@PARALLEL.register("fsdp", "FSDP2 fully_shard per block: parameters, gradients and optimizer state sharded")
@_kind(distributed=True, check=lambda: check_fsdp_available())
def _fsdp(model: nn.Module, train_cfg, device: torch.device) -> nn.Module:
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    policy = CPUOffloadPolicy(pin_memory=device.type == "cuda") if train_cfg.fsdp_offload else OffloadPolicy()
    for block in getattr(model, "blocks", []):  # one all-gather per block, freed after its use
        fully_shard(block, offload_policy=policy)
    fully_shard(model, offload_policy=policy)  # the rest: embeddings, final norm, head
    return model


def is_sharded(model: nn.Module) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


# ----------------------------------------------------------------------------- checkpoint state

def param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each optimizer index (the single-process state_dict numbers parameters in
    param_group order; FSDP's full state dict names them)."""
    names: dict[int, str] = {}
    for name, p in model.named_parameters():
        names.setdefault(id(p), name)
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """(model state, optimizer state_dict in the single-process layout), complete on rank 0.
    Collective under FSDP: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    osd = get_optimizer_state_dict(model, optimizer, options=options)
    names = param_names(model, optimizer)
    index = {name: i for i, name in enumerate(names)}
    state = {index[k]: v for k, v in osd.get("state", {}).items()}
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in osd.get("param_groups", [])]
    return weights, {"state": state, "param_groups": groups}


def load_full_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, state_dict: dict) -> None:
    """Load a single-process optimizer state_dict into a sharded optimizer (every rank)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    names = param_names(model, optimizer)
    osd = {"state": {names[i]: v for i, v in state_dict["state"].items()},
           "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state_dict["param_groups"]]}
    set_optimizer_state_dict(model, optimizer, osd, options=StateDictOptions(full_state_dict=True))


def gather_rng(d: Dist, own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rank 0's RNG tensors plus every other rank's CPU generator (dropout differs per rank)."""
    if not d.active or d.world == 1:
        return own
    states = [torch.empty(0, dtype=torch.uint8) for _ in range(d.world)]
    dist.all_gather_object(states, torch.get_rng_state())
    return {**own, **{f"rng.cpu.rank{r}": s for r, s in enumerate(states) if r}}


def restore_rank_rng(d: Dist, tensors: dict[str, torch.Tensor], seed: int) -> None:
    """A rank > 0 takes back its own generator; a rank new to the run (more ranks on resume) seeds one."""
    if d.rank == 0:
        return
    key = f"rng.cpu.rank{d.rank}"
    if key in tensors:
        torch.set_rng_state(tensors[key])
    else:
        seed_rank(d, seed)


def seed_rank(d: Dist, seed: int) -> None:
    """Ranks draw different dropout masks for their different rows; rank 0 keeps the
    single-process stream."""
    if d.rank:
        torch.manual_seed(seed + 7919 * d.rank)


def checkpoint_state(job, rng: dict[str, torch.Tensor]) -> tuple[nn.Module, torch.optim.Optimizer | dict,
                                                                dict[str, torch.Tensor]]:
    """(module holding full weights, optimizer or its full state_dict, RNG tensors) for rank 0 to
    save, from this process's `rng`. Collective when sharded or multi-rank: every rank calls it."""
    rng = gather_rng(job.dist, rng)
    if not is_sharded(job.model):
        return job.model, job.optimizer, rng
    weights, optimizer = full_state(job.model, job.optimizer)
    if not job.dist.is_main:
        return job.model, optimizer, rng
    plain = build_model(job.cfg.model, job.tokenizer.vocab_size)  # a full copy on rank 0 for the writer
    plain.load_state_dict(weights)
    return plain, optimizer, rng

