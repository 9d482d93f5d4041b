"""Dropout whose CPU masks cost a quarter of the random numbers.

PyTorch's CPU dropout draws one Bernoulli sample per element from a scalar Mersenne Twister; at
LLmini-C's shape (attention probabilities of 32 x 4 x 256 x 256 per layer) that was 15% of a
training step, more than all of its elementwise work. Here each 64-bit random word gives four
elements 16 bits each: an element is kept when its 16 bits, read as an unsigned number, are at
least round(p * 65536). The dropout probability is therefore p rounded to a multiple of 1/65536
(0.1 becomes 0.100006), and the kept elements are scaled by 1 / (1 - that probability), so the
expectation is exact. Masks come from the global torch generator (seeded and checkpointed like
every other random stream). Other devices keep PyTorch's own dropout (Philox on CUDA is fast).

`dropped_matmul(drop, x, v)` is `drop(x) @ v` for the attention probabilities: instead of keeping
the mask and the dropped copy of x for backward (at LLmini-C's shape 25 MB per layer, 200 MB of a
2.7 GB step), it keeps the generator's state and draws the same mask again in backward; x itself
is kept anyway by the softmax before it. Values and gradients are bit-identical to `drop(x) @ v`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16


def drop_mask(shape: torch.Size, threshold: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask of the elements to drop: P(True) = threshold / 65536, four elements per 64-bit draw."""
    n = shape.numel()
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, generator=generator)
    bits = words.view(torch.int16)[:n]  # signed view of 16 random bits: u = bits + 32768 is uniform on [0, 65536)
    return (bits < threshold - LEVELS // 2).view(shape)


class Dropout(nn.Dropout):
    """`nn.Dropout` (an instance of it, same contract); on CPU with 16-bit masks, see the module docstring."""

    def __init__(self, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        super().__init__(p)
        self.threshold = round(p * LEVELS)
        self.scale = 1.0 / (1.0 - self.threshold / LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return x.masked_fill(drop_mask(x.shape, self.threshold), 0.0).mul_(self.scale)


class DroppedMatmul(torch.autograd.Function):
    """Dropout(x) @ v that saves the generator state instead of the mask and the dropped x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, v: torch.Tensor, threshold: int, scale: float) -> torch.Tensor:
        state = torch.get_rng_state()  # the global CPU generator before this mask's draw (5 kB)
        out = x.masked_fill(drop_mask(x.shape, threshold), 0.0).mul_(scale) @ v
        ctx.save_for_backward(x, v, state)
        ctx.threshold, ctx.scale = threshold, scale
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, v, state = ctx.saved_tensors
        generator = torch.Generator()
        generator.set_state(state)
        mask = drop_mask(x.shape, ctx.threshold, generator)  # the forward's mask, drawn again
        grad_x = grad_v = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ v.transpose(-2, -1).to(grad.dtype)).mul_(ctx.scale).masked_fill_(mask, 0.0).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = x.masked_fill(mask, 0.0).mul_(ctx.scale)
            grad_v = (dropped.transpose(-2, -1).to(grad.dtype) @ grad).to(v.dtype)
        return grad_x, grad_v, None, None


def dropped_matmul(drop: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """drop(x) @ v; in CPU training with lmlab's `Dropout` through `DroppedMatmul` (see the module docstring)."""
    if (isinstance(drop, Dropout) and drop.training and drop.threshold and x.device.type == "cpu"
            and torch.is_grad_enabled() and (x.requires_grad or v.requires_grad)):
        return DroppedMatmul.apply(x, v, drop.threshold, drop.scale)
    return drop(x) @ v
