"""lmlab transformers <-> `transformers` models, through the family adapters (family.py).

A transformer config maps onto one HF family when every switch has a counterpart there; weights
map one to one (see each family's module for the exceptions)."""

from __future__ import annotations

from lmlab.interop import gpt2, llama  # noqa: F401  (register the families, in the order hf_family tries them)
from lmlab.interop.family import HF_FAMILIES, family_of, hf_family
from lmlab.model.vocab import pad_vocab_rows


def to_hf_model(model):
    """A transformers model with this model's weights (GPT2LMHeadModel or LlamaForCausalLM)."""
    family = HF_FAMILIES[hf_family(model.config)]  # refuses shapes without a counterpart, naming the switch
    hf_model = family.model_class()(family.to_config(model.config))
    missing, unexpected = hf_model.load_state_dict(drop_vocab_padding(family.to_state(model), hf_model, model.config),
                                                   strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and model.config.tie_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return hf_model.eval()


def from_hf_config(hf):
    """ModelConfig from a transformers config of a registered family."""
    return family_of(hf.model_type).from_config(hf)


def from_hf_model(hf_model):
    """An lmlab Transformer with the weights of a transformers GPT-2 or LLaMA model."""
    from lmlab.model import build_model

    family = family_of(hf_model.config.model_type)
    cfg = family.from_config(hf_model.config)
    model = build_model(cfg)
    model.load_state_dict(pad_vocab_rows(family.from_state(hf_model.state_dict(), cfg), cfg))
    return model.eval()


def drop_vocab_padding(state: dict, hf_model, cfg) -> dict:
    """Cut a padded vocabulary's rows (model.vocab_pad) from the tensors that HF holds per vocabulary id."""
    expected = hf_model.state_dict()
    return {k: (v[:cfg.vocab_size] if k in expected and v.dim() and expected[k].shape[0] == cfg.vocab_size
                < v.shape[0] else v) for k, v in state.items()}
