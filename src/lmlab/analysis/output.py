"""Writing results: a JSON document and a CSV table per result, atomically (readers never see
half a file), under the run's analysis/ or samples/ folder (lmlab/runs.py describes the run folder),
through the one table writer (lmlab.tables: NaN as null, floats to 6 significant digits in CSV)."""

from __future__ import annotations

from pathlib import Path

from lmlab.tables import write_csv as _write_csv
from lmlab.tables import write_json  # noqa: F401  (the analyses' JSON writer)


def write_csv(path: Path, rows: list[dict]) -> Path:
    return _write_csv(path, rows, number=lambda v: f"{v:.6g}")


def write_table(folder: Path, name: str, data, rows: list[dict]) -> list[Path]:
    """folder/name.json (the whole result) and folder/name.csv (its table)."""
    folder = Path(folder)
    return [write_json(folder / f"{name}.json", data), write_csv(folder / f"{name}.csv", rows)]
