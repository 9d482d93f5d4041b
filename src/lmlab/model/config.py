"""ModelConfig: every architectural switch of the model zoo as one typed dataclass.

Field names are a user-facing contract (sweeps, presets and docs use them). Strings are
resolved to classes by the registries in `lmlab.model.components` at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmlab.config_base import Section, require, require_choice

PAD_MIN_VOCAB = 2048  # smaller vocabularies are left as they are (their head is cheap either way)
MAX_CONTEXT = 2**20  # a bound no small model trains at (an absurd value would size tables and masks by it)


@dataclass
class ModelConfig(Section):
    """The model: architecture, sizes and component choices."""

    arch: str = "transformer"  # registered architecture (see `lmlab presets --components`)
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 0  # key/value heads: 0 = n_head (MHA); 1 = MQA; in between = GQA
    d_model: int = 128
    d_mlp: int = 0  # hidden width of the MLP; 0 = mlp_mult * d_model
    mlp_mult: float = 4.0  # MLP width as a multiple of d_model when d_mlp = 0
    context_len: int = 128
    vocab_size: int = 0  # 0 = taken from the tokenizer at build time
    vocab_pad: int = 64  # transformer: embedding/head rows rounded up to a multiple of this when the vocabulary
    # has >= 2048 tokens (aligned matmuls; pad ids are never produced, scored or exported); 0 = never
    fused_loss: bool = True  # transformer: training computes head + cross-entropy in row chunks without the
    # (B, T, V) logits (forward returns logits None when training with targets); false = full logits
    position: str = "learned"  # learned | sinusoidal | rope | alibi | none
    rope_theta: float = 10000.0  # RoPE base wavelength
    norm: str = "layernorm"  # layernorm | rmsnorm | none
    norm_position: str = "pre"  # pre | post
    norm_eps: float = 1e-5
    residual: bool = True  # residual connections around each sublayer
    mlp: str = "gelu"  # gelu | gelu_tanh | relu | relu2 | swiglu | none
    mlp_proj: bool = True  # the MLP's second Linear; off = act(fc(x)) alone, d_model wide (ladder 03-05)
    final_norm: str = "auto"  # the norm before the head: auto (= model.norm, none after post-norm blocks) |
    # layernorm | rmsnorm | none
    head_bias: bool = False  # a bias on the output head (transformer, bow)
    attention: str = "auto"  # sdpa (fused) | manual (materializes the pattern) | auto (manual on CPU)
    attn_out_proj: bool = True  # the output projection after concatenating heads
    qk_norm: bool = False  # normalize queries and keys per head
    bias: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.0  # everywhere, unless a site below sets its own
    attn_dropout: float = -1.0  # on attention weights; -1 = model.dropout
    resid_dropout: float = -1.0  # on each sublayer's output before the residual add; -1 = model.dropout
    mlp_resid_dropout: float = -1.0  # on the MLP sublayer's output alone; -1 = resid_dropout
    mlp_dropout: float = -1.0  # on the MLP's hidden activation; -1 = model.dropout
    grad_checkpoint: bool = False  # recompute block activations in backward to save memory
    init: str = "gpt2"  # gpt2 | torch | xavier
    # baselines (see lmlab.model.baselines package)
    ngram: int = 3  # mlp: tokens each prediction reads, the current one included
    input: str = "embedding"  # mlp: embedding | onehot
    d_embed: int = 0  # mlp, wavenet, lstm, gru: embedding width; 0 = d_model
    activation: str = "tanh"  # mlp, wavenet: tanh | relu | gelu | silu
    smoothing: float = 1.0  # count_bigram: add-k smoothing

    _section = "model"

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "d_model", "context_len"):
            require(getattr(self, name) >= 1, self, name, "a positive integer")
        require(self.context_len <= MAX_CONTEXT, self, "context_len", f"at most {MAX_CONTEXT:,} tokens")
        require(self.n_kv_head >= 0, self, "n_kv_head", "0 (= n_head) or a positive divisor of n_head")
        require(self.d_mlp >= 0, self, "d_mlp", "0 (= 4 * d_model) or a positive integer")
        require(self.vocab_size >= 0, self, "vocab_size", "0 (from the tokenizer) or a positive integer")
        require(self.vocab_pad >= 0, self, "vocab_pad", "0 (no padding) or a positive integer such as 64")
        require(self.d_model % self.n_head == 0, self, "d_model",
                f"a multiple of model.n_head={self.n_head}")
        require(self.n_head % self.kv_heads == 0, self, "n_kv_head",
                f"a divisor of model.n_head={self.n_head}")
        require(0.0 <= self.dropout < 1.0, self, "dropout", "a float in [0, 1)")
        for site in ("attn_dropout", "resid_dropout", "mlp_dropout", "mlp_resid_dropout"):
            require(getattr(self, site) == -1.0 or 0.0 <= getattr(self, site) < 1.0, self, site,
                    "-1 (= model.dropout) or a float in [0, 1)")
        require(self.mlp_mult > 0, self, "mlp_mult", "a positive float")
        require_choice(self, "final_norm", ("auto", "layernorm", "rmsnorm", "none"))
        require(self.mlp_proj or self.mlp == "none" or self.mlp_width == self.d_model, self, "mlp_proj",
                f"true, or false with an MLP as wide as model.d_model={self.d_model} (set model.mlp_mult=1 "
                f"or model.d_mlp={self.d_model}): without a projection its output is the residual stream")
        require(self.mlp_proj or self.mlp != "swiglu", self, "mlp_proj", "true for model.mlp='swiglu'")
        require(self.ngram >= 1, self, "ngram", "a positive integer")
        require(self.d_embed >= 0, self, "d_embed", "0 (= d_model) or a positive integer")
        require(self.smoothing > 0, self, "smoothing", "a positive float")
        require(self.rope_theta > 0, self, "rope_theta", "a positive float")
        require(self.position != "rope" or self.d_head % 2 == 0, self, "position",
                f"an even head size for rope (d_model / n_head = {self.d_head})")
        require(self.norm_eps > 0, self, "norm_eps", "a positive float")

    @property
    def padded_vocab(self) -> int:
        """Rows of the transformer's embedding and head: vocab_size rounded up to vocab_pad from
        PAD_MIN_VOCAB tokens on (GPT-2's 50,257 -> 50,304, as nanoGPT pads); vocab_size below."""
        m = self.vocab_pad
        if not m or self.vocab_size < PAD_MIN_VOCAB:
            return self.vocab_size
        return -(-self.vocab_size // m) * m

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def mlp_width(self) -> int:
        return self.d_mlp or int(self.mlp_mult * self.d_model)

    @property
    def qk_norm_name(self) -> str:
        """The norm QK-norm applies to each head: model.norm, or RMSNorm when model.norm is none."""
        return "rmsnorm" if self.norm == "none" else self.norm

    def final_norm_name(self, blocks_end_in_norm: bool) -> str:
        """model.final_norm with `auto` resolved: model.norm after blocks that do not end in a
        norm (pre-norm), none after blocks that do (post-norm)."""
        if self.final_norm != "auto":
            return self.final_norm
        return "none" if blocks_end_in_norm else self.norm

    def site_dropout(self, site: str) -> float:
        """Dropout at `site` (attn | resid | mlp | mlp_resid): its own field, or model.dropout when -1
        (mlp_resid: resid's when -1)."""
        if site == "mlp_resid" and self.mlp_resid_dropout < 0:
            site = "resid"
        value = getattr(self, f"{site}_dropout")
        return self.dropout if value < 0 else value
