"""Muon whose Newton-Schulz iteration runs in a chosen dtype.

torch.optim.Muon, like Keller Jordan's reference code, always orthogonalizes in bf16: right on a
GPU or a CPU with AVX512-BF16/AMX, but a CPU without native bf16 emulates each of its matmuls, and
on an AVX2 laptop that made a Muon step of shakespeare_speedrun several times slower than AdamW's.
`Muon` is torch's optimizer (same hyperparameters, state and checkpoints) with the iteration in
`ns_dtype`, which `lmlab.device.low_precision_dtype` picks from the run's precision and
the hardware. In bf16 its steps are bit-identical to torch's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Keller Jordan's quintic coefficients, steps and eps (also torch.optim.Muon's defaults)
COEFFICIENTS = (3.4445, -4.7750, 2.0315)
STEPS = 5
EPS = 1e-7


def newton_schulz(g: Tensor, dtype: torch.dtype = torch.bfloat16, coefficients=COEFFICIENTS,
                  steps: int = STEPS, eps: float = EPS) -> Tensor:
    """~U V^T of g = U S V^T by the quintic Newton-Schulz iteration (singular values land in about
    [0.7, 1.2], which trains as well as exact orthogonalization), computed in `dtype`."""
    a, b, c = coefficients
    x = g.to(dtype)
    tall = g.size(0) > g.size(1)
    if tall:  # iterate on the wide side: the Gram matrix x x^T is the smaller one
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm <= Frobenius norm <= 1; not in place: in fp32 x may be g
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b A + c A^2
        x = torch.addmm(x, poly, x, beta=a)  # a x + (b A + c A^2) x
    return x.T if tall else x


class Muon(torch.optim.Muon):
    """torch.optim.Muon with the orthogonalization in `ns_dtype` (momentum and weights stay fp32)."""

    def __init__(self, params, *, ns_dtype: torch.dtype = torch.bfloat16, **kwargs):
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype  # not in the param groups: a checkpoint resumes on other hardware

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, bufs = [], [], []
            self._init_group(group, params, grads, bufs)
            for param, grad, buf in zip(params, grads, bufs):
                self._update(group, param, grad, buf)
        return loss

    def _update(self, group: dict, param: Tensor, grad: Tensor, buf: Tensor) -> None:
        """torch's single-tensor Muon step, with its orthogonalization in self.ns_dtype."""
        buf.lerp_(grad, 1 - group["momentum"])
        update = grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
        update = newton_schulz(update, self.ns_dtype, group["ns_coefficients"], group["ns_steps"], group["eps"])
        param.mul_(1 - group["lr"] * group["weight_decay"])
        param.add_(update, alpha=-group["lr"] * _lr_scale(group["adjust_lr_fn"], param.shape))


def _lr_scale(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch's adjust_lr_fn: `original` (Keller Jordan's) sqrt(max(1, rows / cols)), `match_rms_adamw`
    0.2 sqrt(max(rows, cols)) (Moonshot's)."""
    rows, cols = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0
