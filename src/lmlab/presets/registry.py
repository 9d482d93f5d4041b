"""The preset registry: named experiments are functions that return a RunConfig.

A variant calls its base and edits a few fields, so each preset reads as its difference from
another. Modules of this package register with `@preset` and import only downward (registry <-
basic <- corpora <- one module per seed study), so none of them imports the package itself.
"""

from __future__ import annotations

from typing import Callable

from lmlab.config import RunConfig
from lmlab.errors import UserError
from lmlab.registry import Registry

PRESETS: Registry = Registry("preset", config_field=False)


def preset(fn: Callable[[], RunConfig]) -> Callable[[], RunConfig]:
    """Register `fn` under its own name; its docstring's first line is the listing's."""
    return PRESETS.register(fn.__name__)(fn)


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS.names())} "
                        f"(or a config .toml file)")
    return PRESETS[name]()


def describe_presets() -> dict[str, str]:
    return PRESETS.describe()
