"""One optimizer step: micro-batches with gradient accumulation, clipping, update."""

from __future__ import annotations

import math

import torch


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(model, optimizer, batches, step: int, grad_accum: int, grad_clip: float,
               precision, device: torch.device, inject_nan: bool = False,
               skip_nonfinite: bool = False) -> tuple[float, float]:
    """Returns (mean loss over micro-batches, global grad norm before clipping).

    `inject_nan` poisons this step's loss (a debug switch for fault tests). With
    `skip_nonfinite`, a step whose loss or gradient norm is not finite makes no update at all
    (the weights and optimizer moments stay as they were); the caller sees the non-finite value."""
    total = torch.zeros((), device=device)
    for micro in range(grad_accum):
        x, y, mask = batches.batch(step, micro)
        if mask is not None:
            mask = mask.to(device, non_blocking=True)
        with precision.autocast():
            _, loss = model(x.to(device, non_blocking=True), y.to(device, non_blocking=True), loss_mask=mask)
        if inject_nan:
            loss = loss * float("nan")
        if loss.requires_grad:  # count-based models have nothing to differentiate
            precision.backward(loss / grad_accum)
        total += loss.detach()
    precision.unscale(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    if skip_nonfinite and precision.scaler is None and not bool(torch.isfinite(norm) & torch.isfinite(total)):
        optimizer.zero_grad(set_to_none=True)  # fp16's scaler already skips such steps by itself
        return (total / grad_accum).item(), norm.item()
    precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return (total / grad_accum).item(), norm.item()
