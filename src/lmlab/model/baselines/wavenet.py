"""WaveNet-style hierarchical MLP (van den Oord et al. 2016; makemore part 5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.model.base import dropout, lm_loss
from lmlab.model.baselines.common import Baseline, activation, d_embed
from lmlab.model.components.norm import NORMS
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights


class Merge(nn.Module):
    """Merge each position with the one `dilation` steps back: Linear -> norm -> activation.
    makemore's FlattenConsecutive(2) + Linear, computed at every position (a causal dilated
    convolution of kernel 2, as WaveNet)."""

    def __init__(self, d_in: int, cfg, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.fc = nn.Linear(2 * d_in, cfg.d_model, bias=cfg.bias)
        self.norm = NORMS.get(cfg.norm)(cfg.d_model, cfg)
        self.act = activation(cfg)
        self.hook_hidden = HookPoint()
        self.drop = dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation
        pairs = torch.cat([x[:, :-d], x[:, d:]], dim=-1)  # (B, S-d, 2C): (older, newer)
        return self.drop(self.hook_hidden(self.act(self.norm(self.fc(pairs)))))  # (B, S-d, D)


class WaveNet(Baseline):
    """Hierarchical MLP (van den Oord et al. 2016; makemore part 5): level i merges pairs of
    level i-1 nodes 2**i positions apart, so after n_layer levels the logits at t read exactly
    the 2**n_layer tokens t-2**n_layer+1..t, through the same tree makemore builds over a
    block of that size. The embeddings are left-padded with 2**n_layer - 1 zero vectors, so
    every position gets logits. Norms are model.norm (per position): makemore's BatchNorm
    would mix positions and sequences and so break causality while training."""

    def __init__(self, cfg):
        super().__init__()
        self._token_input(cfg)
        widths = [d_embed(cfg)] + [cfg.d_model] * (cfg.n_layer - 1)
        self.layers = nn.ModuleList(Merge(w, cfg, 2 ** i) for i, w in enumerate(widths))
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.bias)
        init_weights(self, cfg)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        x = self.hook_embed(self.drop(self.tok_emb(idx)))  # (B, T, E)
        x = F.pad(x, (0, 0, 2 ** len(self.layers) - 1, 0))  # (B, T + 2^L - 1, E)
        for layer in self.layers:
            x = layer(x)  # each shrinks the sequence by its dilation
        logits = self.head(x)  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)
