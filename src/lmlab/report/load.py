"""Read a run directory or a study directory into one plain structure the pages are made from.

Everything here is optional except the marker of the directory's kind (a run's config.toml,
a study's study.toml / .lmlab-study): other branches add files over time (eval/tasks.json,
analysis/, samples/sampling.json, a study's aggregate and scaling files), and the report renders
whatever exists. A file that cannot be read becomes a note on the page instead of a crash.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmlab.errors import UserError
from lmlab.io import numbered_jsonl, warn

RUN_MARKER = "config.toml"
STUDY_MARKERS = ("study.toml", ".lmlab-study")
DERIVED = ("name", "model.vocab_size")  # set from the tokenizer when a run starts, not chosen
SKIP_TEXT_SAMPLES = 20_000  # characters of one sample file shown on a page


@dataclass
class RunData:
    """One run directory, read."""

    root: Path
    name: str
    config: Any  # RunConfig
    config_toml: str
    preset: str  # what the config is compared with: a preset name, or "defaults"
    diff: list[tuple[str, Any, Any]]  # (field, preset value, run value)
    model: dict = field(default_factory=dict)  # model.json
    train: list[dict] = field(default_factory=list)  # metrics.jsonl kind=train
    evals: list[dict] = field(default_factory=list)  # metrics.jsonl kind=eval
    stats: dict | None = None  # data/stats.json
    tasks: dict | None = None  # eval/tasks.json
    manifest: dict | None = None  # manifest.json
    tables: dict[str, list] = field(default_factory=dict)  # "analysis"/"sampling" -> [(title, rows or obj)]
    images: dict[str, list[Path]] = field(default_factory=dict)  # "data"/"analysis" -> PNG files
    samples: dict[str, str] = field(default_factory=dict)  # file name -> text
    notes: list[str] = field(default_factory=list)  # files that could not be read


@dataclass
class StudyData:
    """One study directory, read; `runs` are the run directories under runs/."""

    root: Path
    name: str
    plan: dict = field(default_factory=dict)  # study.toml
    results: list[dict] = field(default_factory=list)  # results.csv
    aggregate: list[dict] = field(default_factory=list)  # aggregate.json / .csv
    epochs: list[dict] = field(default_factory=list)  # epochs_aggregate.csv (train.epochs budgets)
    scaling: dict | None = None  # scaling.json
    selected: dict | None = None  # selected.json
    runs: list[Path] = field(default_factory=list)
    curves: dict[str, list[dict]] = field(default_factory=dict)  # run name -> its eval records
    plots: list[Path] = field(default_factory=list)  # plots/*.png
    claims: list[dict] = field(default_factory=list)  # claims.json: each claim's verdict
    seed_tables: list[dict] = field(default_factory=list)  # seed_tables.json: the seed's tables beside ours
    instruments: list[dict] = field(default_factory=list)  # instruments.json: what ran after training
    notes: list[str] = field(default_factory=list)


def kind_of(path: Path) -> str:
    """'run' or 'study'; anything else is a user mistake named in one line."""
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise UserError(f"{path} {what}; give a run directory (with config.toml) or a study directory "
                        f"(with study.toml)")
    if any((path / m).is_file() for m in STUDY_MARKERS):
        return "study"
    if (path / RUN_MARKER).is_file():
        return "run"
    raise UserError(f"{path} is neither a run directory (no config.toml) nor a study directory (no study.toml "
                    f"or .lmlab-study)")


def read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        notes.append(f"{path.parent.name}/{path.name}: not readable JSON ({err})")
        return None


def read_csv(path: Path, notes: list[str]) -> list[dict]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        notes.append(f"{path.parent.name}/{path.name}: not readable CSV ({err})")
        return []


# ----------------------------------------------------------------------------- runs

def numeric(record: dict, where: str = "") -> dict:
    """A metrics record with its missing numbers (null, as JSON writes a NaN) read as NaN, which
    tables print as such and plots and minima skip, instead of None breaking every comparison.
    Any other value that is not a number (an edit: "loss": "high") is missing too, with a warning
    naming `where` (file and line)."""
    out = {}
    for key, value in record.items():
        if key == "kind" or isinstance(value, dict) or isinstance(value, (int, float)):
            out[key] = value
            continue
        if value is not None and where:
            warn(f"{where}: {key!r} is {json.dumps(value)[:40]}, not a number; read it as missing")
        out[key] = math.nan
    return out


def read_metrics(path: Path, kinds: tuple[str, ...] = ("train", "eval")) -> list[dict]:
    """The records of a metrics.jsonl of the given kinds, every value checked by `numeric`."""
    return [numeric(r, f"{path} line {n}") for n, r in numbered_jsonl(path) if r.get("kind") in kinds]


def read_run_page(root: str | Path) -> RunData:
    from lmlab.config import load_config

    root = Path(root)
    try:
        cfg = load_config(root / RUN_MARKER)
    except UserError as err:
        raise UserError(str(err) if str(root) in str(err) else f"{root / RUN_MARKER}: {err}") from None
    preset, diff = preset_diff(cfg)
    notes: list[str] = []
    records = read_metrics(root / "metrics.jsonl")
    run = RunData(root=root, name=cfg.name, config=cfg, config_toml=(root / RUN_MARKER).read_text(encoding="utf-8"),
                  preset=preset, diff=diff, train=[r for r in records if r.get("kind") == "train"],
                  evals=[r for r in records if r.get("kind") == "eval"], notes=notes)
    for attr, rel in (("model", "model.json"), ("stats", "data/stats.json"), ("tasks", "eval/tasks.json"),
                      ("manifest", "manifest.json")):
        if (root / rel).is_file():
            value = read_json(root / rel, notes)
            if isinstance(value, dict):
                setattr(run, attr, value)
    run.tables["analysis"] = folder_tables(root / "analysis", notes)
    run.tables["sampling"] = folder_tables(root / "samples", notes)
    run.images = {"data": sorted((root / "data").glob("*.png")),
                  "analysis": sorted((root / "analysis").rglob("*.png"))}
    run.samples = read_samples(root / "samples")
    return run


def preset_diff(cfg) -> tuple[str, list[tuple[str, Any, Any]]]:
    """Fields where the run differs from the preset it is named after (else from the defaults)."""
    from lmlab.config import RunConfig
    from lmlab.presets import get_preset

    try:
        base, label = get_preset(cfg.name), cfg.name
    except UserError:
        base, label = RunConfig(name=cfg.name), "defaults"
    mine, theirs = flatten(compact(cfg)), flatten(compact(base))
    keys = [k for k in mine if k not in DERIVED] + [k for k in theirs if k not in mine]
    return label, [(k, theirs.get(k, "—"), mine.get(k, "—")) for k in keys if mine.get(k) != theirs.get(k)]


def compact(cfg) -> dict:
    """The config as a dict whose source tables list only their non-default fields."""
    values = cfg.to_dict()
    values["data"]["sources"] = [s.non_defaults() for s in cfg.data.sources]
    return values


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """{"model": {"n_layer": 2}} -> {"model.n_layer": 2}; a list of tables becomes one compact cell each."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        elif value == [] and key == "sources":  # no [[data.sources]] tables: the single-source fields say it
            continue
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                fields = ", ".join(f"{k}={v}" for k, v in item.items() if k != "kind" and v)
                out[f"{prefix}{key}[{i}]"] = f"{item.get('kind', '')}: {fields}"
        else:
            out[prefix + key] = value
    return out


