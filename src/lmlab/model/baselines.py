"""Baselines of the model zoo, the seed studies' ladder from bigram to transformer.

    bigram        a learned V x V table of logits (makemore part 1, the neural version)
    count_bigram  the same table counted from data, add-k smoothed; trained by `fit`, not SGD
    mlp           k-gram MLP over concatenated embeddings or one-hot vectors (Bengio et al. 2003)
    wavenet       hierarchical MLP merging neighbours pairwise (van den Oord et al. 2016; makemore 5)
    bow           causal bag of words: the running mean of the past, then an MLP (makemore)
    lstm, gru     recurrent networks over embeddings (Hochreiter & Schmidhuber 1997; Cho et al. 2014)

Every one honours the LanguageModel contract, so train, eval and generate never branch on it.
Models without positions (all but bow) accept sequences of any length. `register(archs)`
adds them to `model.arch` (build.py calls it). Their own fields (model.ngram, model.input,
model.d_embed, model.activation, model.smoothing) are documented in ModelConfig.

Initialization is `lmlab.model.init.init_weights(model, cfg)` for every Linear and Embedding,
as in the transformer. The recurrent matrices of nn.LSTM / nn.GRU are not Linear modules, so
every scheme leaves them at PyTorch's U(-1/sqrt(D), 1/sqrt(D)), the usual choice for them.
The recurrent models start slowly from the gpt2 scheme's std-0.02 embeddings;
`model.init=torch` with untied embeddings (makemore's setting) suits them better (see
Recurrent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.errors import UserError
from lmlab.model.base import LanguageModel, dropout, lm_loss
from lmlab.model.components.mlp import MLPS
from lmlab.model.components.norm import NORMS
from lmlab.model.components.position import POSITIONS, Scheme
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def choose(table: dict, cfg, name: str):
    """table[cfg.name], or the registry's one-line error naming the valid choices."""
    value = getattr(cfg, name)
    if value not in table:
        raise UserError(f"model.{name}={value!r} is not known; valid: {', '.join(sorted(table))}")
    return table[value]


def d_embed(cfg) -> int:
    return cfg.d_embed or cfg.d_model


def matmul_weights(model: nn.Module) -> int:
    """Weights that multiply activations: Linear layers and recurrent (input and hidden) matrices."""
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return n + sum(p.numel() for m in model.modules() if isinstance(m, nn.RNNBase)
                   for name, p in m.named_parameters() if name.startswith("weight_"))


class Baseline(LanguageModel):
    """FLOPs per token for models without attention: 6 per matmul weight (Kaplan et al. 2020)."""

    def flops_per_token(self) -> int:
        return 6 * matmul_weights(self)

    def _token_input(self, cfg) -> None:
        """The input stage wavenet and the recurrent models share: embedding, dropout, hook."""
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, d_embed(cfg))
        self.drop = dropout(cfg.dropout)
        self.hook_embed = HookPoint()


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
    trainable parameters, so the trainer must call `fit(train_tokens)` once when a model has
    it and skip the optimizer when nothing requires grad. Before any fit every prediction is
    uniform (loss = ln V). Logits are log-probabilities: log_softmax leaves them unchanged, so
    lm_loss's cross-entropy is the model's negative log-likelihood.
    """

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


# --- k-gram MLP (Bengio et al. 2003) -------------------------------------------------------

def windows(x: torch.Tensor, k: int, fill: float = 0.0) -> torch.Tensor:
    """(B, T, ...) -> (B, T, k, ...): row t holds x[t-k+1..t], oldest first, `fill` before the start."""
    pad = [0, 0] * (x.dim() - 2) + [k - 1, 0]
    return F.pad(x, pad, value=fill).unfold(1, k, 1).movedim(-1, 2)  # unfold puts the window last


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


INPUTS = {"embedding": EmbeddingWindow, "onehot": OneHotWindow}


class Dense(nn.Module):
    """activation(fc(x)), then dropout; hook_hidden sees the activations."""

    def __init__(self, fc: nn.Module, cfg):
        super().__init__()
        self.fc = fc
        self.act = choose(ACTIVATIONS, cfg, "activation")()
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
        first = choose(INPUTS, cfg, "input")(cfg, k, width, self.hook_embed)
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


# --- WaveNet-style hierarchical MLP -------------------------------------------------------

class Merge(nn.Module):
    """Merge each position with the one `dilation` steps back: Linear -> norm -> activation.
    makemore's FlattenConsecutive(2) + Linear, computed at every position (a causal dilated
    convolution of kernel 2, as WaveNet)."""

    def __init__(self, d_in: int, cfg, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.fc = nn.Linear(2 * d_in, cfg.d_model, bias=cfg.bias)
        self.norm = NORMS.get(cfg.norm)(cfg.d_model, cfg)
        self.act = choose(ACTIVATIONS, cfg, "activation")()
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


# --- models that carry state between generation steps -------------------------------------

class RecurrentCache:
    """State carried between generation steps with KVCache's interface (`pos`, `advance`,
    `reset`): an LSTM's (h, c), a GRU's (h,), a bag of words' running sums."""

    def __init__(self, *state: torch.Tensor):
        self.state = state
        self.pos = 0

    def advance(self, length: int) -> None:
        self.pos += length

    def reset(self) -> None:
        self.state = tuple(torch.zeros_like(s) for s in self.state)
        self.pos = 0


def tie_head(model: nn.Module, cfg, width: int) -> None:
    """Share the token embedding with the output head (Press & Wolf 2017) when configured."""
    if not cfg.tie_embeddings:
        return
    if model.tok_emb.weight.shape != model.head.weight.shape:
        raise UserError(f"model.tie_embeddings=true needs model.d_embed equal to the head's input "
                        f"width {width}; set model.d_embed=0 or model.tie_embeddings=false")
    model.head.weight = model.tok_emb.weight


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
        self.ln_f = NORMS.get(cfg.norm if cfg.final_norm == "auto" else cfg.final_norm)(cfg.d_model, cfg)
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


def register(archs) -> None:
    """Add the baselines to the architecture registry (`model.arch`)."""
    for name, cls in (("bigram", Bigram), ("count_bigram", CountBigram), ("mlp", KGramMLP),
                      ("wavenet", WaveNet), ("bow", BagOfWords), ("lstm", LSTM), ("gru", GRU)):
        archs.register(name)(cls)
