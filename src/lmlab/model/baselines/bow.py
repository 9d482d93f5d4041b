"""Causal bag of words (makemore): the transformer with the running mean of the past instead
of attention."""

from __future__ import annotations

import torch
from torch import nn

from lmlab.errors import UserError
from lmlab.model.base import dropout, lm_loss
from lmlab.model.baselines.common import Baseline, tie_head
from lmlab.model.cache import RecurrentCache
from lmlab.model.components.mlp import MLPS
from lmlab.model.components.norm import NORMS
from lmlab.model.components.position import POSITIONS, Scheme
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights


class BowBlock(nn.Module):
    """A pre-norm transformer block whose attention is the uniform average of the past:
    x + mean(norm(x)[0..t]), then x + mlp(norm(x)); model.residual=false drops the `x +`."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        self.layer = layer
        self.residual = cfg.residual
        self.ln1 = NORMS.get(cfg.norm)(cfg.d_model, cfg)
        self.ln2 = NORMS.get(cfg.norm)(cfg.d_model, cfg)
        self.mlp = MLPS.get(cfg.mlp)(cfg)  # None for model.mlp=none
        self.hook_context = HookPoint()  # (B, T, D) the running mean
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor, start: int, cache: RecurrentCache | None) -> torch.Tensor:
        sums = self.ln1(x).cumsum(dim=1)  # (B, T, D)
        if cache is not None:
            sums = sums + cache.state[0][self.layer].unsqueeze(1)  # the tokens before this call
            cache.state[0][self.layer] = sums[:, -1]
        count = torch.arange(start + 1, start + x.size(1) + 1, device=x.device, dtype=torch.float32)
        context = self.hook_context(sums / count[:, None])  # (B, T, D)
        x = x + context if self.residual else context
        if self.mlp is not None:
            out = self.hook_mlp_out(self.mlp(self.ln2(x)))
            x = x + out if self.residual else out
        return self.hook_resid_post(x)


class BagOfWords(Baseline):
    """Causal bag of words (makemore): token + position embeddings, n_layer blocks that add
    the running mean of everything so far and an MLP (model.mlp), a final norm, the head.
    Unlike makemore's BoW it has the transformer's pre-norms (model.norm), so bow and
    transformer differ only in attention; and without norms, the gpt2 init's small
    embeddings learn slowly. The cache carries each block's running sum: O(1) per token."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = POSITIONS.get(cfg.position)(cfg)
        if type(self.pos_emb).context is not Scheme.context:
            raise UserError(f"model.position={cfg.position!r} acts on attention, which bow has not; "
                            f"expected learned, sinusoidal or none")
        self.drop = dropout(cfg.dropout)
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(BowBlock(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = NORMS.get(cfg.final_norm_name(blocks_end_in_norm=False))(cfg.d_model, cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.head_bias)
        init_weights(self, cfg)
        tie_head(self, cfg, cfg.d_model)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.context_len:
            raise ValueError(f"sequence of {start + T} tokens exceeds model.context_len={self.config.context_len}")
        x = self.hook_embed(self.drop(self.tok_emb(idx) + self.pos_emb.embed(start, T)))  # (B, T, D)
        for block in self.blocks:
            x = block(x, start, cache)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        if cache is not None:
            cache.advance(T)
        return logits, lm_loss(logits, targets, loss_mask)

    def new_cache(self, batch_size: int, device=None, dtype=None) -> RecurrentCache:
        w = self.tok_emb.weight
        shape = (self.config.n_layer, batch_size, self.config.d_model)
        return RecurrentCache(torch.zeros(shape, device=device or w.device, dtype=dtype or w.dtype))
