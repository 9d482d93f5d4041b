"""Models: one LanguageModel contract, architectures and components behind registries.

Names load on first use (lmlab.lazy): importing `lmlab.model.config` (as `lmlab.config` does)
neither builds the model zoo nor imports torch. `hooks` is imported from its module
(`from lmlab.model.hooks import hooks`): a lazy name cannot share a submodule's name."""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {
    "LanguageModel": "base", "lm_loss": "base", "ARCHS": "build", "build_model": "build", "ModelConfig":
    "config", "run_with_cache": "hooks"
})
