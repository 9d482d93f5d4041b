"""The results table (a row per run, read from each run directory) and the aggregate (a row per
variant: mean +- 95% CI over seeds, and the comparison with the baseline). Written atomically as
results.csv/.parquet/.md and aggregate.csv/.json/.md; the .md files are what `lmlab table` prints."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lmlab.runs import RunDir, atomic_write_text
from lmlab.study.stats import compare, summarize
from lmlab.tables import cell as fmt, markdown, write_csv, write_json, write_parquet  # noqa: F401  (fmt, markdown: re-exported)

CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022, the reference LLmini cites
METRIC_KEYS = ("loss", "perplexity", "accuracy", "bits_per_byte")


def run_row(run_dir: Path, status: dict, axes: dict, variant: str, seed: int) -> dict[str, Any]:
    """One run's row: sizes and cost from model.json and the train log, quality from the eval log."""
    row: dict[str, Any] = {"run": run_dir.name, "variant": variant, "seed": seed, **axes}
    run = RunDir(run_dir)
    model = json.loads((run_dir / "model.json").read_text()) if (run_dir / "model.json").is_file() else {}
    train = run.read_metrics("train") if run.metrics.is_file() else []
    evals = run.read_metrics("eval") if run.metrics.is_file() else []
    epochs = run.read_metrics("epoch") if run.metrics.is_file() else []
    last = train[-1] if train else {}
    params = model.get("params")
    row.update(params=params, params_non_embedding=model.get("params_non_embedding"),
               flops_per_token=model.get("flops_per_token_train"), tokens=last.get("tokens"),
               tokens_per_param=(last.get("tokens") or 0) / params if params else None,
               epochs=len(epochs), steps=last.get("step"), wall_s=total_wall_s(status, train + evals),
               tokens_per_s=(last["tokens"] / last["train_time_s"]) if last.get("train_time_s") else None,
               peak_mem_mb=max((r.get("peak_mem_mb", 0) for r in train), default=None))
    if evals:
        best = min(evals, key=lambda r: r["val_loss"])
        for k in METRIC_KEYS:
            row[f"best_val_{k}"] = best.get(f"val_{k}")
        for k in METRIC_KEYS:
            row[f"final_val_{k}"] = evals[-1].get(f"val_{k}")
        near = [r for r in train if r["step"] <= best["step"]][-max(1, len(train) // 20):]
        row["train_val_gap"] = best["val_loss"] - sum(r["loss"] for r in near) / len(near) if near else None
        row["best_step"] = best["step"]
    row["flops"] = (row["flops_per_token"] or 0) * (row["tokens"] or 0) or None
    row.update(initial_loss_fields(run_dir, train))
    row["status"] = status.get("status", "pending")
    row["error"] = status.get("error", "")
    return row


def initial_loss_fields(run_dir: Path, train: list[dict]) -> dict[str, Any]:
    """The initialization's loss (the run's "init" record: the first step's loss, measured before
    its update) and its ratio to ln(V), V the tokenizer's vocabulary: about 1 for an unbiased init."""
    run = RunDir(run_dir)
    init = run.read_metrics("init") if run.metrics.is_file() else []
    first = init[0] if init else (train[0] if train and train[0].get("step") == 1 else {})
    try:
        vocab = json.loads((run_dir / "manifest.json").read_text()).get("tokenizer_vocab_size")
    except (OSError, ValueError):
        vocab = None
    loss = first.get("loss")
    ratio = loss / math.log(vocab) if isinstance(loss, (int, float)) and isinstance(vocab, int) and vocab > 1 else None
    return {"initial_loss": loss, "initial_loss_over_ln_v": ratio}


def total_wall_s(status: dict, records: list[dict]) -> float | None:
    """Wall time over every attempt at a run, not only the last. The worker's status file holds its
    last attempt (or, where it keeps them, an `attempts` list, summed). The run's own clock
    (elapsed_s) is carried across resumes by its checkpoints, so it covers the training of earlier
    attempts too (not their start-up, nor the steps an interrupted one lost after its last save)."""
    attempts = status.get("attempts")
    if isinstance(attempts, list) and attempts:
        return sum(a.get("wall_s") or 0.0 for a in attempts if isinstance(a, dict))
    clock = max((r.get("elapsed_s") or 0.0 for r in records), default=0.0)
    last = status.get("wall_s")
    return max(last, clock) if last is not None else clock or None


def write_study_table(out: Path, stem: str, rows: list[dict], md_columns: list[str] | None = None,
                parquet: bool = False, as_json: Any = None) -> None:
    """STEM.csv, STEM.md (what `lmlab table` prints), STEM.json when given and STEM.parquet when asked
    and pyarrow is installed (without it, lmlab[parquet], the other files say the same)."""
    write_csv(out / f"{stem}.csv", rows)
    atomic_write_text(out / f"{stem}.md", markdown(rows, md_columns))
    if as_json is not None:
        write_json(out / f"{stem}.json", as_json)
    if parquet:
        write_parquet(out / f"{stem}.parquet", rows)


def aggregate(rows: list[dict], baseline: str, metric: str = "val_loss") -> list[dict]:
    """A row per variant (in table order): n, mean +- CI of the best `metric`, vs the baseline."""
    col = f"best_{metric}"
    lower = "accuracy" not in metric
    by_variant: dict[str, dict[int, float]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], {})
        if r["status"] == "done" and r.get(col) is not None:
            by_variant[r["variant"]][r["seed"]] = r[col]
    base = by_variant.get(baseline, {})
    out = []
    for name, values in by_variant.items():
        s = summarize(values.values())
        row = {"variant": name, "n": s.n, f"{metric}_mean": s.mean, f"{metric}_std": s.std,
               "ci_low": s.ci_low, "ci_high": s.ci_high}
        failed = sum(1 for r in rows if r["variant"] == name and r["status"] != "done")
        row["failed"] = failed
        if name == baseline:
            row.update(diff=0.0, diff_ci_low=None, diff_ci_high=None, p_value=None, test="",
                       noise_floor=summarize(base.values()).std, verdict="baseline")
        elif values and base:
            c = compare(base, values, lower)
            row.update(diff=c.diff, diff_ci_low=c.ci_low, diff_ci_high=c.ci_high, p_value=c.p_value,
                       test=c.test, noise_floor=c.noise_floor, verdict=c.verdict)
        else:
            row.update(verdict="no results")
        out.append(row)
    return out


def epoch_rows(run_dir: Path, variant: str, seed: int) -> list[dict[str, Any]]:
    """A run's per-epoch records (`train.epochs`): mean train loss over the epoch, val metrics at its
    end and the overfitting gap (val - train), as the seeds' per-epoch tables give them."""
    run = RunDir(run_dir)
    records = run.read_metrics("epoch") if run.metrics.is_file() else []
    return [{"run": run_dir.name, "variant": variant, "seed": seed, "epoch": r["epoch"], "step": r.get("step"),
             "train_loss": r.get("train_loss"), "val_loss": r.get("val_loss"),
             "val_perplexity": r.get("val_perplexity"), "gap": r.get("gap")} for r in records]


EPOCH_METRICS = ("train_loss", "val_loss", "val_perplexity", "gap")


def epoch_aggregate(rows: list[dict]) -> list[dict]:
    """A row per variant x epoch: each metric's mean and 95% half-width over seeds."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["epoch"]), []).append(r)
    out = []
    for (variant, epoch), rs in groups.items():
        row: dict[str, Any] = {"variant": variant, "epoch": epoch, "n": len(rs)}
        for k in EPOCH_METRICS:
            s = summarize([r[k] for r in rs if r.get(k) is not None])
            row[k] = s.mean
            row[f"{k}_ci"] = (s.ci_high - s.ci_low) / 2 if s.n > 1 else None
        out.append(row)
    return out


def epoch_text(agg: list[dict]) -> str:
    """The per-epoch table as the seed prints it: train loss, val loss, val perplexity, gap."""
    def cell(r: dict, k: str) -> str:
        return fmt(r[k]) + (f" ± {r[f'{k}_ci']:.3f}" if r.get(f"{k}_ci") is not None else "")
    lines = ["| variant | epoch | n | train loss | val loss | val perplexity | gap (val - train) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['epoch']} | {r['n']} | " + " | ".join(cell(r, k) for k in EPOCH_METRICS) + " |"
              for r in agg]
    return "\n".join(lines) + "\n"


def aggregate_text(agg: list[dict], metric: str) -> str:
    """The aggregate as people read it: mean +- half-width [CI], diff vs baseline, verdict."""
    lines = []
    for r in agg:
        mean, lo, hi = r.get(f"{metric}_mean"), r.get("ci_low"), r.get("ci_high")
        ci = f" ± {(hi - lo) / 2:.4f} [{lo:.4f}, {hi:.4f}]" if lo is not None and math.isfinite(lo) else ""
        head = f"{r['variant']:<28} n={r['n']} {metric} {fmt(mean)}{ci}"
        if r.get("verdict") == "baseline":
            noise = r.get("noise_floor")
            floor = (fmt(noise) if noise is not None and math.isfinite(noise)
                     else "undefined (one seed)" if r.get("n") == 1 else "undefined (no results)")
            lines.append(f"{head}  (baseline; noise floor = sd over seeds {floor})")
            continue
        diff = r.get("diff")
        if diff is None:
            lines.append(f"{head}  {r.get('verdict', '')}")
            continue
        dci = (f" [{r['diff_ci_low']:+.4f}, {r['diff_ci_high']:+.4f}]"
               if r.get("diff_ci_low") is not None and math.isfinite(r["diff_ci_low"]) else "")
        p = f", p={r['p_value']:.3g} ({r['test']})" if r.get("p_value") is not None and math.isfinite(r["p_value"]) else ""
        lines.append(f"{head}  vs baseline {diff:+.4f}{dci}{p}: {r['verdict']}")
    return "\n".join(lines) + "\n"
