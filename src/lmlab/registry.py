"""Registry: the one place where names become classes or functions.

Configs hold names (``model.norm = "rmsnorm"``); builders look them up here, so configs stay
serializable and sweepable, and an unknown name fails with the list of valid ones. A registry
usually serves one config field (its name is the field's dotted path, and `check_choices`
validates the field against it); one made with ``config_field=False`` is a named table that no
single field selects from (presets, synthetic generators, later studies and evaluation tasks).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Callable, Iterator, TypeVar

from lmlab.errors import UserError

T = TypeVar("T")

# Modules whose import fills the registries. A package that adds a registry appends its module
# here: listed by name and imported on demand, so this module imports nothing of lmlab's upward.
PROVIDERS = [
    "lmlab.hardware",
    "lmlab.data.sources",
    "lmlab.data.documents",
    "lmlab.data.synthetic",
    "lmlab.data.layout",
    "lmlab.data.mixture",
    "lmlab.model.build",
    "lmlab.tokenizer",
    "lmlab.train.schedule",
    "lmlab.train.optim",
    "lmlab.train.distributed",
    "lmlab.train.loggers",
    "lmlab.train.keep",
    "lmlab.interop",
    "lmlab.presets",
    "lmlab.eval.tasks.specs",
    "lmlab.eval.tasks.kinds",
    "lmlab.study.seeds",
    "lmlab.study.executors",
    "lmlab.sanity",
]


class Registry(Mapping):
    """A named table of components, read-only as a Mapping (name -> object)."""

    _all: dict[str, "Registry"] = {}

    def __init__(self, name: str, *, config_field: bool = True, noun: str = "", plural: str = "", hint: str = ""):
        """`noun` names an entry in errors of a table no config field selects from ("unknown task
        'x'; valid tasks: ..."); `hint` follows the list (e.g. "or a STUDY.toml")."""
        if name in Registry._all:
            raise ValueError(f"a registry named {name} exists already")
        Registry._all[name] = self
        self.name = name
        self.field = name if config_field else None  # the config field it validates, if any
        self.noun, self.plural, self.hint = noun, plural or f"{noun}s", hint
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.name}: {name!r} is registered twice")
            self._items[name] = obj
            self._docs[name] = doc or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0]
            return obj

        return add

    def get(self, name: str) -> T:
        """The entry called `name`, or a UserError naming the valid ones."""
        if name not in self._items:
            hint = f" ({self.hint})" if self.hint else ""
            if self.noun:
                raise UserError(f"unknown {self.noun} {name!r}; valid {self.plural}: {', '.join(self.names())}{hint}")
            raise UserError(f"{self.name}={name!r} is not known; valid: {', '.join(self.names())}{hint}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def describe(self) -> dict[str, str]:
        return {name: self._docs[name] for name in self.names()}

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def all_registries() -> dict[str, Registry]:
    """Every registry, keyed by name (imports the PROVIDERS modules that fill them)."""
    for module in PROVIDERS:
        importlib.import_module(module)
    return dict(Registry._all)


def config_registries() -> dict[str, Registry]:
    """The registries that validate a config field, keyed by the field's dotted path."""
    return {r.field: r for r in all_registries().values() if r.field}


def format_registries(skip: tuple[str, ...] = ()) -> str:
    """Every registered choice, one line each, grouped by registry (for `lmlab presets --components`)."""
    lines = []
    for name, registry in sorted(all_registries().items()):
        if name in skip:
            continue
        lines.append(f"\n{name}:")
        lines += [f"  {entry:<12} {doc}" for entry, doc in registry.describe().items()]
    return "\n".join(lines)
