"""Position information (`model.position`).

A scheme does up to two things: `embed(start, length)` returns what is added to the token
embeddings ((T, D) or 0), and `context(start, length)` returns what attention needs for the
positions start..start+T-1: a rotation of queries and keys (RoPE) or an additive score bias
(ALiBi). The context is computed once per forward pass and shared by every layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmlab.model.init import embedding_std
from lmlab.registry import Registry

POSITIONS: Registry = Registry("model.position")


class AttentionContext:
    """Identity: no rotation, no bias (absolute schemes act on the embeddings instead)."""

    bias = None  # (H, Tq, Tk) additive score bias, or None

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return q, k


NO_CONTEXT = AttentionContext()


class Scheme(nn.Module):
    def embed(self, start: int, length: int) -> torch.Tensor | float:
        return 0.0

    def context(self, start: int, length: int) -> AttentionContext:
        return NO_CONTEXT


@POSITIONS.register("learned", "a learned embedding per position (GPT-2)")
class LearnedPosition(Scheme):
    def __init__(self, cfg):
        super().__init__()
        self.emb = nn.Embedding(cfg.context_len, cfg.d_model)

    def embed(self, start: int, length: int) -> torch.Tensor:
        pos = torch.arange(start, start + length, device=self.emb.weight.device)
        return self.emb(pos)  # (T, D)


@POSITIONS.register("sinusoidal", "fixed sines and cosines of geometric wavelengths (Vaswani et al. 2017)")
class SinusoidalPosition(Scheme):
    """The paper's table has amplitude 1 (per-dimension RMS 1/sqrt 2) and is added to token
    embeddings that Vaswani et al. 2017 (§3.4) scale by sqrt(d_model): with their init of std
    d_model^-1/2 both signals start at the same size. Under GPT-2's init (std 0.02) an unscaled
    table would be ~35x the token embeddings: a token's identity is noise on the position signal
    and the model stays at the unigram loss (Mini GPT did, at every size). The principled
    equivalent of §3.4 for any init is to keep the two at the same RMS, so the table is scaled to
    the token embeddings' init std (lmlab.model.init.embedding_std): 0.02 for gpt2 and xavier, 1
    for torch. Measured on minigpt_small cut to 2 layers, 200 steps of TinyStories (unigram 6.06):
    unscaled 6.21, tokens x sqrt(d) 6.08, this 5.66, learned positions 5.51."""

    def __init__(self, cfg):
        super().__init__()
        scale = embedding_std(cfg) * math.sqrt(2.0)  # table RMS 1/sqrt(2) -> the embedding std
        self.register_buffer("table", sinusoidal_table(cfg.context_len, cfg.d_model) * scale, persistent=False)

    def embed(self, start: int, length: int) -> torch.Tensor:
        return self.table[start:start + length]  # (T, D)


@POSITIONS.register("none", "no position signal: the causal mask alone breaks symmetry (NoPE)")
class NoPosition(Scheme):
    def __init__(self, cfg):
        super().__init__()


def sinusoidal_table(length: int, d: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # (D/2,)
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


class RotaryContext(AttentionContext):
    def __init__(self, cos: torch.Tensor, sin: torch.Tensor):
        self.cos, self.sin = cos, sin  # (T, Dh) each

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rotate(q, self.cos, self.sin), rotate(k, self.cos, self.sin)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, Dh) rotated pairwise: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin), where
    x1, x2 are the two halves of the head dimension (the LLaMA / HF `rotate_half` layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat([-x2, x1], dim=-1) * sin.to(x.dtype)


@POSITIONS.register("rope", "rotary embeddings of queries and keys (Su et al. 2021; LLaMA)")
class RotaryPosition(Scheme):
    def __init__(self, cfg):
        super().__init__()
        d_head = cfg.d_head
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d_head, 2, dtype=torch.float32) / d_head))
        angles = torch.outer(torch.arange(cfg.context_len, dtype=torch.float32), inv_freq)  # (T, Dh/2)
        angles = torch.cat([angles, angles], dim=-1)  # (T, Dh)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def context(self, start: int, length: int) -> RotaryContext:
        return RotaryContext(self.cos[start:start + length], self.sin[start:start + length])


class BiasContext(AttentionContext):
    def __init__(self, bias: torch.Tensor):
        self.bias = bias  # (H, Tq, Tk)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """Geometric slopes 2^(-8/n), 2^(-16/n), ...; for n not a power of two, the slopes of the
    next lower power of two followed by every other slope of the next higher (Press et al. 2022)."""
    def powers(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    low = 2 ** math.floor(math.log2(n_head))
    slopes = powers(low) + powers(2 * low)[0::2][: n_head - low]
    return torch.tensor(slopes)


@POSITIONS.register("alibi", "linear distance penalties on attention scores (Press et al. 2022)")
class AlibiPosition(Scheme):
    def __init__(self, cfg):
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(cfg.n_head), persistent=False)

    def context(self, start: int, length: int) -> BiasContext:
        q_pos = torch.arange(start, start + length, device=self.slopes.device)  # (Tq,)
        k_pos = torch.arange(0, start + length, device=self.slopes.device)  # (Tk,)
        distance = (q_pos[:, None] - k_pos[None, :]).clamp(min=0).float()  # (Tq, Tk)
        return BiasContext(-self.slopes[:, None, None] * distance)  # (H, Tq, Tk)
