"""Counted and neural bigrams, and the k-gram MLP (Bengio et al. 2003) with its two inputs
(model.input: concatenated embeddings or one-hot vectors, in the INPUTS registry)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.errors import UserError
from lmlab.model.base import dropout, lm_loss
from lmlab.model.baselines.common import Baseline, activation, d_embed, matmul_weights
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights
from lmlab.registry import Registry

INPUTS: Registry = Registry("model.input")


class Bigram(Baseline):
    """Neural bigram: logits[t] = W[idx[t]], one learned V x V table and nothing else."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.table = nn.Embedding(cfg.vocab_size, cfg.vocab_size)
        self.hook_logits = HookPoint()
        init_weights(self, cfg)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        logits = self.hook_logits(self.table(idx))  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)


class CountBigram(Baseline):
    """Counted bigram: p(b | a) = (N[a, b] + k) / (N[a].sum() + k V), add-k smoothing with
    k = model.smoothing.

    Training is counting, not gradient descent: `fit(tokens)` adds the bigram counts of a token
    stream to the buffer `counts`, which checkpoints save like a weight. The model has no
    trainable parameters: it declares `learns_by_counting`, so the trainer calls
    `fit(train_tokens)` once, and the optimizer has nothing to update. Before any fit every prediction is
    uniform (loss = ln V). Logits are log-probabilities: log_softmax leaves them unchanged, so
    lm_loss's cross-entropy is the model's negative log-likelihood.
    """

    learns_by_counting = True

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.smoothing = float(cfg.smoothing)
        if not self.smoothing > 0:
            raise UserError(f"model.smoothing={self.smoothing!r} is invalid; expected a positive float")
        V = cfg.vocab_size
        self.register_buffer("counts", torch.zeros(V, V))  # N[a, b]: how often b followed a
        self.hook_logits = HookPoint()

    @torch.no_grad()
    def fit(self, tokens: torch.Tensor) -> None:
        """Count the bigrams of `tokens`: one stream (N,) or rows (B, T) counted separately."""
        rows = tokens.to(self.counts.device).reshape(-1, tokens.size(-1))  # (B, T)
        V = self.config.vocab_size
        pairs = (rows[:, :-1] * V + rows[:, 1:]).reshape(-1)  # a * V + b
        self.counts += torch.bincount(pairs, minlength=V * V).view(V, V).to(self.counts.dtype)

    def log_probs(self) -> torch.Tensor:
        k, V = self.smoothing, self.config.vocab_size
        return (self.counts + k).log() - (self.counts.sum(1, keepdim=True) + k * V).log()  # (V, V)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        logits = self.hook_logits(self.log_probs()[idx])  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)


def windows(x: torch.Tensor, k: int, fill: float = 0.0) -> torch.Tensor:
    """(B, T, ...) -> (B, T, k, ...): row t holds x[t-k+1..t], oldest first, `fill` before the start."""
    pad = [0, 0] * (x.dim() - 2) + [k - 1, 0]
    return F.pad(x, pad, value=fill).unfold(1, k, 1).movedim(-1, 2)  # unfold puts the window last


@INPUTS.register("embedding")
class EmbeddingWindow(nn.Module):
    """k embeddings from one shared table, concatenated; zero vectors before the start."""

    def __init__(self, cfg, k: int, width: int, hook: HookPoint):
        super().__init__()
        self.k = k
        self.tok_emb = nn.Embedding(cfg.vocab_size, d_embed(cfg))
        self.hook = hook  # the model's hook_embed
        self.fc = nn.Linear(k * d_embed(cfg), width, bias=cfg.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = windows(self.tok_emb(idx), self.k).flatten(2)  # (B, T, k*E)
        return self.fc(self.hook(x))  # (B, T, F)

    def lookup_weights(self) -> int:
        return 0


@INPUTS.register("onehot")
class OneHotWindow(nn.Module):
    """k one-hot vectors, concatenated (zero vectors before the start), into Linear(k*V, F).
    Multiplying a one-hot vector is picking a row, so unless something listens at hook_embed
    the layer sums k columns of its weight instead of building the (B, T, k*V) input: the same
    numbers, without a tensor that a large vocabulary would make huge."""

    def __init__(self, cfg, k: int, width: int, hook: HookPoint):
        super().__init__()
        self.k, self.V = k, cfg.vocab_size
        self.hook = hook
        self.fc = nn.Linear(k * cfg.vocab_size, width, bias=cfg.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        ids = windows(idx, self.k, fill=-1)  # (B, T, k); -1 before the start
        present = (ids >= 0).unsqueeze(-1)  # (B, T, k, 1)
        ids = ids.clamp(min=0)
        if self.hook.active():
            x = (F.one_hot(ids, self.V) * present).flatten(2).to(self.fc.weight.dtype)  # (B, T, k*V)
            return self.fc(self.hook(x))
        slots = torch.arange(self.k, device=idx.device) * self.V  # slot j reads columns j*V..(j+1)*V-1
        cols = F.embedding(ids + slots, self.fc.weight.t())  # (B, T, k, F)
        out = (cols * present).sum(2)  # (B, T, F)
        return out if self.fc.bias is None else out + self.fc.bias

    def lookup_weights(self) -> int:
        return self.fc.weight.numel()  # picked, not multiplied: no matmul FLOPs


class Dense(nn.Module):
    """activation(fc(x)), then dropout; hook_hidden sees the activations."""

    def __init__(self, fc: nn.Module, cfg):
        super().__init__()
        self.fc = fc
        self.act = activation(cfg)
        self.hook_hidden = HookPoint()
        self.drop = dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.hook_hidden(self.act(self.fc(x))))


class KGramMLP(Baseline):
    """Bengio et al. 2003: the logits at t read tokens t-k+1..t (k = model.ngram) through
    n_layer hidden layers of width d_mlp (0 = 4 * d_model) and model.activation. The input
    (model.input) is k concatenated embeddings or one-hot vectors; before the start of the
    sequence the vectors are zero. Causal by construction. (The paper's direct input-to-output
    connections are left out, as in makemore.)"""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        k, width = cfg.ngram, cfg.mlp_width
        if k < 1:
            raise UserError(f"model.ngram={k!r} is invalid; expected a positive integer")
        # The input layer applies hook_embed; registering it here first names it `hook_embed`.
        self.hook_embed = HookPoint()  # (B, T, k*E) embeddings or (B, T, k*V) one-hot vectors
        first = INPUTS.get(cfg.input)(cfg, k, width, self.hook_embed)
        fcs = [first] + [nn.Linear(width, width, bias=cfg.bias) for _ in range(cfg.n_layer - 1)]
        self.layers = nn.ModuleList(Dense(fc, cfg) for fc in fcs)
        self.head = nn.Linear(width, cfg.vocab_size, bias=cfg.bias)
        init_weights(self, cfg)

    def forward(self, idx, targets=None, loss_mask=None, cache=None):
        h = idx
        for layer in self.layers:
            h = layer(h)  # (B, T, F)
        logits = self.head(h)  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)

    def flops_per_token(self) -> int:
        return 6 * (matmul_weights(self) - self.layers[0].fc.lookup_weights())
