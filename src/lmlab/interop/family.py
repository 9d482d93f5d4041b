"""One adapter class per Hugging Face model family, in the HF_FAMILIES registry.

An adapter says which lmlab transformer configs it can hold (`mismatches`), converts configs
both ways, and maps weights both ways. Adding a family (say Mistral or Qwen) is one registered
class in a module of this package; nothing else branches on the family.
"""

from __future__ import annotations

import torch

from lmlab.errors import UserError
from lmlab.model.config import ModelConfig
from lmlab.registry import Registry

HF_FAMILIES: Registry = Registry("hf family", config_field=False)

# What every family needs: a pre-norm GPT-style transformer with the usual sublayers.
COMMON = {"arch": "transformer", "norm_position": "pre", "residual": True, "attn_out_proj": True,
          "qk_norm": False, "mlp_proj": True, "final_norm": "auto", "head_bias": False}


class Family:
    """A transformers model family; subclasses fill in the switches and the weight mapping."""

    name = ""  # also transformers' config.model_type
    label = ""  # how messages name it
    needs: dict = {}  # ModelConfig fields the family fixes

    def mismatches(self, cfg: ModelConfig) -> list[str]:
        """The switches of `cfg` that this family cannot hold, each as "model.x is A (it needs B)"."""
        return [f"model.{k} is {getattr(cfg, k)!r} (it needs {v!r})" for k, v in self.needs.items()
                if getattr(cfg, k) != v]

    def model_class(self):
        raise NotImplementedError

    def to_config(self, cfg: ModelConfig):
        raise NotImplementedError

    def from_config(self, hf) -> ModelConfig:
        raise NotImplementedError

    def to_state(self, model) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def from_state(self, theirs: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def register_family(cls: type[Family]) -> type[Family]:
    HF_FAMILIES.register(cls.name, (cls.__doc__ or "").strip().split("\n")[0])(cls())
    return cls


def hf_family(cfg: ModelConfig) -> str:
    """The name of the family that holds `cfg`; otherwise fail naming the switches without counterpart."""
    misses = {}
    for name, family in HF_FAMILIES.items():
        wrong = family.mismatches(cfg)
        if not wrong:
            return name
        misses[family.label] = wrong
    raise UserError("this model has no Hugging Face counterpart: "
                    + "; ".join(f"as {label}, {', '.join(wrong[:2])}" for label, wrong in misses.items()))


def family_of(model_type: str) -> Family:
    if model_type not in HF_FAMILIES:
        raise UserError(f"Hugging Face model_type={model_type!r} is not supported; valid: {', '.join(HF_FAMILIES.names())}")
    return HF_FAMILIES[model_type]
