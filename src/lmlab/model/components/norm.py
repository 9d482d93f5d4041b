"""Normalization layers (`model.norm`)."""

from __future__ import annotations

from torch import nn

from lmlab.registry import Registry

NORMS: Registry = Registry("model.norm")


@NORMS.register("layernorm", "LayerNorm: centre and scale, learned gain (and bias if model.bias)")
def layernorm(d: int, cfg) -> nn.Module:
    return nn.LayerNorm(d, eps=cfg.norm_eps, bias=cfg.bias)


@NORMS.register("rmsnorm", "RMSNorm: scale by the root mean square, learned gain (Zhang & Sennrich 2019)")
def rmsnorm(d: int, cfg) -> nn.Module:
    return nn.RMSNorm(d, eps=cfg.norm_eps)


@NORMS.register("none", "no normalization (identity)")
def no_norm(d: int, cfg) -> nn.Module:
    return nn.Identity()
