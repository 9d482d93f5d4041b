"""Models: one LanguageModel contract, architectures and components behind registries."""

from lmlab.model.base import LanguageModel, lm_loss
from lmlab.model.build import ARCHS, build_model
from lmlab.model.config import ModelConfig
from lmlab.model.hooks import hooks, run_with_cache

__all__ = ["LanguageModel", "lm_loss", "ARCHS", "build_model", "ModelConfig", "hooks", "run_with_cache"]
