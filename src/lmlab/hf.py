"""Hugging Face `transformers` interop: GPT-2- and LLaMA-shaped models, in both directions.

A transformer config maps onto one HF family when every switch has a counterpart there:

    GPT-2 (GPT2LMHeadModel): learned positions, LayerNorm, pre-norm, GELU (exact, tanh) or ReLU
        MLP, multi-head attention, residuals and output projection on, no QK-norm. A bias-free
        model exports with zero biases (HF's GPT-2 always has them).
    LLaMA (LlamaForCausalLM): RoPE, RMSNorm, pre-norm, SwiGLU, any number of key/value heads,
        biases all on or all off.

Weights map one to one, except our fused query/key/value matrix, which is HF LLaMA's q/k/v
projections stacked, and GPT-2's Conv1D layers, which store weights transposed.
"""

from __future__ import annotations

import torch

from lmlab.errors import UserError
from lmlab.model.config import ModelConfig

GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
COMMON = {"arch": "transformer", "norm_position": "pre", "residual": True, "attn_out_proj": True,
          "qk_norm": False, "mlp_proj": True, "final_norm": "auto", "head_bias": False}
FAMILIES = {
    "gpt2": {**COMMON, "position": "learned", "norm": "layernorm"},
    "llama": {**COMMON, "position": "rope", "norm": "rmsnorm", "mlp": "swiglu"},
}


def hf_family(cfg: ModelConfig) -> str:
    """'gpt2' or 'llama'; otherwise fail naming the switch that has no HF counterpart."""
    misses = {}
    for family, need in FAMILIES.items():
        wrong = [f"model.{k}={getattr(cfg, k)!r} (needs {v!r})" for k, v in need.items() if getattr(cfg, k) != v]
        if family == "gpt2":
            if cfg.mlp not in GPT2_ACTIVATIONS:
                wrong.append(f"model.mlp={cfg.mlp!r} (needs one of {', '.join(GPT2_ACTIVATIONS)})")
            if cfg.kv_heads != cfg.n_head:
                wrong.append(f"model.n_kv_head={cfg.n_kv_head} (GPT-2 has no grouped-query attention)")
        if not wrong:
            return family
        misses[family] = wrong
    raise UserError("this model has no Hugging Face counterpart: as GPT-2 it would need "
                    f"{'; '.join(misses['gpt2'][:2])}; as LLaMA {'; '.join(misses['llama'][:2])}")


def to_hf_config(cfg: ModelConfig, family: str):
    import transformers

    drop = {"resid": cfg.site_dropout("resid"), "attn": cfg.site_dropout("attn")}
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=cfg.vocab_size, n_positions=cfg.context_len, n_embd=cfg.d_model, n_layer=cfg.n_layer,
            n_head=cfg.n_head, n_inner=cfg.mlp_width, activation_function=GPT2_ACTIVATIONS[cfg.mlp],
            resid_pdrop=drop["resid"], embd_pdrop=cfg.dropout, attn_pdrop=drop["attn"],
            layer_norm_epsilon=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
            bos_token_id=None, eos_token_id=None)
    return transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.mlp_width,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.d_head, max_position_embeddings=cfg.context_len, rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta}, attention_bias=cfg.bias,
        mlp_bias=cfg.bias, attention_dropout=drop["attn"], tie_word_embeddings=cfg.tie_embeddings,
        hidden_act="silu", bos_token_id=None, eos_token_id=None, pad_token_id=None)


def from_hf_config(hf) -> ModelConfig:
    """ModelConfig from a transformers GPT2Config or LlamaConfig."""
    kind = hf.model_type
    if kind == "gpt2":
        act = {v: k for k, v in GPT2_ACTIVATIONS.items()}.get(hf.activation_function)
        if act is None:
            raise UserError(f"GPT-2 activation_function={hf.activation_function!r} is not supported; "
                            f"valid: {', '.join(GPT2_ACTIVATIONS.values())}")
        return ModelConfig(
            **{k: v for k, v in FAMILIES["gpt2"].items()}, mlp=act, n_layer=hf.n_layer, n_head=hf.n_head,
            d_model=hf.n_embd, d_mlp=hf.n_inner or 4 * hf.n_embd, context_len=hf.n_positions,
            vocab_size=hf.vocab_size, norm_eps=hf.layer_norm_epsilon, bias=True,
            tie_embeddings=hf.tie_word_embeddings, dropout=hf.embd_pdrop, attn_dropout=hf.attn_pdrop,
            resid_dropout=hf.resid_pdrop)
    if kind == "llama":
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
            **{k: v for k, v in FAMILIES["llama"].items()}, n_layer=hf.num_hidden_layers,
            n_head=hf.num_attention_heads, n_kv_head=hf.num_key_value_heads, d_model=hf.hidden_size,
            d_mlp=hf.intermediate_size, context_len=hf.max_position_embeddings, vocab_size=hf.vocab_size,
            norm_eps=hf.rms_norm_eps, rope_theta=float(rope.get("rope_theta", getattr(hf, "rope_theta", 1e4))),
            bias=hf.attention_bias, tie_embeddings=hf.tie_word_embeddings, attn_dropout=hf.attention_dropout)
    raise UserError(f"Hugging Face model_type={kind!r} is not supported; valid: gpt2, llama")


