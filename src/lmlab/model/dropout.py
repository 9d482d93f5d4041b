"""Dropout whose CPU masks cost a fraction of torch's.

PyTorch's CPU dropout draws one Bernoulli sample per element from a scalar Mersenne Twister; at
LLmini-C's shape (attention probabilities of 32 x 4 x 256 x 256 per layer) that was 15% of a
training step, more than all of its elementwise work. Here each 64-bit random word gives four
elements 16 bits each: an element is kept when its 16 bits, read as an unsigned number, are at
least round(p * 65536). The dropout probability is therefore p rounded to a multiple of 1/65536
(0.1 becomes 0.100006), and the kept elements are scaled by 1 / (1 - that probability), so the
expectation is exact. The words come from NumPy's SFC64 generator, 2-3x faster than torch's
Mersenne Twister for the same words (at LLmini-C's attention mask 8 ms instead of 16 per mask),
seeded by one draw from the global torch generator: masks follow `torch.manual_seed` and are
checkpointed with it like every other random stream. Other devices keep PyTorch's own dropout
(Philox on CUDA is fast).

The mask is applied as a multiplication by a keep factor, 1 or 0 in x's own dtype, made from the
16-bit words with integer clamps (`seeded_keep`). Torch's CPU kernels that read a bool tensor
(`masked_fill`, `where`, the comparison that makes it) are not vectorized: at LLmini-C's attention
shape the compare, `masked_fill` and scaling took 9-11 ms where the clamps, product and scaling
take 4. The same elements are dropped as with a bool mask and the kept ones are bit-identical
(x * 1 is x); a dropped element is x * 0, a zero (-0.0 for negative x, and NaN for an infinite
x, which a diverged run has anyway). A plain `Dropout` keeps that factor for backward: 2 bytes
per element under bf16 autocast, where the bool mask took 1.

`dropped_matmul(drop, x, v)` is `drop(x) @ v` for the attention probabilities: instead of keeping
the mask and the dropped copy of x for backward (at LLmini-C's shape 25 MB per layer, 200 MB of a
2.7 GB step), it keeps the mask's seed and draws the same mask again in backward; x itself is kept
anyway by the softmax before it. Values and gradients are bit-identical to `drop(x) @ v`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16


def mask_seed() -> int:
    """One draw from the global torch generator: the seed of one mask."""
    return int(torch.randint(0, 1 << 62, (1,)))


# the bit pattern of 1.0 in the 16-bit float types: the keep factor is made in int16 and viewed as them
ONE_BITS = {torch.bfloat16: 0x3F80, torch.float16: 0x3C00}


def seeded_keep(shape: torch.Size, threshold: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Keep factor in `dtype`: 0 with probability threshold / 65536, else 1; four elements per 64-bit word.
    An element is dropped when its 16 bits, read as an unsigned number u, are below threshold."""
    n = shape.numel()
    words = np.random.Generator(np.random.SFC64(seed)).integers(
        -(1 << 63), (1 << 63) - 1, size=(n + 3) // 4, dtype=np.int64, endpoint=True)
    bits = torch.from_numpy(words).view(torch.int16)[:n]  # signed 16 random bits: u = bits + 32768 on [0, 65536)
    low = threshold - LEVELS // 2  # dropped: bits < low; 1 <= threshold < 65536 keeps low - 1 in int16
    keep = bits.clamp(low - 1, low).sub_(low - 1)  # int16 0 (dropped) or 1; integer clamps are vectorized
    keep = keep.mul_(ONE_BITS[dtype]).view(dtype) if dtype in ONE_BITS else keep.to(dtype)
    return keep.view(shape)


def draw_keep(shape: torch.Size, threshold: int, dtype: torch.dtype) -> torch.Tensor:
    """A fresh keep factor (see `seeded_keep`) whose seed is drawn from the global torch generator."""
    return seeded_keep(shape, threshold, mask_seed(), dtype)


def dropped(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """x with the dropped elements zeroed and the kept ones scaled (one order of operations for the
    forward and the copy backward recomputes, so the two are bit-identical)."""
    return (x * keep).mul_(scale)


class Dropout(nn.Dropout):
    """`nn.Dropout` (an instance of it, same contract); on CPU with 16-bit masks, see the module docstring."""

    def __init__(self, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        super().__init__(p)
        self.threshold = min(round(p * LEVELS), LEVELS - 1)
        self.scale = 1.0 / (1.0 - self.threshold / LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return dropped(x, draw_keep(x.shape, self.threshold, x.dtype), self.scale)


class DroppedMatmul(torch.autograd.Function):
    """Dropout(x) @ v that saves the mask's seed instead of its keep factor and the dropped x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, v: torch.Tensor, threshold: int, scale: float) -> torch.Tensor:
        seed = mask_seed()
        out = dropped(x, seeded_keep(x.shape, threshold, seed, x.dtype), scale) @ v
        ctx.save_for_backward(x, v)
        ctx.seed, ctx.threshold, ctx.scale = seed, threshold, scale
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, v = ctx.saved_tensors
        keep = seeded_keep(x.shape, ctx.threshold, ctx.seed, x.dtype)  # the forward's mask, drawn again
        grad_x = grad_v = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ v.transpose(-2, -1).to(grad.dtype)).mul_(ctx.scale).mul_(keep).to(x.dtype)
        if ctx.needs_input_grad[1]:
            kept = dropped(x, keep, ctx.scale)
            grad_v = (kept.transpose(-2, -1).to(grad.dtype) @ grad).to(v.dtype)
        return grad_x, grad_v, None, None


def dropped_matmul(drop: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """drop(x) @ v; in CPU training with lmlab's `Dropout` through `DroppedMatmul` (see the module docstring)."""
    if (isinstance(drop, Dropout) and drop.training and drop.threshold and x.device.type == "cpu"
            and torch.is_grad_enabled() and (x.requires_grad or v.requires_grad)):
        return DroppedMatmul.apply(x, v, drop.threshold, drop.scale)
    return drop(x) @ v
