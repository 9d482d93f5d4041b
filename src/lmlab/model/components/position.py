"""Absolute position information added to token embeddings (`model.position`).

Each returns a (T, D) tensor for positions start..start+T-1, or 0 when positions are not
added to the embeddings.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmlab.registry import Registry

POSITIONS: Registry = Registry("model.position")


@POSITIONS.register("learned", "a learned embedding per position (GPT-2)")
class LearnedPosition(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.emb = nn.Embedding(cfg.context_len, cfg.d_model)

    def forward(self, start: int, length: int) -> torch.Tensor:
        pos = torch.arange(start, start + length, device=self.emb.weight.device)
        return self.emb(pos)  # (T, D)


@POSITIONS.register("sinusoidal", "fixed sines and cosines of geometric wavelengths (Vaswani et al. 2017)")
class SinusoidalPosition(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(cfg.context_len, cfg.d_model), persistent=False)

    def forward(self, start: int, length: int) -> torch.Tensor:
        return self.table[start:start + length]  # (T, D)


@POSITIONS.register("none", "no position signal: the causal mask alone breaks symmetry (NoPE)")
class NoPosition(nn.Module):
    def __init__(self, cfg):
        super().__init__()

    def forward(self, start: int, length: int) -> float:
        return 0.0


def sinusoidal_table(length: int, d: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # (D/2,)
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table
