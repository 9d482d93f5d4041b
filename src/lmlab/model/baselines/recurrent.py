"""Recurrent baselines: LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014) over embeddings."""

from __future__ import annotations

import torch
from torch import nn

from lmlab.model.base import lm_loss
from lmlab.model.baselines.common import Baseline, d_embed, tie_head
from lmlab.model.cache import RecurrentCache
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights


class Recurrent(Baseline):
    """Embeddings -> a multi-layer recurrent network (width d_model, dropout between layers
    and on its input and output) -> head. Each training window starts from the zero state.
    The cache carries the state, so feeding tokens one at a time equals running the whole
    prefix; with no positions there is no length limit.

    With the defaults (gpt2 init, tied head) the std-0.02 embeddings reach the gates weakly
    and training starts slowly: on tinyshakespeare (tiny preset, lr 1e-2) an LSTM is at val
    3.31 after 100 steps (the unigram entropy) and 2.98 after 300; with model.init=torch and
    tie_embeddings=false it is at 2.95 after 100 (a GRU: 2.65).
    """

    rnn_class: type = nn.RNNBase
    n_states = 1  # tensors in the state: (h,) or (h, c)

    def __init__(self, cfg):
        super().__init__()
        self._token_input(cfg)
        between = cfg.dropout if cfg.n_layer > 1 else 0.0  # nn.LSTM warns about dropout on 1 layer
        self.rnn = self.rnn_class(d_embed(cfg), cfg.d_model, cfg.n_layer, bias=cfg.bias,
                                  batch_first=True, dropout=between)
        self.hook_hidden = HookPoint()  # (B, T, D) the top layer's outputs
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        init_weights(self, cfg)
        tie_head(self, cfg, cfg.d_model)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        x = self.hook_embed(self.drop(self.tok_emb(idx)))  # (B, T, E)
        state = None if cache is None else (cache.state if self.n_states > 1 else cache.state[0])
        out, new_state = self.rnn(x, state)  # (B, T, D); state (L, B, D) each
        if cache is not None:
            cache.state = new_state if self.n_states > 1 else (new_state,)
            cache.advance(idx.size(1))
        logits = self.head(self.hook_hidden(self.drop(out)))  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)

    def new_cache(self, batch_size: int, device=None, dtype=None) -> RecurrentCache:
        w = self.tok_emb.weight
        shape = (self.config.n_layer, batch_size, self.config.d_model)
        zeros = [torch.zeros(shape, device=device or w.device, dtype=dtype or w.dtype) for _ in range(self.n_states)]
        return RecurrentCache(*zeros)


class LSTM(Recurrent):
    """LSTM (Hochreiter & Schmidhuber 1997) over embeddings; state (h, c)."""

    rnn_class = nn.LSTM
    n_states = 2


class GRU(Recurrent):
    """GRU (Cho et al. 2014) over embeddings; state h."""

    rnn_class = nn.GRU
