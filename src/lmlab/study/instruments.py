"""What a study runs after training, as data: instruments applied to each variant's best checkpoint.

    [[study.instruments]]
    kind = "analyze"          # an INSTRUMENTS name (`lmlab studies --instruments` lists them)
    name = "attention"        # optional: its folder and the prefix of its metrics (default: kind)
    variants = ["A", "B"]     # optional: default every variant
    seeds = "first"           # "first" (default) or "all": the seeds it runs on
    windows = 32              # the kind's own parameters (each has a default)

Each (instrument, run) writes STUDY/instruments/<run>/<name>/result.json last (its metrics,
text and files), so a re-run skips what is done and retries what failed. An instrument that does
not apply to a model (attention statistics of an LSTM) is recorded "n/a" with the reason; one that
fails is recorded with its one-line error, and the rest go on. Metrics are read by claims as
"VARIANT:NAME.METRIC".
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lmlab.errors import UserError
from lmlab.io import atomic_write_text
from lmlab.registry import Registry

SEED_CHOICES = ("first", "all")


class NotApplicable(Exception):
    """The instrument does not apply to this model (the reason is the message)."""


@dataclass
class Instrument:
    run: Callable[[Path, Path, dict], dict]  # (run_dir, folder, params) -> {metrics, text, files}
    params: dict[str, Any]  # parameter -> default
    metrics: Callable[[dict], list[str]]  # the metric names it reports, given its parameters
    doc: str = ""


INSTRUMENTS: Registry = Registry("study.instruments", config_field=False, noun="instrument")


def instrument(name: str, params: dict[str, Any], metrics: Callable[[dict], list[str]] = lambda p: []):
    """Register the decorated (run_dir, folder, params) -> dict function as instrument `name`."""
    def add(fn):
        INSTRUMENTS.register(name, (fn.__doc__ or "").strip().split("\n")[0])(Instrument(fn, params, metrics))
        return fn
    return add


@dataclass
class InstrumentSpec:
    kind: str
    name: str
    variants: list[str]
    seeds: str
    params: dict[str, Any] = field(default_factory=dict)

    def metric_names(self) -> list[str]:
        return [f"{self.name}.{m}" for m in INSTRUMENTS.get(self.kind).metrics(self.params)]


def parse_instrument(values: dict, where: str) -> InstrumentSpec:
    load_kinds()
    if not isinstance(values, dict) or not isinstance(values.get("kind"), str):
        raise UserError(f"{where}: an instrument is a table with `kind` (one of {', '.join(INSTRUMENTS.names())})")
    values = dict(values)
    kind = values.pop("kind")
    inst = INSTRUMENTS.get(kind)
    name = values.pop("name", kind)
    variants = values.pop("variants", [])
    seeds = values.pop("seeds", "first")
    if seeds not in SEED_CHOICES:
        raise UserError(f"{where}: instrument {name}: seeds = {seeds!r}; valid: {', '.join(SEED_CHOICES)}")
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise UserError(f"{where}: instrument {name}: variants must be a list of variant names")
    unknown = set(values) - set(inst.params)
    if unknown:
        raise UserError(f"{where}: instrument {name} ({kind}): unknown parameter(s) {', '.join(sorted(unknown))}; "
                        f"valid: {', '.join(sorted(inst.params)) or 'none'}")
    return InstrumentSpec(kind, name, variants, seeds, {**inst.params, **values})


# Modules whose import registers instruments (as lmlab.registry.PROVIDERS: named, imported on
# demand, so this module imports nothing that registers into it): the general kinds, and the
# seed studies, whose modules may define instruments of their own.
KIND_MODULES = ["lmlab.study.instrument_kinds", "lmlab.study.seeds"]


def load_kinds() -> None:
    import importlib

    for module in KIND_MODULES:
        importlib.import_module(module)


def check_instruments(specs: list[InstrumentSpec], variants: list[str], where: str) -> None:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"{where}: instrument names repeat; give each of the same kind its own `name`")
    for s in specs:
        for v in s.variants:
            if v not in variants:
                raise UserError(f"{where}: instrument {s.name} names variant {v!r}; the study's variants: "
                                f"{', '.join(variants)}")


def targets(spec: InstrumentSpec, runs) -> list:
    """The runs an instrument measures: its variants' first seed, or every seed."""
    chosen = [r for r in runs if not spec.variants or r.variant.slug in spec.variants]
    if spec.seeds == "first":
        first: dict[str, Any] = {}
        for r in chosen:
            first.setdefault(r.variant.slug, r)
        chosen = list(first.values())
    return chosen


def run_instruments(specs: list[InstrumentSpec], out: Path, runs, done: set[str], stream=None) -> list[dict]:
    """Every (instrument, run): skipped when its result.json exists, else run and recorded. `done`
    holds the names of the runs that finished training; the others are recorded "not run"."""
    stream = stream or sys.stderr
    records = []
    for spec in specs:
        for r in targets(spec, runs):
            rec = {"instrument": spec.name, "kind": spec.kind, "variant": r.variant.slug, "seed": r.seed,
                   "run": r.name}
            folder = out / "instruments" / r.name / spec.name
            if r.name not in done:
                records.append({**rec, "status": "not run", "note": "its training run did not finish"})
                continue
            saved = read_result(folder)
            if saved is None:
                saved = _measure(spec, out / "runs" / r.name, folder, stream)
            records.append({**rec, **saved})
    atomic_write_text(out / "instruments.json", json.dumps(records, indent=1, default=str) + "\n")
    return records


def read_result(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _measure(spec: InstrumentSpec, run_dir: Path, folder: Path, stream) -> dict:
    print(f"instrument {spec.name} on {run_dir.name} ...", file=stream, flush=True)
    t0 = time.perf_counter()
    try:
        got = INSTRUMENTS.get(spec.kind).run(run_dir, folder, spec.params)
    except NotApplicable as why:
        saved = {"status": "n/a", "note": str(why), "metrics": {}, "text": "", "files": []}
    except Exception as err:  # noqa: BLE001  (recorded with its one line; the others go on)
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"instrument {spec.name} on {run_dir.name} failed: {line}", file=stream, flush=True)
        return {"status": "failed", "note": line, "metrics": {}, "text": "", "files": [],
                "seconds": round(time.perf_counter() - t0, 2)}
    else:
        files = [str(Path(f).relative_to(folder.parent.parent.parent)) for f in got.get("files", [])
                 if Path(f).is_relative_to(folder.parent.parent.parent)]
        saved = {"status": "done", "note": got.get("note", ""), "metrics": got.get("metrics", {}),
                 "text": got.get("text", ""), "files": files}
    saved["seconds"] = round(time.perf_counter() - t0, 2)  # what the instrument cost (forecasts are checked on it)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "result.json", json.dumps(saved, indent=1, default=str) + "\n")
    return saved
