"""One optimizer step: micro-batches with gradient accumulation, clipping, update."""

from __future__ import annotations

import contextlib
import math

import torch


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def to_device(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """Pinned host memory and a non-blocking copy on CUDA, so the copy overlaps queued kernels."""
    if t is None or t.device == device:
        return t
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def train_step(model, optimizer, batches, step: int, grad_accum: int, grad_clip: float,
               precision, device: torch.device, dist=None) -> tuple[float, float]:
    """Returns (mean loss over micro-batches and ranks, global grad norm before clipping).
    Under DDP/FSDP (`dist`, see lmlab.train.distributed) gradients sync on the last micro-batch only."""
    total = torch.zeros((), device=device)
    for micro in range(grad_accum):
        x, y, mask = (to_device(t, device) for t in batches.batch(step, micro))
        with dist.sync(micro == grad_accum - 1) if dist else contextlib.nullcontext():
            with precision.autocast():
                _, loss = model(x, y, loss_mask=mask)
            if loss.requires_grad:  # count-based models have nothing to differentiate
                precision.backward(loss / grad_accum)
        total += loss.detach()
    if dist:
        total = dist.mean(total)
    precision.unscale(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return (total / grad_accum).item(), norm.item()