def folder_tables(folder: Path, notes: list[str]) -> list[tuple[str, Any]]:
    """Every table of a folder: a CSV as rows, a JSON without a CSV twin as its object."""
    if not folder.is_dir():
        return []
    out: list[tuple[str, Any]] = []
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix == ".csv":
            rows = read_csv(path, notes)
            if rows:
                out.append((rel, rows))
        elif path.suffix == ".json":
            value = read_json(path, notes)
            if path.with_suffix(".csv").is_file():  # the CSV holds its rows; keep the JSON's single numbers
                value = {k: v for k, v in value.items() if not isinstance(v, (list, dict))} \
                    if isinstance(value, dict) else None
            if value:
                out.append((rel, value))
    return out


def read_samples(folder: Path) -> dict[str, str]:
    """Text samples: before.txt and after.txt first, then any other .txt."""
    if not folder.is_dir():
        return {}
    files = sorted(folder.glob("*.txt"), key=lambda p: ({"before": 0, "after": 1}.get(p.stem, 2), p.name))
    return {p.stem: p.read_text(encoding="utf-8", errors="replace")[:SKIP_TEXT_SAMPLES] for p in files}


# ----------------------------------------------------------------------------- studies

def read_study_page(root: str | Path) -> StudyData:
    root = Path(root)
    study = StudyData(root=root, name=root.resolve().name)
    notes = study.notes
    if (root / "study.toml").is_file():
        try:
            study.plan = tomllib.loads((root / "study.toml").read_text(encoding="utf-8"))
            fields = study.plan.get("study", study.plan)  # lmlab writes its fields under [study]
            study.name = str(fields.get("name", study.name) if isinstance(fields, dict) else study.name)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            notes.append(f"study.toml: not valid TOML ({err})")
    if (root / "results.csv").is_file():
        study.results = read_csv(root / "results.csv", notes)
    study.aggregate = read_aggregate(root, notes)
    if (root / "epochs_aggregate.csv").is_file():
        study.epochs = read_csv(root / "epochs_aggregate.csv", notes)
    for attr in ("scaling", "selected"):
        if (root / f"{attr}.json").is_file():
            value = read_json(root / f"{attr}.json", notes)
            setattr(study, attr, value if isinstance(value, dict) else None)
    study.runs = sorted(p for p in (root / "runs").glob("*") if (p / RUN_MARKER).is_file()) \
        if (root / "runs").is_dir() else []
    study.curves = {p.name: read_metrics(p / "metrics.jsonl") for p in study.runs}
    study.plots = sorted((root / "plots").glob("*.png"))
    for attr in ("claims", "seed_tables", "instruments"):
        if (root / f"{attr}.json").is_file():
            value = read_json(root / f"{attr}.json", notes)
            setattr(study, attr, [r for r in value if isinstance(r, dict)] if isinstance(value, list) else [])
    return study


def read_aggregate(root: Path, notes: list[str]) -> list[dict]:
    """aggregate.json (a list of rows, or {"rows"|"variants": [...]}) or else aggregate.csv."""
    if (root / "aggregate.json").is_file():
        value = read_json(root / "aggregate.json", notes)
        rows = value if isinstance(value, list) else rows_in(value)
        if rows:
            return rows
    if (root / "aggregate.csv").is_file():
        return read_csv(root / "aggregate.csv", notes)
    return []


def rows_in(value: Any) -> list[dict]:
    """The first list of dicts inside a JSON object (how tables are usually stored)."""
    if isinstance(value, dict):
        for item in value.values():
            if isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
                return item
        if value and all(isinstance(v, dict) for v in value.values()):  # {"name": {...}, ...}
            return [{"name": k, **v} for k, v in value.items()]
    return []
