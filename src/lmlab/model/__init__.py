"""Models: one LanguageModel contract, architectures and components behind registries.

`build_model` and `ARCHS` load the architectures and components on first use, so importing
`lmlab.model.config` (as `lmlab.config` does) does not build the whole model zoo.
"""

from lmlab.model.base import LanguageModel, lm_loss
from lmlab.model.config import ModelConfig
from lmlab.model.hooks import hooks, run_with_cache

__all__ = ["LanguageModel", "lm_loss", "ARCHS", "build_model", "ModelConfig", "hooks", "run_with_cache"]


def __getattr__(name: str):
    if name in ("ARCHS", "build_model"):
        from lmlab.model import build

        return getattr(build, name)
    raise AttributeError(f"module 'lmlab.model' has no attribute {name!r}")
