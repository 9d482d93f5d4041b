"""The seed studies as named studies (shared/seeds/*.md), each at two sizes:

  cpu   finishes on 2 CPU cores in minutes: the seed's architectures cut to small widths, short
        contexts and capped data, at least 3 seeds wherever the finding is a comparison;
  full  the seed's own dimensions and budget (its presets unchanged), for a GPU.

`lmlab studies` lists them; `lmlab study NAME --size cpu` runs one. This module is the registry;
each seed's study is defined in lmlab.study.seeds.<seed>, which importing lmlab.study.seeds registers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lmlab.registry import Registry
from lmlab.study.spec import Study

CPU_RUN = {"train.precision": "fp32", "train.warmup_steps": 10, "eval.max_tokens": 8192, "eval.batch_size": 32}

SIZES = Registry("study.sizes", config_field=False, noun="size")
SIZES.register("cpu", "finishes on 2 CPU cores in minutes: small widths, capped data, >= 3 seeds")("cpu")
SIZES.register("full", "the seed's own dimensions and budget (its presets unchanged), for a GPU")("full")


@dataclass
class NamedStudy:
    """A named study: one function per size, each returning its Study (no fork on the size)."""

    doc: str
    sizes: dict[str, Callable[[], Study]] = field(default_factory=dict)


STUDIES = Registry("studies", config_field=False, noun="study", plural="named studies", hint="or a STUDY.toml")


def study(name: str, size: str):
    """Register the decorated function as study `name` at `size` (its docstring describes the study)."""
    SIZES.get(size)

    def add(fn: Callable[[], Study]) -> Callable[[], Study]:
        if name not in STUDIES:
            STUDIES.register(name, (fn.__doc__ or "").strip().split("\n")[0])(NamedStudy(fn.__doc__ or ""))
        STUDIES[name].sizes[size] = fn
        return fn
    return add


ALIASES: dict[str, str] = {}  # an earlier name -> the study it now names


def alias(old: str, new: str) -> None:
    """Keep `old` working as a name of study `new`."""
    ALIASES[old] = new


def get_study(name: str, size: str = "cpu") -> Study:
    named = STUDIES.get(ALIASES.get(name, name))
    SIZES.get(size)
    if size not in named.sizes:
        from lmlab.errors import UserError

        raise UserError(f"study {name} has no size {size!r}; its sizes: {', '.join(named.sizes)}")
    return named.sizes[size]()


def describe_studies() -> dict[str, str]:
    return {**STUDIES.describe(), **{old: f"= {new} (its earlier name)" for old, new in ALIASES.items()}}
