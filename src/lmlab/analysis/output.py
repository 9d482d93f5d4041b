"""Writing results: a JSON document and a CSV table per result, atomically (readers never see
half a file), under the run's analysis/ or samples/ folder (lmlab/runs.py describes the run folder)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path


def _clean(value):
    """NaN/inf -> None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data) -> Path:
    from lmlab.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(_clean(data), indent=1) + "\n")
    return Path(path)


def write_csv(path: Path, rows: list[dict]) -> Path:
    from lmlab.io import atomic_write_text

    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def write_table(folder: Path, name: str, data, rows: list[dict]) -> list[Path]:
    """folder/name.json (the whole result) and folder/name.csv (its table)."""
    folder = Path(folder)
    return [write_json(folder / f"{name}.json", data), write_csv(folder / f"{name}.csv", rows)]
