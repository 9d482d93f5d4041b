"""One optimizer step: micro-batches with gradient accumulation, clipping, update."""

from __future__ import annotations

import contextlib
import math

import torch


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


def train_step(model, optimizer, batches, step: int, grad_accum: int, grad_clip: float,
               precision, device: torch.device, dist=None, inject_nan: bool = False,
               skip_nonfinite: bool = False, counts: dict | None = None) -> tuple[float, float]:
    """Returns (mean loss over micro-batches and ranks, global grad norm before clipping).
    With `counts` (a dict), it also gets this process's `positions` and `scored` (those with a loss).
    Under DDP/FSDP (`dist`, see lmlab.train.distributed) gradients sync on the last micro-batch only.

    `inject_nan` poisons this step's loss (a debug switch for fault tests). With
    `skip_nonfinite`, a step whose loss or gradient norm is not finite makes no update at all
    (the weights and optimizer moments stay as they were); the caller sees the non-finite value."""
    total = torch.zeros((), device=device)
    scored, positions = torch.zeros((), dtype=torch.long, device=device), 0
    micros = [b for b in (batches.batch(step, micro) for micro in range(grad_accum)) if b is not None]
    for i, batch in enumerate(micros):  # an epoch's last step may have fewer micro-batches (EpochBatches)
        x, y, mask = (to_device(t, device) for t in batch)
        if counts is not None:
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
    if dist:
        total = dist.mean(total)
    precision.unscale(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    if skip_nonfinite and precision.scaler is None and not bool(torch.isfinite(norm) & torch.isfinite(total)):
        optimizer.zero_grad(set_to_none=True)  # fp16's scaler already skips such steps by itself
        mean = total / grad_accum
    else:
        precision.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        mean = total / len(micros)
    if counts is not None:
        counts.update(positions=positions, scored=int(scored))
    return mean.item(), norm.item()
