"""A Study is data: a base config (preset name or TOML file), axes, seeds and a budget.

Axes over any dotted config key (`train.lr`, `model.n_layer`):
  grid      {key: [v1, v2]}: the cartesian product of every list
  zip       {key: [v1, v2]}: lists walked together (a scale series' d_model / n_head / n_layer)
  variants  {name: {key: value}}: named sets of overrides (ladder stages, ablations)
Grid x zip x variants combine as a product (an empty axis kind contributes one empty choice).
`data` (--data) replaces the base's sources with one text file or folder, as `lmlab train --data`
does; `overrides` change the base for every run; `budget` does too but is what `--size` and a
retrain change (train.max_steps, train.epochs, train.max_tokens, train.max_time).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmlab.errors import UserError

METRICS = ("val_loss", "val_perplexity", "val_accuracy", "val_bits_per_byte")


@dataclass
class Study:
    name: str
    base: str  # a preset name or a config .toml path
    data: str = ""  # --data: an absolute text file or folder every run trains on instead of the base's sources
    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    budget: dict[str, Any] = field(default_factory=dict)
    baseline: str = ""  # a variant's slug; "" = the first variant
    metric: str = "val_loss"  # best value over the run, lower is better (accuracy: higher)
    select: str = ""  # "val_loss": pick the best variant by its mean over seeds, then retrain it
    retrain: dict[str, Any] = field(default_factory=dict)  # budget changes for the retrain (from scratch)
    scaling: bool = False  # fit L(N) = a N^-alpha + c over the variants (a size series)
    description: str = ""
    # After training (lmlab.study.findings, which checks them against the plan): instruments on the best checkpoints, the seed's claims
    # with computed verdicts, the seed's tables beside ours, and how this set-up differs from the seed's.
    instruments: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    seed_tables: list[dict[str, Any]] = field(default_factory=list)
    setup: str = ""

    def __post_init__(self) -> None:
        check_types(self)
        if isinstance(self.seeds, int):
            if self.seeds < 1:
                raise UserError(f"study {self.name}: seeds = {self.seeds}; use a positive count or a list")
            self.seeds = list(range(self.seeds))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"study {self.name}: seeds {self.seeds} must be a non-empty list of distinct ints")
        for kind in ("grid", "zip"):
            for key, values in getattr(self, kind).items():
                if not isinstance(values, list) or not values:
                    raise UserError(f"study {self.name}: {kind} axis {key} is empty; give at least one value")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise UserError(f"study {self.name}: zip lists have unequal lengths "
                            f"({', '.join(f'{k}={len(v)}' for k, v in self.zip.items())})")
        if self.metric not in METRICS:
            raise UserError(f"study {self.name}: metric {self.metric!r}; valid: {', '.join(METRICS)}")
        if self.select not in ("", *METRICS):
            raise UserError(f"study {self.name}: select {self.select!r}; valid: '' (none), {', '.join(METRICS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(_drop_none(self.to_dict()))


TYPES = {"name": str, "base": str, "data": str, "overrides": dict, "grid": dict, "zip": dict, "variants": dict,
         "budget": dict, "baseline": str, "metric": str, "select": str, "retrain": dict, "scaling": bool,
         "description": str, "instruments": list, "claims": list, "seed_tables": list, "setup": str}


def check_types(study: Study) -> None:
    """Each field has the type a study file spells it with; refused, not converted, naming the field."""
    where = f"study {study.name}" if isinstance(study.name, str) else "study"
    for key, kind in TYPES.items():
        value = getattr(study, key)
        if not isinstance(value, kind):
            raise UserError(f"{where}: {key} = {value!r} is not valid; expected a {_TYPE_NAMES[kind]}")
    for key, value in study.variants.items():
        if not isinstance(value, dict):
            raise UserError(f"{where}: variant {key} = {value!r} is not valid; expected a table of settings")
    seeds = study.seeds
    if not (_is_int(seeds) or isinstance(seeds, list) and all(_is_int(s) for s in seeds)):
        raise UserError(f"{where}: seeds = {seeds!r} is not valid; expected a count or a list of integers")


_TYPE_NAMES = {str: "string", dict: "table", bool: "boolean (true or false)", list: "list of tables"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def study_from_dict(values: dict[str, Any], where: str) -> Study:
    known = set(Study.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise UserError(f"{where}: unknown study field(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(known))}")
    if "name" not in values or "base" not in values:
        raise UserError(f"{where}: a study needs `name` and `base` (a preset name or config .toml)")
    return Study(**values)


def load_study(path: str | Path) -> Study:
    """A Study from a TOML file (the same fields; study.toml's `plan` tables are ignored)."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such study file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    values = values.get("study", values)
    if not isinstance(values, dict):
        raise UserError(f"{path}: [study] must be a table of study fields")
    values.pop("plan", None)
    base = values.get("base", "")
    if isinstance(base, str) and base.endswith(".toml") and not Path(base).is_absolute():
        values["base"] = str((path.parent / base).resolve())
    return study_from_dict(values, str(path))