def _gpt2_pairs(cfg: ModelConfig) -> list[tuple[str, str, bool]]:
    """(lmlab name, HF name, transposed) for every GPT-2 weight."""
    pairs = [("tok_emb.weight", "transformer.wte.weight", False),
             ("pos_emb.emb.weight", "transformer.wpe.weight", False),
             ("ln_f.weight", "transformer.ln_f.weight", False), ("ln_f.bias", "transformer.ln_f.bias", False)]
    for i in range(cfg.n_layer):
        ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b, t in [("ln1", "ln_1", False), ("ln2", "ln_2", False), ("attn.qkv", "attn.c_attn", True),
                        ("attn.proj", "attn.c_proj", True), ("mlp.fc", "mlp.c_fc", True),
                        ("mlp.proj", "mlp.c_proj", True)]:
            pairs += [(f"{ours}{a}.weight", f"{theirs}{b}.weight", t), (f"{ours}{a}.bias", f"{theirs}{b}.bias", False)]
    if not cfg.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight", False))
    return pairs


def _llama_pairs(cfg: ModelConfig) -> list[tuple[str, str]]:
    pairs = [("tok_emb.weight", "model.embed_tokens.weight"), ("ln_f.weight", "model.norm.weight")]
    for i in range(cfg.n_layer):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        for a, b in [("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm"), ("attn.proj", "self_attn.o_proj"),
                     ("mlp.gate", "mlp.gate_proj"), ("mlp.up", "mlp.up_proj"), ("mlp.proj", "mlp.down_proj")]:
            pairs.append((f"{ours}{a}.weight", f"{theirs}{b}.weight"))
            if cfg.bias and a not in ("ln1", "ln2"):
                pairs.append((f"{ours}{a}.bias", f"{theirs}{b}.bias"))
    if not cfg.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight"))
    return pairs


def to_hf_state(model, family: str) -> dict[str, torch.Tensor]:
    from lmlab.model.transformer import strip_vocab_padding

    cfg = model.config
    ours = strip_vocab_padding(model.state_dict(), cfg)  # an exported head has the logical vocabulary only
    if family == "gpt2":
        out = {}
        for a, b, transpose in _gpt2_pairs(cfg):
            w = ours.get(a)
            if w is None:  # a bias-free lmlab layer: HF's GPT-2 has the bias, so it is zero
                w = torch.zeros(ours[a.replace(".bias", ".weight")].shape[0])
            out[b] = w.t().contiguous() if transpose else w
        return out
    out = {b: ours[a] for a, b in _llama_pairs(cfg)}
    D, kv = cfg.d_model, cfg.kv_heads * cfg.d_head
    for i in range(cfg.n_layer):
        for part in ("weight", "bias") if cfg.bias else ("weight",):
            q, k, v = ours[f"blocks.{i}.attn.qkv.{part}"].split([D, kv, kv], dim=0)
            for name, w in zip("qkv", (q, k, v)):
                out[f"model.layers.{i}.self_attn.{name}_proj.{part}"] = w.contiguous()
    return out


def from_hf_state(theirs: dict[str, torch.Tensor], cfg: ModelConfig, family: str) -> dict[str, torch.Tensor]:
    if family == "gpt2":
        out = {}
        for a, b, transpose in _gpt2_pairs(cfg):
            out[a] = theirs[b].t().contiguous() if transpose else theirs[b]
        if cfg.tie_embeddings:
            out["lm_head.weight"] = out["tok_emb.weight"]
        return out
    out = {a: theirs[b] for a, b in _llama_pairs(cfg)}
    for i in range(cfg.n_layer):
        for part in ("weight", "bias") if cfg.bias else ("weight",):
            out[f"blocks.{i}.attn.qkv.{part}"] = torch.cat(
                [theirs[f"model.layers.{i}.self_attn.{n}_proj.{part}"] for n in "qkv"], dim=0)
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["tok_emb.weight"]
    return out


def to_hf_model(model):
    """A transformers model with this model's weights (GPT2LMHeadModel or LlamaForCausalLM)."""
    import transformers

    family = hf_family(model.config)
    hf_cfg = to_hf_config(model.config, family)
    cls = transformers.GPT2LMHeadModel if family == "gpt2" else transformers.LlamaForCausalLM
    hf_model = cls(hf_cfg)
    missing, unexpected = hf_model.load_state_dict(to_hf_state(model, family), strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and model.config.tie_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return hf_model.eval()


def from_hf_model(hf_model):
    """An lmlab Transformer with the weights of a transformers GPT-2 or LLaMA model."""
    from lmlab.model import build_model

    cfg = from_hf_config(hf_model.config)
    model = build_model(cfg)
    from lmlab.model.transformer import pad_vocab_rows

    state = pad_vocab_rows(from_hf_state(hf_model.state_dict(), cfg, hf_model.config.model_type), cfg)
    model.load_state_dict(state)
    return model.eval()

