"""LLaMA (LlamaForCausalLM): RoPE, RMSNorm, pre-norm, SwiGLU, any number of key/value heads,
biases all on or all off. Our fused query/key/value matrix is HF's q/k/v projections stacked."""

from __future__ import annotations

import torch

from lmlab.errors import UserError
from lmlab.interop.family import COMMON, Family, register_family
from lmlab.model.config import ModelConfig


@register_family
class Llama(Family):
    """LLaMA: RoPE, RMSNorm, SwiGLU, grouped-query attention"""

    name, label = "llama", "LLaMA"
    needs = {**COMMON, "position": "rope", "norm": "rmsnorm", "mlp": "swiglu"}

    def model_class(self):
        import transformers

        return transformers.LlamaForCausalLM

    def to_config(self, cfg: ModelConfig):
        import transformers

        return transformers.LlamaConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.mlp_width,
            num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.kv_heads,
            head_dim=cfg.d_head, max_position_embeddings=cfg.context_len, rms_norm_eps=cfg.norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta}, attention_bias=cfg.bias,
            mlp_bias=cfg.bias, attention_dropout=cfg.site_dropout("attn"), tie_word_embeddings=cfg.tie_embeddings,
            hidden_act="silu", bos_token_id=None, eos_token_id=None, pad_token_id=None)

    def from_config(self, hf) -> ModelConfig:
        head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        if head_dim * hf.num_attention_heads != hf.hidden_size:
            raise UserError(f"LLaMA head_dim={head_dim} x {hf.num_attention_heads} heads != hidden_size "
                            f"{hf.hidden_size}: lmlab needs d_model = n_head * d_head")
        rope = getattr(hf, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise UserError(f"LLaMA rope_type={rope['rope_type']!r} (scaled RoPE) is not supported; only 'default'")
        if hf.attention_bias != getattr(hf, "mlp_bias", False):
            raise UserError("LLaMA with attention_bias != mlp_bias is not supported (model.bias covers both)")
        return ModelConfig(
            **self.needs, n_layer=hf.num_hidden_layers,
            n_head=hf.num_attention_heads, n_kv_head=hf.num_key_value_heads, d_model=hf.hidden_size,
            d_mlp=hf.intermediate_size, context_len=hf.max_position_embeddings, vocab_size=hf.vocab_size,
            norm_eps=hf.rms_norm_eps, rope_theta=float(rope.get("rope_theta", getattr(hf, "rope_theta", 1e4))),
            bias=hf.attention_bias, tie_embeddings=hf.tie_word_embeddings, attn_dropout=hf.attention_dropout)

    @staticmethod
    def pairs(cfg: ModelConfig) -> list[tuple[str, str]]:
        """(lmlab name, HF name) for every weight but the fused q/k/v."""
        pairs = [("tok_emb.weight", "model.embed_tokens.weight"), ("ln_f.weight", "model.norm.weight")]
        for i in range(cfg.n_layer):
            ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
            for a, b in [("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm"),
                         ("attn.proj", "self_attn.o_proj"), ("mlp.gate", "mlp.gate_proj"), ("mlp.up", "mlp.up_proj"),
                         ("mlp.proj", "mlp.down_proj")]:
                pairs.append((f"{ours}{a}.weight", f"{theirs}{b}.weight"))
                if cfg.bias and a not in ("ln1", "ln2"):
                    pairs.append((f"{ours}{a}.bias", f"{theirs}{b}.bias"))
        if not cfg.tie_embeddings:
            pairs.append(("lm_head.weight", "lm_head.weight"))
        return pairs

    def to_state(self, model) -> dict[str, torch.Tensor]:
        cfg, ours = model.config, model.state_dict()
        out = {b: ours[a] for a, b in self.pairs(cfg)}
        D, kv = cfg.d_model, cfg.kv_heads * cfg.d_head
        for i in range(cfg.n_layer):
            for part in ("weight", "bias") if cfg.bias else ("weight",):
                q, k, v = ours[f"blocks.{i}.attn.qkv.{part}"].split([D, kv, kv], dim=0)
                for name, w in zip("qkv", (q, k, v)):
                    out[f"model.layers.{i}.self_attn.{name}_proj.{part}"] = w.contiguous()
        return out

    def from_state(self, theirs: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
        out = {a: theirs[b] for a, b in self.pairs(cfg)}
        for i in range(cfg.n_layer):
            for part in ("weight", "bias") if cfg.bias else ("weight",):
                out[f"blocks.{i}.attn.qkv.{part}"] = torch.cat(
                    [theirs[f"model.layers.{i}.self_attn.{n}_proj.{part}"] for n in "qkv"], dim=0)
        if cfg.tie_embeddings:
            out["lm_head.weight"] = out["tok_emb.weight"]
        return out
