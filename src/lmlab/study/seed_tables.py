"""The seed's own tables, transcribed, shown beside lmlab's measurement of the same quantity.

    [[study.seed_tables]]
    title = "Loss and perplexity after 3 epochs"
    source = "llmini.md, Ablation Study / Loss and Perplexity"
    columns = ["model", "train loss", "val loss", "val ppl"]
    rows = [["A", 3.12, 3.35, 28.5], ["B", 3.20, 3.41, 30.3]]
    variants = ["A", "B"]                                       # lmlab's variant for each row
    ours = {"val loss" = "epoch3.val_loss", "val ppl" = "epoch3.val_perplexity"}
    note = "cpu size: widths /6, 8k tokens per source; the seed trained on 370M tokens"

Each mapped column gets a twin "<column> · lmlab" (mean ± 95% half-width over seeds); the
note states what differs in the set-up, so a reader compares like with like or knows why not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from lmlab.errors import UserError
from lmlab.study.claims import Measurements
from lmlab.study.stats import summarize


@dataclass
class SeedTable:
    title: str
    source: str
    columns: list[str]
    rows: list[list[Any]]
    variants: list[str] = field(default_factory=list)
    ours: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def seed_table_from_dict(values: dict, where: str) -> SeedTable:
    known = set(SeedTable.__dataclass_fields__)
    if not isinstance(values, dict) or set(values) - known:
        raise UserError(f"{where}: a seed table is a table of {', '.join(sorted(known))}"
                        + (f" (unknown: {', '.join(sorted(set(values) - known))})" if isinstance(values, dict) else ""))
    t = SeedTable(**values)
    if any(len(r) != len(t.columns) for r in t.rows):
        raise UserError(f"{where}: seed table {t.title!r}: every row needs {len(t.columns)} cells (its columns)")
    if t.variants and len(t.variants) != len(t.rows):
        raise UserError(f"{where}: seed table {t.title!r}: variants needs one entry per row ({len(t.rows)})")
    bad = [c for c in t.ours if c not in t.columns]
    if bad:
        raise UserError(f"{where}: seed table {t.title!r}: ours names column(s) {', '.join(bad)}; its columns: "
                        f"{', '.join(t.columns)}")
    return t


def check_seed_tables(tables: list[SeedTable], variants: list[str], metrics: set[str], where: str) -> None:
    for t in tables:
        for v in t.variants:
            if v and v not in variants:
                raise UserError(f"{where}: seed table {t.title!r} names variant {v!r}; the study's variants: "
                                f"{', '.join(variants)}")
        for m in t.ours.values():
            if m not in metrics:
                raise UserError(f"{where}: seed table {t.title!r} names metric {m!r}, which the study does not "
                                f"measure")


def side_by_side(t: SeedTable, measured: Measurements) -> list[dict]:
    """The seed's rows with lmlab's number beside each mapped column."""
    out = []
    for i, row in enumerate(t.rows):
        variant = t.variants[i] if t.variants else ""
        cells: dict[str, Any] = {}
        for col, value in zip(t.columns, row):
            cells[col] = value
            if col in t.ours:
                cells[f"{col} · lmlab"] = ours_cell(measured.get((variant, t.ours[col]), {})) if variant else ""
        out.append(cells)
    return out


def ours_cell(values: dict[int, float]) -> str:
    s = summarize(list(values.values()))
    if s.n == 0:
        return "—"
    if s.n == 1 or not math.isfinite(s.half_width):
        return f"{s.mean:.4g}"
    return f"{s.mean:.4g} ± {s.half_width:.2g}"
