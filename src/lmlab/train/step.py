"""One optimizer step: micro-batches with gradient accumulation, clipping, update."""

from __future__ import annotations

import math

import torch


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(model, optimizer, batches, step: int, grad_accum: int, grad_clip: float,
               precision, device: torch.device) -> tuple[float, float]:
    """Returns (mean loss over micro-batches, global grad norm before clipping)."""
    total = torch.zeros((), device=device)
    micros = [b for b in (batches.batch(step, micro) for micro in range(grad_accum)) if b is not None]
    for x, y, mask in micros:  # an epoch's last step may have fewer micro-batches (EpochBatches)
        if mask is not None:
            mask = mask.to(device, non_blocking=True)
        with precision.autocast():
            _, loss = model(x.to(device, non_blocking=True), y.to(device, non_blocking=True), loss_mask=mask)
        if loss.requires_grad:  # count-based models have nothing to differentiate
            precision.backward(loss / len(micros))
        total += loss.detach()
    precision.unscale(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return (total / len(micros)).item(), norm.item()
