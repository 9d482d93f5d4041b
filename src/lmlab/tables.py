"""One table writer for every stage (data statistics, zero-shot tasks, analyses, studies): rows of
dicts as CSV, Markdown and JSON, each written whole or not at all. NaN and infinity, which JSON
does not have, are written as null; None is an empty CSV cell and an empty Markdown cell."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Callable

from lmlab.io import atomic_write_bytes, atomic_write_text


def finite_or_none(value: Any) -> Any:
    """The value with every NaN/inf (in nested lists and dicts too) replaced by None (JSON null:
    `"loss": NaN` is not JSON). NumPy scalars and 0-d tensors become Python numbers first."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # np.float64, a 0-d tensor
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def columns_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def csv_text(rows: list[dict], columns: list[str] | None = None,
             number: Callable[[float], Any] | None = None) -> str:
    """The rows as CSV under `columns` (default: every key, in first-seen order; others are left
    out); `number` formats floats (e.g. to 6 significant digits)."""
    columns = columns or columns_of(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else number(v) if number and isinstance(v, float) else v
                         for k, v in r.items()})
    return buf.getvalue()


def cell(value: Any) -> str:
    """A Markdown cell: empty for None/NaN, 4 decimals (or 4 significant digits when tiny or huge)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def markdown(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    columns = columns or columns_of(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def json_text(data: Any, indent: int = 1) -> str:
    """Standard JSON (NaN/inf as null); values JSON lacks (paths, numpy scalars) as their text."""
    return json.dumps(finite_or_none(data), indent=indent, default=str, allow_nan=False) + "\n"


def write_json(path: Path, data: Any, indent: int = 1) -> Path:
    atomic_write_text(Path(path), json_text(data, indent))
    return Path(path)


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None, number=None) -> Path:
    atomic_write_text(Path(path), csv_text(rows, columns, number))
    return Path(path)


def write_parquet(path: Path, rows: list[dict]) -> Path | None:
    """The rows as Parquet through pyarrow; None (nothing written) without pyarrow installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    plain = [{c: v if v is None or isinstance(v, (int, float, str, bool)) else str(v)
              for c, v in ((c, r.get(c)) for c in columns_of(rows))} for r in rows]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(plain), sink)
    atomic_write_bytes(Path(path), sink.getvalue().to_pybytes())
    return Path(path)
