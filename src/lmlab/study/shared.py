"""Work a study does once, not once per run.

Data: before any run starts, each distinct data preparation (sources, split, tokenizer, layout
and, for layouts that depend on it, the context length) is prepared once here into the token
cache (lmlab.data.cache); every run then loads that entry memory-mapped, read-only, with its
tokenizer, instead of two workers racing to tokenize the same corpus.

Figures: the runs leave their data-length histogram to the study (train.job.DEFER_FIGURES), which
draws it once per distinct preparation at its end and copies it into each run's data/ folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lmlab.study.expand import RunPlan


def data_key(cfg) -> str:
    """What decides a run's prepared data (and its histogram); runs with equal keys share both."""
    return json.dumps({"data": cfg.data.to_dict(), "tokenizer": cfg.tokenizer.to_dict(),
                       "context_len": cfg.model.context_len}, sort_keys=True, default=str)


def distinct_data(runs: list[RunPlan]) -> dict[str, list[RunPlan]]:
    groups: dict[str, list[RunPlan]] = {}
    for r in runs:
        groups.setdefault(data_key(r.cfg), []).append(r)
    return groups


def warm_data(runs: list[RunPlan]) -> int:
    """Prepare each distinct data config once (into the token cache); returns how many there were.
    A run whose data cannot be prepared is left to fail on its own, with its own error."""
    from lmlab.data.prepare import prepare
    from lmlab.errors import LmlabError

    groups = distinct_data(runs)
    for group in groups.values():
        if group[0].cfg.data.cache:
            try:
                prepare(group[0].cfg, progress=False)
            except (LmlabError, OSError, ValueError):
                pass
    return len(groups)


def draw_deferred(out: Path, runs: list[RunPlan]) -> None:
    """Each finished run's data/lengths.png, drawn once per distinct data config."""
    from lmlab.data.prepare import prepare
    from lmlab.data.stats import write_stats

    for group in distinct_data(runs).values():
        missing = [out / "runs" / r.name / "data" for r in group]
        missing = [d for d in missing if (d / "stats.json").is_file() and not (d / "lengths.png").is_file()]
        if not missing:
            continue
        try:
            written = write_stats(prepare(group[0].cfg, progress=False), missing[0])
        except Exception:  # noqa: BLE001 — a figure is a nicety; the study's results stand without it
            continue
        png = next((p for p in written if p.suffix == ".png"), None)
        for d in missing[1:] if png else []:
            shutil.copyfile(png, d / "lengths.png")
