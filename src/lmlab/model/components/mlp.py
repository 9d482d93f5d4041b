"""Position-wise feed-forward layers (`model.mlp`). Output projections are named `proj`
so that initialization can scale every residual-stream write the same way."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.model.base import dropout
from lmlab.model.hooks import HookPoint
from lmlab.registry import Registry

MLPS: Registry = Registry("model.mlp")


class MLP(nn.Module):
    """D -> F -> activation -> D, then dropout. With model.mlp_proj off: D -> activation(D), one
    Linear (the first FFN of Karpathy's GPT lecture, before "projections" are added)."""

    def __init__(self, cfg, activation: nn.Module):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_width, bias=cfg.bias)
        self.act = activation
        self.hook_hidden = HookPoint()
        self.hidden_drop = dropout(cfg.site_dropout("mlp"))
        self.proj = nn.Linear(cfg.mlp_width, cfg.d_model, bias=cfg.bias) if cfg.mlp_proj else nn.Identity()
        self.drop = dropout(cfg.site_dropout("mlp_resid"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.hidden_drop(self.hook_hidden(self.act(self.fc(x))))))


class ReLUSquared(nn.Module):
    """relu(x)^2 (So et al. 2021, 'Primer'; the MLP of modded-nanogpt's speedruns)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class SwiGLU(nn.Module):
    """silu(x W_gate) * (x W_up) -> W_proj (Shazeer 2020, 'GLU Variants Improve Transformer')."""

    def __init__(self, cfg):
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.mlp_width, bias=cfg.bias)
        self.up = nn.Linear(cfg.d_model, cfg.mlp_width, bias=cfg.bias)
        self.hook_hidden = HookPoint()
        self.hidden_drop = dropout(cfg.site_dropout("mlp"))
        self.proj = nn.Linear(cfg.mlp_width, cfg.d_model, bias=cfg.bias)
        self.drop = dropout(cfg.site_dropout("mlp_resid"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.hidden_drop(self.hook_hidden(F.silu(self.gate(x)) * self.up(x)))))


MLPS.register("gelu", "Linear-GELU-Linear (exact erf GELU, as nanoGPT)")(lambda cfg: MLP(cfg, nn.GELU()))
MLPS.register("gelu_tanh", "Linear-GELU-Linear with the tanh approximation (OpenAI GPT-2's 'gelu_new')")(
    lambda cfg: MLP(cfg, nn.GELU(approximate="tanh")))
MLPS.register("relu", "Linear-ReLU-Linear (as the original Transformer)")(lambda cfg: MLP(cfg, nn.ReLU()))
MLPS.register("relu2", "Linear-ReLU^2-Linear (Primer; modded-nanogpt)")(lambda cfg: MLP(cfg, ReLUSquared()))
MLPS.register("swiglu", "gated SiLU unit (as LLaMA)")(SwiGLU)
MLPS.register("none", "no MLP sublayer: attention-only blocks")(lambda cfg: None)
