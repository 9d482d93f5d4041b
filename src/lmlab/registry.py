"""Registry: the one place where config strings become classes or functions.

Configs hold names (``model.norm = "rmsnorm"``); builders look them up here, so configs stay
serializable and sweepable, and an unknown name fails with the list of valid ones.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from lmlab.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of components; `field` is the config key that selects from it."""

    _all: dict[str, "Registry"] = {}

    def __init__(self, field: str):
        if field in Registry._all:
            raise ValueError(f"a registry for {field} exists already")
        Registry._all[field] = self
        self.field = field
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.field}: {name!r} is registered twice")
            self._items[name] = obj
            self._docs[name] = doc or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0]
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UserError(f"{self.field}={name!r} is not known; valid: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def describe(self) -> dict[str, str]:
        return {name: self._docs[name] for name in self.names()}

    def __contains__(self, name: str) -> bool:
        return name in self._items


def all_registries() -> dict[str, Registry]:
    """Every registry, keyed by the config field it serves (imports the modules that fill them)."""
    import lmlab.data.sources  # noqa: F401
    import lmlab.model.build  # noqa: F401
    import lmlab.tokenizer  # noqa: F401
    import lmlab.train.distributed  # noqa: F401
    import lmlab.train.schedule  # noqa: F401

    return dict(Registry._all)
