"""build_model: ModelConfig (+ vocabulary size) -> LanguageModel, through the ARCHS registry."""

from __future__ import annotations

import dataclasses

import lmlab.model.components  # noqa: F401  (fill the component registries)
import lmlab.model.init  # noqa: F401
from lmlab.model import baselines
from lmlab.model.base import LanguageModel
from lmlab.model.transformer import Transformer
from lmlab.registry import Registry

ARCHS: Registry = Registry("model.arch")
ARCHS.register("transformer", "GPT-style decoder; every component a config switch")(Transformer)
baselines.register(ARCHS)


def build_model(cfg, vocab_size: int | None = None) -> LanguageModel:
    """Build the architecture `cfg.arch`; `vocab_size` fills in cfg.vocab_size when it is 0."""
    if vocab_size is not None and cfg.vocab_size == 0:
        cfg = dataclasses.replace(cfg, vocab_size=vocab_size)
    if cfg.vocab_size == 0:
        raise ValueError("model.vocab_size is 0: pass the tokenizer's vocab_size to build_model")
    return ARCHS.get(cfg.arch)(cfg)
