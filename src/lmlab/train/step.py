"""One optimizer step: the step's micro-batches (from the batch stream, which owns grad_accum),
gradient accumulation, clipping, update; the outcome as one record."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch


@dataclass
class StepOutcome:
    """What one optimizer step did. `loss` is the mean over micro-batches and ranks, `grad_norm`
    the global norm before clipping; `positions` and `scored` count this process's target
    positions and those with a loss (padding has none); `updated` is False for a skipped step."""

    loss: float
    grad_norm: float
    positions: int
    scored: int
    updated: bool = True

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.grad_norm)

    @property
    def scored_share(self) -> float:
        return self.scored / max(self.positions, 1)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Each group at the scheduled lr times its own `lr_ratio` (Muon's matrices run at train.muon_lr)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_ratio", 1.0)


def to_device(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """Pinned host memory and a non-blocking copy on CUDA, so the copy overlaps queued kernels."""
    if t is None or t.device == device:
        return t
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def train_step(model, optimizer, batches, step: int, precision, device: torch.device, *, grad_clip: float = 0.0,
               dist=None, inject_nan: bool = False, skip_nonfinite: bool = False) -> StepOutcome:
    """Optimizer step `step` on `batches.micro_batches(step)`. Under DDP/FSDP (`dist`, see
    lmlab.train.distributed) gradients sync on the last micro-batch only.

    `inject_nan` poisons this step's loss (a debug switch for fault tests). With
    `skip_nonfinite`, a step whose loss or gradient norm is not finite makes no update at all
    (the weights and optimizer moments stay as they were); the outcome holds the non-finite value."""
    micros = batches.micro_batches(step)
    total, positions, scored = _accumulate(model, micros, precision, device, dist, inject_nan)
    if dist:
        total = dist.mean(total)
    precision.unscale(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    skip = skip_nonfinite and precision.scaler is None and not bool(torch.isfinite(norm) & torch.isfinite(total))
    if not skip:  # (fp16's scaler skips such steps by itself)
        precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return StepOutcome((total / len(micros)).item(), norm.item(), positions, scored, updated=not skip)


def _accumulate(model, micros, precision, device, dist, inject_nan: bool) -> tuple[torch.Tensor, int, int]:
    """Forward and backward over the micro-batches: (summed loss, positions, scored positions)."""
    total = torch.zeros((), device=device)
    scored, positions = torch.zeros((), dtype=torch.long, device=device), 0
    for i, (x, y, mask) in enumerate(micros):
        x, y, mask = (to_device(t, device) for t in (x, y, mask))
        scored += torch.count_nonzero(mask) if mask is not None else y.numel()
        positions += y.numel()
        with dist.sync(i == len(micros) - 1) if dist else contextlib.nullcontext():
            with precision.autocast():
                _, loss = model(x, y, loss_mask=mask)
            if inject_nan:
                loss = loss * float("nan")
            if loss.requires_grad:  # count-based models have nothing to differentiate
                precision.backward(loss / len(micros))
        total += loss.detach()
    return total, positions, int(scored)
