"""A study's measurements: (variant, metric) -> seed -> value, read from the results table (one row
per run), the per-epoch table ("epoch2.val_loss") and the instruments' records
("attention.mean_entropy"). Claims and the seed-table comparison read nothing else."""

from __future__ import annotations

import math

from lmlab.study.claims import Measurements
from lmlab.study.results import EPOCH_METRICS

# The results columns a claim can name (lmlab.study.results.run_row writes them).
RUN_METRICS = ("best_val_loss", "best_val_perplexity", "best_val_accuracy", "best_val_bits_per_byte",
               "final_val_loss", "final_val_perplexity", "final_val_accuracy", "final_val_bits_per_byte",
               "train_val_gap", "initial_loss", "initial_loss_over_ln_v", "wall_s", "peak_mem_mb", "params", "params_non_embedding",
               "tokens_per_s", "steps", "epochs", "tokens")


def metric_names(n_epochs: int, instrument_metrics: list[str]) -> set[str]:
    """Every metric a study with `n_epochs` epochs and these instruments measures."""
    per_epoch = {f"epoch{e}.{m}" for e in range(1, n_epochs + 1) for m in EPOCH_METRICS}
    return set(RUN_METRICS) | per_epoch | set(instrument_metrics)


def measurements(rows: list[dict], epochs: list[dict], records: list[dict]) -> Measurements:
    out: Measurements = {}

    def put(variant: str, metric: str, seed: int, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.setdefault((variant, metric), {})[int(seed)] = float(value)

    for r in rows:
        if r.get("status") == "done":
            for m in RUN_METRICS:
                put(r["variant"], m, r["seed"], r.get(m))
    done = {(r["variant"], r["seed"]) for r in rows if r.get("status") == "done"}
    for e in epochs:
        if (e["variant"], e["seed"]) in done:
            for m in EPOCH_METRICS:
                put(e["variant"], f"epoch{e['epoch']}.{m}", e["seed"], e.get(m))
    for rec in records:
        for m, v in (rec.get("metrics") or {}).items():
            put(rec["variant"], f"{rec['instrument']}.{m}", rec["seed"], v)
    return out


def failed_variants(rows: list[dict]) -> set[str]:
    """Variants none of whose runs finished: their claims are not tested."""
    by: dict[str, bool] = {}
    for r in rows:
        by[r["variant"]] = by.get(r["variant"], False) or r.get("status") == "done"
    return {v for v, ok in by.items() if not ok}
