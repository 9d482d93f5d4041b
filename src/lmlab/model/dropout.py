"""Dropout whose CPU masks cost a quarter of the random numbers.

PyTorch's CPU dropout draws one Bernoulli sample per element from a scalar Mersenne Twister; at
LLmini-C's shape (attention probabilities of 32 x 4 x 256 x 256 per layer) that was 15% of a
training step, more than all of its elementwise work. Here each 64-bit random word gives four
elements 16 bits each: an element is kept when its 16 bits, read as an unsigned number, are at
least round(p * 65536). The dropout probability is therefore p rounded to a multiple of 1/65536
(0.1 becomes 0.100006), and the kept elements are scaled by 1 / (1 - that probability), so the
expectation is exact. Masks come from the global torch generator (seeded and checkpointed like
every other random stream). Other devices keep PyTorch's own dropout (Philox on CUDA is fast).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16


def drop_mask(shape: torch.Size, threshold: int) -> torch.Tensor:
    """Bool mask of the elements to drop: P(True) = threshold / 65536, four elements per 64-bit draw."""
    n = shape.numel()
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64)
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
