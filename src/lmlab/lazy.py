"""Package names that load their module on first use (PEP 562 module __getattr__).

A package's __init__ lists where each public name lives; `import lmlab.pkg` then costs nothing,
so `import lmlab`, the CLI's parser and every refusal of a plain mistake run without torch:

    __getattr__, __all__ = lazy(__name__, {"Name": "module", ...})
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy(package: str, homes: dict[str, str]) -> tuple[Callable[[str], object], list[str]]:
    def __getattr__(name: str):
        if name in homes:
            return getattr(import_module(f"{package}.{homes[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__, sorted(homes)
