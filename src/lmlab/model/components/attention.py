"""Causal self-attention with grouped key/value heads and a KV cache (`model.attention`).

`sdpa` calls PyTorch's fused `scaled_dot_product_attention`; `manual` computes the softmax
pattern explicitly and passes it through `hook_pattern`. The fused path falls back to the
manual one whenever something listens at `hook_pattern`, so analysis always sees the real
pattern. `auto` (the default) is manual on CPU and fused elsewhere: on a 2-core AVX-512 CPU
(torch 2.13) the CPU flash kernel's backward is the slow part of a small model's step, and
the manual path trained 1.6x faster at 4x128/context 64 in bf16 (28 vs 45 ms/step) and 1.1x
at 6x384/context 256; on GPUs the fused kernels win. n_kv_head = n_head is multi-head attention, 1 is multi-query (Shazeer 2019), and
values in between are grouped-query attention (Ainslie et al. 2023).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.model.components.norm import NORMS
from lmlab.model.components.position import NO_CONTEXT, AttentionContext
from lmlab.model.base import dropout
from lmlab.model.dropout import dropped_matmul
from lmlab.model.cache import KVCache
from lmlab.model.hooks import HookPoint
from lmlab.registry import Registry

ATTENTIONS: Registry = Registry("model.attention")


def causal_mask(t_query: int, t_key: int, device) -> torch.Tensor:
    """(Tq, Tk) booleans, True where query i (at absolute position Tk-Tq+i) may attend key j."""
    return torch.ones(t_query, t_key, dtype=torch.bool, device=device).tril(diagonal=t_key - t_query)


def additive_causal_mask(t_query: int, t_key: int, device, dtype: torch.dtype) -> torch.Tensor:
    """(Tq, Tk) with 0 where attention is allowed and -inf elsewhere; cached per shape in eager mode.
    Under torch.compile the mask is traced instead (the graph keeps it as a constant), so dynamo
    never meets the cache, which it would warn about."""
    if torch.compiler.is_compiling():
        return _additive_causal_mask(t_query, t_key, device, dtype)
    return _cached_additive_causal_mask(t_query, t_key, device, dtype)


def _additive_causal_mask(t_query: int, t_key: int, device, dtype: torch.dtype) -> torch.Tensor:
    allowed = causal_mask(t_query, t_key, device)
    return torch.zeros(t_query, t_key, device=device, dtype=dtype).masked_fill(~allowed, float("-inf"))


_cached_additive_causal_mask = functools.lru_cache(maxsize=16)(_additive_causal_mask)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg, layer: int, manual: bool | None):
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.d_head = cfg.n_head, cfg.kv_heads, cfg.d_head
        self.manual = manual
        self.dropout = cfg.site_dropout("attn")
        kv_width = 2 * self.n_kv_head * self.d_head
        self.qkv = nn.Linear(cfg.d_model, cfg.d_model + kv_width, bias=cfg.bias)
        # QK-norm (Henry et al. 2020; Dehghani et al. 2023): normalize each head's q and k.
        self.q_norm = qk_norm(cfg) if cfg.qk_norm else nn.Identity()
        self.k_norm = qk_norm(cfg) if cfg.qk_norm else nn.Identity()
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias) if cfg.attn_out_proj else nn.Identity()
        self.attn_drop = dropout(self.dropout)
        self.resid_drop = dropout(cfg.site_dropout("resid"))
        self.hook_q = HookPoint()  # (B, H, T, Dh) after QK-norm and rotation
        self.hook_k = HookPoint()  # (B, Hkv, T, Dh)
        self.hook_pattern = HookPoint()  # (B, H, Tq, Tk) softmax weights
        self.hook_z = HookPoint()  # (B, H, T, Dh) per-head outputs, before the output projection

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                positions: AttentionContext = NO_CONTEXT) -> torch.Tensor:
        B, T, D = x.shape
        H, Hkv, Dh = self.n_head, self.n_kv_head, self.d_head
        q, k, v = self.qkv(x).split([D, Hkv * Dh, Hkv * Dh], dim=-1)
        q = self.q_norm(q.view(B, T, H, Dh)).transpose(1, 2)  # (B, H, T, Dh)
        k = self.k_norm(k.view(B, T, Hkv, Dh)).transpose(1, 2)  # (B, Hkv, T, Dh)
        v = v.view(B, T, Hkv, Dh).transpose(1, 2)  # (B, Hkv, T, Dh)
        q, k = positions.rotate(q, k)
        q, k = self.hook_q(q), self.hook_k(k)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, Hkv, Tk, Dh)
        if Hkv != H:
            k = k.repeat_interleave(H // Hkv, dim=1)  # (B, H, Tk, Dh)
            v = v.repeat_interleave(H // Hkv, dim=1)
        manual = self.manual if self.manual is not None else x.device.type == "cpu"
        if manual or self.hook_pattern.active():
            z = self._manual(q, k, v, positions.bias)
        else:
            z = self._fused(q, k, v, positions.bias)
        z = self.hook_z(z)  # (B, H, T, Dh)
        y = z.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.resid_drop(self.proj(y))

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        t_q, t_k = q.size(2), k.size(2)
        p = self.dropout if self.training else 0.0
        if bias is not None:
            mask = bias.to(q.dtype) + additive_causal_mask(t_q, t_k, q.device, q.dtype)  # (H, Tq, Tk)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        if t_q == t_k:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        mask = None if t_q == 1 else causal_mask(t_q, t_k, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)

    def _manual(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        # Scale q (T x Dh) rather than the scores (T x T). Softmax stays in the scores' dtype:
        # the kernels accumulate in fp32 internally, and casting (B, H, T, T) to fp32 and back
        # cost more than the softmax itself under bf16 autocast on CPU.
        scores = (q * (1.0 / math.sqrt(self.d_head))) @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
        scores = scores + additive_causal_mask(q.size(2), k.size(2), q.device, scores.dtype)
        if bias is not None:
            scores = scores + bias.to(scores.dtype)  # (H, Tq, Tk) broadcast over B
        pattern = self.hook_pattern(F.softmax(scores, dim=-1))
        return dropped_matmul(self.attn_drop, pattern, v)  # (B, H, Tq, Dh)


def qk_norm(cfg) -> nn.Module:
    """The configured norm over one head's dimension (RMSNorm when model.norm is none)."""
    return NORMS.get(cfg.qk_norm_name)(cfg.d_head, cfg)


ATTENTIONS.register("sdpa", "fused scaled_dot_product_attention (flash / memory-efficient kernels)")(
    lambda cfg, layer: CausalSelfAttention(cfg, layer, manual=False))
ATTENTIONS.register("auto", "manual on CPU (faster for small models there), sdpa on GPUs")(
    lambda cfg, layer: CausalSelfAttention(cfg, layer, manual=None))
ATTENTIONS.register("manual", "explicit softmax(QK^T/sqrt(d))V; the pattern is visible at hook_pattern")(
    lambda cfg, layer: CausalSelfAttention(cfg, layer, manual=True))
