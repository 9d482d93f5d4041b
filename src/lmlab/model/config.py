"""ModelConfig: every architectural switch of the model zoo as one typed dataclass.

Field names are a user-facing contract (sweeps, presets and docs use them). Strings are
resolved to classes by the registries in `lmlab.model.components` at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmlab.config_base import Section, require


@dataclass
class ModelConfig(Section):
    """The model: architecture, sizes and component choices."""

    arch: str = "transformer"  # registered architecture (see `lmlab presets --components`)
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 0  # key/value heads: 0 = n_head (MHA); 1 = MQA; in between = GQA
    d_model: int = 128
    d_mlp: int = 0  # hidden width of the MLP; 0 = 4 * d_model
    context_len: int = 128
    vocab_size: int = 0  # 0 = taken from the tokenizer at build time
    position: str = "learned"  # learned | sinusoidal | none
    norm: str = "layernorm"  # layernorm | rmsnorm
    norm_position: str = "pre"  # pre | post
    norm_eps: float = 1e-5
    mlp: str = "gelu"  # gelu | relu | swiglu
    attention: str = "auto"  # sdpa (fused) | manual (materializes the pattern) | auto (manual on CPU)
    bias: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.0
    init: str = "gpt2"  # gpt2 | torch

    _section = "model"

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "d_model", "context_len"):
            require(getattr(self, name) >= 1, self, name, "a positive integer")
        require(self.n_kv_head >= 0, self, "n_kv_head", "0 (= n_head) or a positive divisor of n_head")
        require(self.d_mlp >= 0, self, "d_mlp", "0 (= 4 * d_model) or a positive integer")
        require(self.vocab_size >= 0, self, "vocab_size", "0 (from the tokenizer) or a positive integer")
        require(self.d_model % self.n_head == 0, self, "d_model",
                f"a multiple of model.n_head={self.n_head}")
        require(self.n_head % self.kv_heads == 0, self, "n_kv_head",
                f"a divisor of model.n_head={self.n_head}")
        require(0.0 <= self.dropout < 1.0, self, "dropout", "a float in [0, 1)")
        require(self.norm_eps > 0, self, "norm_eps", "a positive float")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def mlp_width(self) -> int:
        return self.d_mlp or 4 * self.d_model
