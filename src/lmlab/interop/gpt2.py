"""GPT-2 (GPT2LMHeadModel): learned positions, LayerNorm, pre-norm, GELU (exact, tanh) or ReLU MLP,
multi-head attention, residuals and output projection on, no QK-norm. A bias-free model exports
with zero biases (HF's GPT-2 always has them). GPT-2's Conv1D layers store weights transposed."""

from __future__ import annotations

import torch

from lmlab.errors import UserError
from lmlab.interop.family import COMMON, Family, register_family
from lmlab.model.config import ModelConfig

GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}


@register_family
class GPT2(Family):
    """GPT-2: learned positions, LayerNorm, GELU/ReLU MLP, multi-head attention"""

    name, label = "gpt2", "GPT-2"
    needs = {**COMMON, "position": "learned", "norm": "layernorm"}

    def mismatches(self, cfg: ModelConfig) -> list[str]:
        wrong = super().mismatches(cfg)
        if cfg.mlp not in GPT2_ACTIVATIONS:
            wrong.append(f"model.mlp is {cfg.mlp!r} (it needs one of {', '.join(GPT2_ACTIVATIONS)})")
        if cfg.kv_heads != cfg.n_head:
            wrong.append(f"model.n_kv_head is {cfg.n_kv_head} (GPT-2 has no grouped-query attention)")
        return wrong

    def model_class(self):
        import transformers

        return transformers.GPT2LMHeadModel

    def to_config(self, cfg: ModelConfig):
        import transformers

        return transformers.GPT2Config(
            vocab_size=cfg.vocab_size, n_positions=cfg.context_len, n_embd=cfg.d_model, n_layer=cfg.n_layer,
            n_head=cfg.n_head, n_inner=cfg.mlp_width, activation_function=GPT2_ACTIVATIONS[cfg.mlp],
            resid_pdrop=cfg.site_dropout("resid"), embd_pdrop=cfg.dropout, attn_pdrop=cfg.site_dropout("attn"),
            layer_norm_epsilon=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
            bos_token_id=None, eos_token_id=None)

    def from_config(self, hf) -> ModelConfig:
        act = {v: k for k, v in GPT2_ACTIVATIONS.items()}.get(hf.activation_function)
        if act is None:
            raise UserError(f"GPT-2 activation_function={hf.activation_function!r} is not supported; "
                            f"valid: {', '.join(GPT2_ACTIVATIONS.values())}")
        return ModelConfig(
            **self.needs, mlp=act, n_layer=hf.n_layer, n_head=hf.n_head,
            d_model=hf.n_embd, d_mlp=hf.n_inner or 4 * hf.n_embd, context_len=hf.n_positions,
            vocab_size=hf.vocab_size, norm_eps=hf.layer_norm_epsilon, bias=True,
            tie_embeddings=hf.tie_word_embeddings, dropout=hf.embd_pdrop, attn_dropout=hf.attn_pdrop,
            resid_dropout=hf.resid_pdrop)

    @staticmethod
    def pairs(cfg: ModelConfig) -> list[tuple[str, str, bool]]:
        """(lmlab name, HF name, transposed) for every GPT-2 weight."""
        pairs = [("tok_emb.weight", "transformer.wte.weight", False),
                 ("pos_emb.emb.weight", "transformer.wpe.weight", False),
                 ("ln_f.weight", "transformer.ln_f.weight", False), ("ln_f.bias", "transformer.ln_f.bias", False)]
        for i in range(cfg.n_layer):
            ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
            for a, b, t in [("ln1", "ln_1", False), ("ln2", "ln_2", False), ("attn.qkv", "attn.c_attn", True),
                            ("attn.proj", "attn.c_proj", True), ("mlp.fc", "mlp.c_fc", True),
                            ("mlp.proj", "mlp.c_proj", True)]:
                pairs += [(f"{ours}{a}.weight", f"{theirs}{b}.weight", t),
                          (f"{ours}{a}.bias", f"{theirs}{b}.bias", False)]
        if not cfg.tie_embeddings:
            pairs.append(("lm_head.weight", "lm_head.weight", False))
        return pairs

    def to_state(self, model) -> dict[str, torch.Tensor]:
        ours, out = model.state_dict(), {}
        for a, b, transpose in self.pairs(model.config):
            w = ours.get(a)
            if w is None:  # a bias-free lmlab layer: HF's GPT-2 has the bias, so it is zero
                w = torch.zeros(ours[a.replace(".bias", ".weight")].shape[0])
            out[b] = w.t().contiguous() if transpose else w
        return out

    def from_state(self, theirs: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
        out = {a: theirs[b].t().contiguous() if transpose else theirs[b] for a, b, transpose in self.pairs(cfg)}
        if cfg.tie_embeddings:
            out["lm_head.weight"] = out["tok_emb.weight"]
        return out
