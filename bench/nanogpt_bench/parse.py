"""Reading the two trainers' outputs: nanoGPT's timestamped stdout and lmlab's metrics.jsonl."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any


_NUM = r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))"
ITER_RE = re.compile(rf"^iter (\d+): loss {_NUM}, time {_NUM}ms")
EVAL_RE = re.compile(rf"^step (\d+): train loss {_NUM}, val loss {_NUM}")
LOOP_START_RE = re.compile(r"^using fused AdamW")  # nanoGPT's last line before its loop


def parse_nanogpt(lines: list[tuple[float, str]], warmup: int) -> dict[str, Any]:
    """Parse timestamped nanoGPT stdout lines [(t_arrival_s, text), ...]."""
    iters: dict[int, dict[str, float]] = {}
    evals: dict[int, dict[str, float]] = {}
    loop_start = None
    last_iter_stamp = None
    for stamp, text in lines:
        text = text.strip()
        if m := ITER_RE.match(text):
            n = int(m.group(1))
            iters[n] = {"loss": float(m.group(2)), "dt": float(m.group(3)) / 1000.0, "stamp": stamp}
            last_iter_stamp = stamp
        elif m := EVAL_RE.match(text):
            n = int(m.group(1))
            prev = last_iter_stamp if last_iter_stamp is not None else loop_start
            evals[n] = {"train_loss": float(m.group(2)), "val_loss": float(m.group(3)),
                        "eval_s": max(0.0, stamp - prev) if prev is not None else 0.0}
        elif LOOP_START_RE.match(text):
            loop_start = stamp
    if not iters:
        raise ValueError("no `iter N: loss X, time Y ms` lines in nanoGPT output")
    eval_steps = set(evals)
    steps = sorted(iters)
    clean = [iters[n]["dt"] for n in steps if n >= warmup and n not in eval_steps]
    if not clean:  # very short runs: fall back to everything but evals
        clean = [iters[n]["dt"] for n in steps if n not in eval_steps] or [iters[n]["dt"] for n in steps]
    med_dt = statistics.median(clean)
    # cumulative times *before* iter n (i.e. after n updates)
    wall_before, train_before = {}, {}
    w = t = 0.0
    for n in steps:
        wall_before[n], train_before[n] = w, t
        w += iters[n]["dt"]
        t += med_dt if n in eval_steps else iters[n]["dt"]
    wall_before[steps[-1] + 1], train_before[steps[-1] + 1] = w, t
    eval_records = []
    for n in sorted(evals):
        if n not in wall_before:
            continue
        eval_records.append({
            "step": n, "val_loss": evals[n]["val_loss"], "train_loss": evals[n]["train_loss"],
            "wall_s": wall_before[n], "train_s": train_before[n],
            "eval_s": evals[n]["eval_s"],
            # time the eval iter took beyond a normal step: eval + checkpoint save
            "eval_overhead_s": (iters[n]["dt"] - med_dt) if n in iters else None,
        })
    return {
        "n_steps_logged": len(steps),
        "step_times_s": [iters[n]["dt"] for n in steps],
        "train_losses": [iters[n]["loss"] for n in steps],
        "timed_steps": len(clean),
        "median_step_s": med_dt,
        "evals": eval_records,
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            print(f"warning: {path}:{i}: not JSON, skipped (partially written line?)", file=sys.stderr)
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def parse_lmlab(records: list[dict[str, Any]], warmup: int, eval_steps: set[int] | None = None,
                tokens_per_step: int | None = None) -> dict[str, Any]:
    """Analyse lmlab metrics.jsonl records (kind = train | eval | others ignored)."""
    train = sorted((r for r in records if r.get("kind") == "train" and "step" in r),
                   key=lambda r: r["step"])
    evals = sorted((r for r in records if r.get("kind") == "eval" and "step" in r),
                   key=lambda r: r["step"])
    if not train:
        raise ValueError("no train records in lmlab metrics")
    eval_steps = set(eval_steps or ()) | {int(r["step"]) for r in evals}
    has_train_time = all(isinstance(r.get("train_time_s"), (int, float)) for r in train)
    tkey = "train_time_s" if has_train_time else "elapsed_s"
    # per-step times from consecutive train records
    per_step, tok_per_step = [], []
    for a, b in zip(train, train[1:]):
        ds = b["step"] - a["step"]
        if ds <= 0 or b["step"] <= warmup or a.get(tkey) is None or b.get(tkey) is None:
            continue
        # wall-clock intervals containing an eval are not step times
        if tkey == "elapsed_s" and any(a["step"] <= e <= b["step"] for e in eval_steps):
            continue
        dt = (b[tkey] - a[tkey]) / ds
        if dt > 0:
            per_step.append(dt)
        if isinstance(a.get("tokens"), (int, float)) and isinstance(b.get("tokens"), (int, float)):
            if b["tokens"] > a["tokens"]:
                tok_per_step.append((b["tokens"] - a["tokens"]) / ds)
    if not per_step:  # too short: use what there is
        per_step = [r["tokens"] / r["tokens_per_s"] for r in train[warmup:]
                    if r.get("tokens_per_s") and r.get("tokens")] or [float("nan")]
    med = statistics.median(per_step)
    if tok_per_step:
        tps = statistics.median(tok_per_step)
    elif tokens_per_step:
        tps = tokens_per_step
    else:
        tps = float("nan")
    reported_tps = [r["tokens_per_s"] for r in train if r["step"] > warmup
                    and isinstance(r.get("tokens_per_s"), (int, float))]
    # train time at each eval: from the eval record if present, else the train record of that step
    by_step = {r["step"]: r for r in train}
    eval_records = []
    for r in evals:
        if not isinstance(r.get("val_loss"), (int, float)):
            continue
        tr = by_step.get(r["step"], {})
        train_s = tr.get("train_time_s", r.get("train_time_s"))
        eval_records.append({
            "step": int(r["step"]), "val_loss": float(r["val_loss"]),
            "train_loss": r.get("train_loss"),
            # the train record of the same step is written before the eval runs
            "wall_s": tr.get("elapsed_s", r.get("elapsed_s")), "train_s": train_s,
            "eval_record_elapsed_s": r.get("elapsed_s"),
        })
    return {
        "n_steps_logged": len(train),
        "timing_key": tkey,
        "timed_steps": len(per_step),
        "median_step_s": med,
        "tokens_per_step": tps,
        "reported_tokens_per_s_median": statistics.median(reported_tps) if reported_tps else None,
        "train_losses": [r.get("loss") for r in train],
        "evals": eval_records,
    }
