#!/usr/bin/env python
"""Side-by-side CPU benchmark: lmlab vs. karpathy/nanoGPT on char-level Shakespeare.

Both trainers run as subprocesses with the same hyperparameters (nanoGPT's
`config/train_shakespeare_char.py` recipe, scaled down for CPU), interleaved
(nanoGPT, lmlab, nanoGPT, lmlab, ...) so that machine noise hits both alike.

nanoGPT is *not* vendored: point --nanogpt at a checkout (see README_nanogpt_notes.md).
Its stdout is parsed (`iter N: loss X, time Y ms, ...` and `step N: train loss X, val loss Y`);
lmlab's `RUN_DIR/metrics.jsonl` is read.

Examples (from the repository root):

    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config tiny --steps 50
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config tiny --repeats 3
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config 6x384 --repeats 2
    .venv/bin/python bench/bench_nanogpt.py --nanogpt /work/nanogpt --config speedrun \\
        --lmlab-preset shakespeare_char_speedrun
    .venv/bin/python bench/bench_nanogpt.py --selftest      # parsers/analysis only, no training

Timing conventions (important for reading the numbers):
  * nanoGPT's per-iter `time` of iter N is measured from the end of iter N-1 to the end of
    iter N, so for N % eval_interval == 0 it INCLUDES the evaluation at step N and any
    checkpoint save (nanoGPT saves `ckpt.pt` whenever val loss improves; this cannot be
    turned off from the command line). Such iters are excluded from ms/step statistics.
  * nanoGPT with max_iters=N performs N+1 optimizer steps (iters 0..N); the eval printed as
    `step N` happens after N updates, before the last one. We compare evals at equal N.
  * "wall" time of the eval at step N = wall-clock time since the training loop started until
    the model after N updates exists, i.e. just BEFORE that eval runs; earlier evaluations and
    checkpoint saves are included (nanoGPT: sum of the per-iter times of iters 0..N-1, which
    includes its step-0 eval; lmlab: `elapsed_s` of the train record of step N, falling back
    to the eval record's `elapsed_s`).
    "train" time = the same without any evaluation/checkpointing (nanoGPT: eval iters' times
    replaced by the median step time; lmlab: `train_time_s`).
  * nanoGPT evaluates at step 0 and on BOTH splits (2 x eval_iters forward passes per eval);
    the duration of each eval is estimated from stdout arrival times (`eval_s` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# =====================================================================================
# BENCH CONFIGS. Hyperparameter names are nanoGPT's (they are the canonical names here);
# lmlab receives them through LMLAB_FLAGS below.
# =====================================================================================

# Shared by every config: nanoGPT's config/train_shakespeare_char.py + train.py defaults.
NANOGPT_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-3,   # config/train_shakespeare_char.py
    "min_lr": 1e-4,          # config/train_shakespeare_char.py
    "warmup_iters": 100,     # config/train_shakespeare_char.py
    "beta1": 0.9,            # train.py default
    "beta2": 0.99,           # config/train_shakespeare_char.py (train.py default is 0.95)
    "weight_decay": 0.1,     # train.py default (2-D params only, incl. the tied embedding)
    "grad_clip": 1.0,        # train.py default
    "bias": False,           # train.py default (model.py's GPTConfig default True is overridden)
    "seed": 1337,            # train.py: torch.manual_seed(1337 + seed_offset)
}

CONFIGS: dict[str, dict[str, Any]] = {
    # nanoGPT README's CPU recipe ("macbook"), full schedule: lr_decay_iters = max_iters.
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                 max_iters=2000, eval_interval=250, eval_iters=200),
    # the shakespeare_char model size (6x384, ctx 256) at batch 8: throughput only.
    # eval_interval = max_iters -> evals only at step 0 and at the end (eval_iters small).
    "6x384": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8, dropout=0.0,
                  max_iters=30, eval_interval=30, eval_iters=10),
    # nanoGPT = the tiny recipe; lmlab = its own preset (--lmlab-preset). Criterion: lmlab
    # reaches nanoGPT's final val loss in at most half of nanoGPT's wall time.
    "speedrun": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                     max_iters=2000, eval_interval=250, eval_iters=200),
}
DEFAULT_SPEEDRUN_PRESET = "shakespeare_speedrun"  # lmlab preset name

# =====================================================================================
# >>> LMLAB CLI MAPPING — adjust HERE when lmlab's command line / config fields change. <<<
# =====================================================================================
LMLAB_TASK = "shakespeare_char"  # positional preset/task of `python -m lmlab train`


def lmlab_hparam_flags(hp: dict[str, Any]) -> list[str]:
    """nanoGPT-named hyperparameters -> lmlab `--section.field=value` overrides.

    Returns the full list of overrides for a matched-hyperparameter run. Anything lmlab
    does not (yet) support should be removed here, not silently elsewhere.
    """
    steps = hp["max_iters"]
    # eval size: nanoGPT scores eval_iters random batches of batch_size x block_size tokens
    # per split; lmlab scores eval.max_tokens validation tokens.
    eval_tokens = hp["eval_iters"] * hp["batch_size"] * hp["block_size"]
    flags = {
        "model.n_layer": hp["n_layer"],
        "model.n_head": hp["n_head"],
        "model.d_model": hp["n_embd"],
        "model.context_len": hp["block_size"],
        "model.dropout": hp["dropout"],
        "model.bias": hp["bias"],
        "model.tie_embeddings": True,
        "model.norm": "layernorm",
        "model.norm_eps": 1e-5,
        "model.mlp": "gelu",
        "model.position": "learned",
        "model.init": "gpt2",
        "train.max_steps": steps,
        "train.batch_size": hp["batch_size"],
        "train.grad_accum": 1,
        "train.lr": hp["learning_rate"],
        "train.min_lr_ratio": hp["min_lr"] / hp["learning_rate"],
        "train.schedule": "cosine",
        "train.warmup_steps": hp["warmup_iters"],
        "train.decay_steps": hp.get("lr_decay_iters", steps),
        "train.beta1": hp["beta1"],
        "train.beta2": hp["beta2"],
        "train.weight_decay": hp["weight_decay"],
        "train.grad_clip": hp["grad_clip"],
        "train.seed": hp["seed"],
        "eval.every": hp["eval_interval"],
        "eval.max_tokens": eval_tokens,
        "eval.batch_size": hp["batch_size"],
    }
    return [f"--{k}={_lmlab_value(v)}" for k, v in flags.items()]


LMLAB_PRECISION = "auto"  # set from --lmlab-precision


def lmlab_common_flags() -> list[str]:
    """Overrides passed in every lmlab run, preset runs included (device, logging)."""
    return ["--train.device=cpu", f"--train.precision={LMLAB_PRECISION}", "--train.compile=false",
            "--train.log_every=1", "--train.progress=false"]


def lmlab_command(python: str, task: str, data: Path, run_dir: Path,
                  overrides: list[str]) -> list[str]:
    return [python, "-m", "lmlab", "train", task, "--data", str(data), "--run-dir", str(run_dir),
            *overrides]


def _lmlab_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


LMLAB_METRICS_FILE = "metrics.jsonl"  # inside --run-dir
# =====================================================================================


def nanogpt_command(python: str, hp: dict[str, Any], out_dir: Path) -> list[str]:
    """nanoGPT's train.py with the shakespeare_char config and our overrides.

    nanoGPT's configurator asserts that the literal's type equals the default's type, so
    floats must be written as floats (0.0, not 0) and ints as ints.
    """
    steps = hp["max_iters"]
    over = {
        "device": "cpu", "compile": False, "dtype": "float32", "out_dir": str(out_dir),
        "log_interval": 1, "eval_interval": hp["eval_interval"], "eval_iters": hp["eval_iters"],
        "n_layer": hp["n_layer"], "n_head": hp["n_head"], "n_embd": hp["n_embd"],
        "block_size": hp["block_size"], "batch_size": hp["batch_size"],
        "dropout": float(hp["dropout"]), "bias": bool(hp["bias"]),
        "max_iters": steps, "lr_decay_iters": hp.get("lr_decay_iters", steps),
        "learning_rate": float(hp["learning_rate"]), "min_lr": float(hp["min_lr"]),
        "warmup_iters": hp["warmup_iters"], "beta1": float(hp["beta1"]),
        "beta2": float(hp["beta2"]), "weight_decay": float(hp["weight_decay"]),
        "grad_clip": float(hp["grad_clip"]),
    }
    args = [f"--{k}={v!r}" if isinstance(v, float) else f"--{k}={v}" for k, v in over.items()]
    return [python, "train.py", "config/train_shakespeare_char.py", *args]


# ------------------------------------------------------------------------------ parsing

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


# ------------------------------------------------------------------------------ analysis

def best_by_time(evals: list[dict[str, Any]], t: float, key: str) -> float | None:
    vals = [e["val_loss"] for e in evals if e.get(key) is not None and e[key] <= t + 1e-9]
    return min(vals) if vals else None


def time_to_reach(evals: list[dict[str, Any]], target: float, key: str) -> dict[str, Any]:
    """First eval at which val_loss <= target; also a linear interpolation in (time, loss)."""
    prev = None
    for e in evals:
        if e.get(key) is None:
            continue
        if e["val_loss"] <= target:
            interp = e[key]
            if prev is not None and prev["val_loss"] > e["val_loss"]:
                frac = (prev["val_loss"] - target) / (prev["val_loss"] - e["val_loss"])
                interp = prev[key] + frac * (e[key] - prev[key])
            return {"step": e["step"], "at_eval_s": e[key], "interp_s": interp}
        prev = e
    return {"step": None, "at_eval_s": None, "interp_s": None}


def compare_pair(ng: dict[str, Any], lm: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ng_e, lm_e = ng["evals"], lm["evals"]
    lm_by_step = {e["step"]: e["val_loss"] for e in lm_e}
    out["val_at_equal_steps"] = [
        {"step": e["step"], "nanogpt": e["val_loss"], "lmlab": lm_by_step[e["step"]]}
        for e in ng_e if e["step"] in lm_by_step]
    for key in ("wall_s", "train_s"):
        out[f"val_at_equal_{key}"] = [
            {"t": e[key], "step_nanogpt": e["step"], "nanogpt": e["val_loss"],
             "lmlab_best": best_by_time(lm_e, e[key], key)} for e in ng_e]
    if ng_e:
        target = ng_e[-1]["val_loss"]
        out["target_val_loss"] = target
        out["nanogpt_final_step"] = ng_e[-1]["step"]
        for key in ("wall_s", "train_s"):
            out[f"reach_{key}"] = {"nanogpt": time_to_reach(ng_e, target, key),
                                   "lmlab": time_to_reach(lm_e, target, key),
                                   "nanogpt_final": ng_e[-1][key]}
    return out


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    agg: dict[str, Any] = {}
    for impl in ("nanogpt", "lmlab"):
        rs = [r for r in runs if r["impl"] == impl and r.get("ok")]
        agg[impl] = {
            "runs": len(rs),
            "ms_per_step": med([r["ms_per_step"] for r in rs]),
            "tokens_per_s": med([r["tokens_per_s"] for r in rs]),
            "final_val_loss": med([r["evals"][-1]["val_loss"] for r in rs if r["evals"]]),
            "final_step": med([r["evals"][-1]["step"] for r in rs if r["evals"]]),
            "wall_at_final_eval_s": med([r["evals"][-1]["wall_s"] for r in rs if r["evals"]]),
            "process_s": med([r["process_s"] for r in rs]),
        }
    n, l = agg["nanogpt"], agg["lmlab"]
    agg["tokens_per_s_ratio_lmlab_over_nanogpt"] = (
        l["tokens_per_s"] / n["tokens_per_s"] if n["tokens_per_s"] and l["tokens_per_s"] else None)
    pairs = [r["comparison"] for r in runs if r["impl"] == "lmlab" and r.get("comparison")]
    if pairs:
        # median over repeats, point by point
        def med_points(name, idx_key, fields):
            table: dict[Any, dict[str, list]] = {}
            for p in pairs:
                for row in p.get(name, []):
                    k = row[idx_key] if idx_key != "t" else row["step_nanogpt"]
                    d = table.setdefault(k, {f: [] for f in fields})
                    for f in fields:
                        d[f].append(row.get(f))
            return [{idx_key if idx_key != "t" else "step_nanogpt": k, **{f: med(v) for f, v in d.items()}}
                    for k, d in sorted(table.items())]
        agg["val_at_equal_steps"] = med_points("val_at_equal_steps", "step", ["nanogpt", "lmlab"])
        for key in ("wall_s", "train_s"):
            agg[f"val_at_equal_{key}"] = med_points(f"val_at_equal_{key}", "t",
                                                    ["t", "nanogpt", "lmlab_best"])
            reach = [p.get(f"reach_{key}") for p in pairs if p.get(f"reach_{key}")]
            agg[f"reach_{key}"] = {
                "target_val_loss": med([p.get("target_val_loss") for p in pairs]),
                "nanogpt_final": med([r["nanogpt_final"] for r in reach]),
                "nanogpt": med([r["nanogpt"]["interp_s"] for r in reach]),
                "lmlab": med([r["lmlab"]["interp_s"] for r in reach]),
                "lmlab_at_eval": med([r["lmlab"]["at_eval_s"] for r in reach]),
                "lmlab_reached": sum(r["lmlab"]["step"] is not None for r in reach),
                "pairs": len(reach),
            }
        rw = agg["reach_wall_s"]
        if rw["lmlab"] is not None and rw["nanogpt_final"]:
            agg["speedrun_ratio_wall"] = rw["lmlab"] / rw["nanogpt_final"]
            agg["speedrun_pass"] = (rw["lmlab_reached"] == rw["pairs"]
                                    and all(p["reach_wall_s"]["lmlab"]["interp_s"] <=
                                            0.5 * p["reach_wall_s"]["nanogpt_final"]
                                            for p in pairs if p.get("reach_wall_s")))
        else:
            agg["speedrun_ratio_wall"], agg["speedrun_pass"] = None, False
    return agg


def fmt(x, spec=".4f", none="—"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


def markdown(results: dict[str, Any]) -> str:
    L = []
    cfg = results["bench"]
    L.append(f"### lmlab vs nanoGPT — config `{cfg['config']}`, {cfg['steps']} steps, "
             f"{cfg['repeats']} repeat(s), threads={cfg['threads'] or 'default'}"
             + (f", lmlab preset `{cfg['lmlab_preset']}`" if cfg.get("lmlab_preset") else ""))
    L.append("")
    L.append("| run | impl | ok | ms/step | tok/s | final step | final val | wall@final eval (s) | process (s) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        ev = r.get("evals") or []
        L.append(f"| {r['repeat']} | {r['impl']} | {'yes' if r.get('ok') else 'NO'} | "
                 f"{fmt(r.get('ms_per_step'), '.2f')} | {fmt(r.get('tokens_per_s'), ',.0f')} | "
                 f"{ev[-1]['step'] if ev else '—'} | {fmt(ev[-1]['val_loss'] if ev else None)} | "
                 f"{fmt(ev[-1]['wall_s'] if ev else None, '.1f')} | {fmt(r.get('process_s'), '.1f')} |")
    agg = results["aggregate"]
    n, l = agg["nanogpt"], agg["lmlab"]
    L.append("")
    L.append("| median | nanoGPT | lmlab | lmlab/nanoGPT |")
    L.append("|---|---|---|---|")

    def ratio(a, b):
        return fmt(b / a, ".3f") if a and b else "—"
    L.append(f"| ms/step | {fmt(n['ms_per_step'], '.2f')} | {fmt(l['ms_per_step'], '.2f')} | "
             f"{ratio(n['ms_per_step'], l['ms_per_step'])} |")
    L.append(f"| tokens/s | {fmt(n['tokens_per_s'], ',.0f')} | {fmt(l['tokens_per_s'], ',.0f')} | "
             f"{fmt(agg['tokens_per_s_ratio_lmlab_over_nanogpt'], '.3f')} |")
    L.append(f"| final val loss | {fmt(n['final_val_loss'])} | {fmt(l['final_val_loss'])} | |")
    L.append(f"| wall @ final eval (s) | {fmt(n['wall_at_final_eval_s'], '.1f')} | "
             f"{fmt(l['wall_at_final_eval_s'], '.1f')} | {ratio(n['wall_at_final_eval_s'], l['wall_at_final_eval_s'])} |")
    if "val_at_equal_steps" in agg:
        L.append("")
        L.append("| step | nanoGPT val | lmlab val | t wall (s) | nanoGPT val | lmlab best val by t |")
        L.append("|---|---|---|---|---|---|")
        by_t = {row["step_nanogpt"]: row for row in agg["val_at_equal_wall_s"]}
        steps = sorted({row["step"] for row in agg["val_at_equal_steps"]} | set(by_t))
        eq = {row["step"]: row for row in agg["val_at_equal_steps"]}
        for s in steps:
            a, b = eq.get(s, {}), by_t.get(s, {})
            L.append(f"| {s} | {fmt(a.get('nanogpt'))} | {fmt(a.get('lmlab'))} | {fmt(b.get('t'), '.1f')} | "
                     f"{fmt(b.get('nanogpt'))} | {fmt(b.get('lmlab_best'))} |")
        L.append("")
        for key, label in (("wall_s", "wall"), ("train_s", "train-only")):
            r = agg[f"reach_{key}"]
            L.append(f"- time to nanoGPT's final val loss {fmt(r['target_val_loss'])} ({label}): "
                     f"nanoGPT {fmt(r['nanogpt'], '.1f')} s (final eval at {fmt(r['nanogpt_final'], '.1f')} s), "
                     f"lmlab {fmt(r['lmlab'], '.1f')} s interpolated / {fmt(r['lmlab_at_eval'], '.1f')} s at eval "
                     f"(reached in {r['lmlab_reached']}/{r['pairs']} runs)")
        if cfg["config"] == "speedrun" or cfg.get("lmlab_preset"):
            L.append(f"- speedrun criterion (lmlab reaches it in <= 0.5x nanoGPT's wall time): "
                     f"{'PASS' if agg.get('speedrun_pass') else 'FAIL'} "
                     f"(ratio {fmt(agg.get('speedrun_ratio_wall'), '.3f')})")
    return "\n".join(L)


# ------------------------------------------------------------------------------ running

def run_streaming(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                  timeout: float, echo: bool) -> tuple[int, list[tuple[float, str]], float]:
    """Run cmd, timestamping each stdout/stderr line on arrival (seconds since start)."""
    t_start = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                t = time.perf_counter() - t_start
                lines.append((t, line.rstrip("\n")))
                log.write(f"[{t:9.3f}] {line}")
                if echo:
                    sys.stderr.write(line)
                if t > timeout:
                    proc.kill()
                    break
            rc = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t_start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return rc, lines, time.perf_counter() - t_start


def ensure_nanogpt_data(nanogpt: Path, data: Path, python: str, env: dict[str, str]) -> None:
    """Make sure data/shakespeare_char/{train,val}.bin exist and come from our input.txt.

    Runs nanoGPT's own prepare.py (which imports `requests` unconditionally although it only
    uses it to download a missing input.txt; a stub module avoids installing it).
    """
    d = nanogpt / "data" / "shakespeare_char"
    if not (nanogpt / "train.py").is_file() or not d.is_dir():
        sys.exit(f"error: {nanogpt} does not look like a nanoGPT checkout (no train.py / data/shakespeare_char)")
    inp = d / "input.txt"
    ours = data.read_bytes()
    if inp.is_file() and inp.read_bytes() != ours:
        sys.exit(f"error: {inp} differs from --data {data}; remove it (and *.bin, meta.pkl) to re-prepare")
    if all((d / f).is_file() for f in ("train.bin", "val.bin", "meta.pkl")) and inp.is_file():
        return
    if not inp.is_file():
        shutil.copyfile(data, inp)
    print(f"preparing nanoGPT data in {d} ...", file=sys.stderr)
    code = ("import sys, types, runpy; sys.modules.setdefault('requests', types.ModuleType('requests')); "
            "runpy.run_path('data/shakespeare_char/prepare.py', run_name='__main__')")
    subprocess.run([python, "-c", code], cwd=nanogpt, env=env, check=True)


def find_data(arg: str | None) -> Path:
    if arg:
        p = Path(arg).expanduser()
        if not p.is_absolute() and not p.exists():
            p = REPO_ROOT / p
        if not p.is_file():
            sys.exit(f"error: --data {arg}: no such file")
        return p.resolve()
    candidates = [REPO_ROOT.parent / "shared/data/tinyshakespeare/input.txt"]
    if os.environ.get("LMLAB_SHAKESPEARE"):
        candidates.insert(0, Path(os.environ["LMLAB_SHAKESPEARE"]))
    for up in [REPO_ROOT, *REPO_ROOT.parents]:
        candidates.append(up / "shared/data/tinyshakespeare/input.txt")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    sys.exit("error: tinyshakespeare input.txt not found; pass --data PATH")


def torch_info(python: str, env: dict[str, str]) -> dict[str, Any]:
    try:
        out = subprocess.run([python, "-c", "import torch, json; print(json.dumps({'torch': torch.__version__, "
                              "'threads': torch.get_num_threads(), 'interop_threads': torch.get_num_interop_threads()}))"],
                             env=env, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as err:  # noqa: BLE001
        return {"error": str(err)}


def run_nanogpt(args, hp, env, workdir: Path, repeat: int) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix="nanogpt_out_", dir=args.tmp))
    cmd = nanogpt_command(args.python, hp, out_dir)
    log = workdir / f"nanogpt_r{repeat}.log"
    print(f"[{repeat}] nanoGPT: {' '.join(cmd)}", file=sys.stderr)
    rc, lines, wall = run_streaming(cmd, args.nanogpt, env, log, args.timeout, args.verbose)
    shutil.rmtree(out_dir, ignore_errors=True)  # ckpt.pt can be large
    res: dict[str, Any] = {"impl": "nanogpt", "repeat": repeat, "cmd": cmd, "rc": rc,
                           "process_s": wall, "log": str(log)}
    try:
        p = parse_nanogpt(lines, args.warmup_steps)
        res.update(p)
        res["ms_per_step"] = p["median_step_s"] * 1000
        res["tokens_per_s"] = hp["batch_size"] * hp["block_size"] / p["median_step_s"]
        res["ok"] = rc == 0
    except ValueError as err:
        res.update(ok=False, error=str(err), tail=[t for _, t in lines[-15:]])
    if not res["ok"]:
        print(f"[{repeat}] nanoGPT FAILED (rc={rc}); log: {log}", file=sys.stderr)
    return res


def run_lmlab(args, hp, env, workdir: Path, repeat: int) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="lmlab_run_", dir=args.tmp))
    if args.lmlab_preset:
        task = args.lmlab_preset
        overrides = lmlab_common_flags()
        if args.steps is not None:
            overrides.append(f"--train.max_steps={args.steps}")
    else:
        task = LMLAB_TASK
        overrides = lmlab_common_flags() + lmlab_hparam_flags(hp)
    if args.threads:
        overrides.append(f"--train.threads={args.threads}")
    overrides += args.lmlab_args
    cmd = lmlab_command(args.lmlab_python, task, args.data, run_dir, overrides)
    log = workdir / f"lmlab_r{repeat}.log"
    print(f"[{repeat}] lmlab: {' '.join(cmd)}", file=sys.stderr)
    rc, lines, wall = run_streaming(cmd, REPO_ROOT, env, log, args.timeout, args.verbose)
    res: dict[str, Any] = {"impl": "lmlab", "repeat": repeat, "cmd": cmd, "rc": rc,
                           "process_s": wall, "log": str(log), "run_dir": str(run_dir)}
    metrics = run_dir / LMLAB_METRICS_FILE
    try:
        if not metrics.is_file():
            raise ValueError(f"{metrics} was not written")
        tps = None if args.lmlab_preset else hp["batch_size"] * hp["block_size"]
        p = parse_lmlab(read_jsonl(metrics), args.warmup_steps, tokens_per_step=tps)
        res.update(p)
        res["ms_per_step"] = p["median_step_s"] * 1000
        res["tokens_per_s"] = p["tokens_per_step"] / p["median_step_s"]
        res["ok"] = rc == 0
        if args.keep_runs:
            shutil.copyfile(metrics, workdir / f"lmlab_r{repeat}_metrics.jsonl")
    except ValueError as err:
        res.update(ok=False, error=str(err), tail=[t for _, t in lines[-15:]])
    if not res["ok"]:
        print(f"[{repeat}] lmlab FAILED (rc={rc}): {res.get('error', '')}; log: {log}", file=sys.stderr)
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def slim(run: dict[str, Any]) -> dict[str, Any]:
    """Drop bulky per-step arrays unless asked for."""
    return {k: v for k, v in run.items() if k not in ("step_times_s", "train_losses")}


# ------------------------------------------------------------------------------ selftest

def selftest() -> None:
    """Parsers + analysis on hand-made inputs (no training)."""
    fx = Path(__file__).resolve().parent / "fixtures"
    ng_lines = []
    for line in (fx / "nanogpt_stdout_sample.txt").read_text().splitlines():
        m = re.match(r"^\[\s*([\d.]+)\] (.*)$", line)
        if m:
            ng_lines.append((float(m.group(1)), m.group(2)))
    ng = parse_nanogpt(ng_lines, warmup=2)
    assert [e["step"] for e in ng["evals"]] == [0, 10, 20], ng["evals"]
    assert ng["timed_steps"] == 17, ng["timed_steps"]  # iters 2..20 minus the eval iters 10, 20
    dts = {int(m.group(1)): float(m.group(3)) / 1000 for _, t in ng_lines if (m := ITER_RE.match(t))}
    want_med = statistics.median(dt for n, dt in dts.items() if n >= 2 and n not in (10, 20))
    assert abs(ng["median_step_s"] - want_med) < 1e-12, (ng["median_step_s"], want_med)
    e20 = ng["evals"][-1]
    assert abs(e20["val_loss"] - 3.5745) < 1e-9
    # wall at the step-20 eval = sum of dt of iters 0..19 (the eval itself is not included)
    want = sum(ng["step_times_s"][:20])
    assert abs(e20["wall_s"] - want) < 1e-9 and e20["eval_s"] > 0.3, e20

    lm = parse_lmlab(read_jsonl(fx / "lmlab_metrics_sample.jsonl"), warmup=2)
    assert lm["timing_key"] == "train_time_s"
    assert [e["step"] for e in lm["evals"]] == [0, 10, 20], lm["evals"]
    assert abs(lm["median_step_s"] - 0.020) < 1e-6, lm["median_step_s"]
    assert lm["tokens_per_step"] == 768, lm["tokens_per_step"]
    assert abs(lm["evals"][1]["wall_s"] - 0.58) < 1e-9, lm["evals"][1]  # train record of step 10
    cmp_ = compare_pair(ng, lm)
    assert [r["step"] for r in cmp_["val_at_equal_steps"]] == [0, 10, 20]
    rw = cmp_["reach_wall_s"]
    assert rw["nanogpt"]["step"] == 20 and rw["lmlab"]["step"] == 10, rw
    # elapsed_s-only metrics (no train_time_s): eval intervals must be skipped
    recs = [{k: v for k, v in r.items() if k != "train_time_s"}
            for r in read_jsonl(fx / "lmlab_metrics_sample.jsonl")]
    lm2 = parse_lmlab(recs, warmup=2)
    assert lm2["timing_key"] == "elapsed_s" and abs(lm2["median_step_s"] - 0.020) < 1e-6, lm2["median_step_s"]
    runs = [dict(impl="nanogpt", repeat=0, ok=True, ms_per_step=ng["median_step_s"] * 1e3,
                 tokens_per_s=768 / ng["median_step_s"], process_s=3.0, **ng),
            dict(impl="lmlab", repeat=0, ok=True, ms_per_step=lm["median_step_s"] * 1e3,
                 tokens_per_s=768 / lm["median_step_s"], process_s=2.0, comparison=cmp_, **lm)]
    results = {"bench": {"config": "selftest", "steps": 20, "repeats": 1, "threads": None},
               "runs": runs, "aggregate": aggregate(runs)}
    assert results["aggregate"]["speedrun_pass"] is True, results["aggregate"]["reach_wall_s"]
    print(markdown(results))
    json.dumps(results)
    print("\nselftest OK")


# ------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nanogpt", type=Path, help="path to a karpathy/nanoGPT checkout")
    ap.add_argument("--data", help="tinyshakespeare input.txt (default: ../shared/data/tinyshakespeare/"
                                   "input.txt relative to the repo root)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--steps", type=int, help="override max steps (lr decay length follows it)")
    ap.add_argument("--eval-interval", type=int, help="override eval interval (both)")
    ap.add_argument("--eval-iters", type=int, help="override nanoGPT eval_iters (lmlab eval tokens follow)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved pairs: nanoGPT, lmlab, nanoGPT, ...")
    ap.add_argument("--only", choices=("both", "nanogpt", "lmlab"), default="both")
    ap.add_argument("--lmlab-preset", help="run lmlab with its own preset instead of matched hparams "
                                           f"(config speedrun default: {DEFAULT_SPEEDRUN_PRESET})")
    ap.add_argument("--lmlab-args", nargs=argparse.REMAINDER, default=[],
                    help="extra lmlab overrides, e.g. --lmlab-args --train.lr=2e-3 (must be last)")
    ap.add_argument("--threads", type=int, default=0,
                    help="set OMP/MKL threads (and lmlab train.threads) for both; 0 = inherit env / torch default")
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps excluded from timing")
    ap.add_argument("--python", default=sys.executable, help="python for nanoGPT (default: this one)")
    ap.add_argument("--lmlab-python", default=None, help="python for lmlab (default: repo .venv or this one)")
    ap.add_argument("--out", type=Path, help="write JSON results here")
    ap.add_argument("--tmp", default=None, help="directory for temp run dirs (default: system tmp)")
    ap.add_argument("--keep-runs", action="store_true", help="keep lmlab run dirs; copy metrics next to logs")
    ap.add_argument("--timeout", type=float, default=3600, help="per-subprocess timeout (s)")
    ap.add_argument("--verbose", action="store_true", help="echo subprocess output")
    ap.add_argument("--full", action="store_true", help="include per-step times/losses in the JSON")
    ap.add_argument("--selftest", action="store_true", help="test parsers on bench/fixtures and exit")
    ap.add_argument("--lmlab-precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="lmlab's train.precision (auto = bf16 autocast where the CPU has it)")
    args = ap.parse_args(argv)
    global LMLAB_PRECISION
    LMLAB_PRECISION = args.lmlab_precision

    if args.selftest:
        selftest()
        return
    if args.only != "lmlab" and not args.nanogpt:
        ap.error("--nanogpt PATH is required (a karpathy/nanoGPT checkout)")
    if args.nanogpt:
        args.nanogpt = args.nanogpt.expanduser().resolve()
    args.data = find_data(args.data)
    if args.lmlab_python is None:
        venv = REPO_ROOT / ".venv" / "bin" / "python"
        args.lmlab_python = str(venv) if venv.exists() else sys.executable
    if args.config == "speedrun" and not args.lmlab_preset:
        args.lmlab_preset = DEFAULT_SPEEDRUN_PRESET

    hp = {**NANOGPT_RECIPE, **CONFIGS[args.config]}
    if args.steps is not None:
        hp["max_iters"] = args.steps
        if args.config == "6x384":
            hp["eval_interval"] = args.steps
    hp["lr_decay_iters"] = hp["max_iters"]
    if args.eval_interval:
        hp["eval_interval"] = args.eval_interval
    if args.eval_iters:
        hp["eval_iters"] = args.eval_iters

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # line-by-line stdout, so arrival stamps are meaningful
    if args.threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(args.threads)
    lm_env = dict(env)
    src = str(REPO_ROOT / "src")
    lm_env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    workdir = Path(tempfile.mkdtemp(prefix="bench_nanogpt_", dir=args.tmp))
    if args.only != "lmlab":
        ensure_nanogpt_data(args.nanogpt, args.data, args.python, env)

    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        ng = lm = None
        if args.only != "lmlab":
            ng = run_nanogpt(args, hp, env, workdir, rep)
            runs.append(ng)
        if args.only != "nanogpt":
            lm = run_lmlab(args, hp, lm_env, workdir, rep)
            if ng and ng.get("ok") and lm.get("ok"):
                lm["comparison"] = compare_pair(ng, lm)
            runs.append(lm)

    results = {
        "bench": {
            "config": args.config, "steps": hp["max_iters"], "repeats": args.repeats,
            "threads": args.threads or None, "hparams": hp, "lmlab_preset": args.lmlab_preset,
            "lmlab_args": args.lmlab_args, "data": str(args.data),
            "nanogpt": str(args.nanogpt) if args.nanogpt else None,
            "nanogpt_commit": _git_head(args.nanogpt) if args.nanogpt else None,
            "warmup_steps_excluded": args.warmup_steps, "cpu_count": os.cpu_count(),
            "env_threads": {k: env.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
            "torch": torch_info(args.python, env), "logs": str(workdir),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "runs": [r if args.full else slim(r) for r in runs],
        "aggregate": aggregate(runs),
    }
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {args.out}", file=sys.stderr)
    print(f"logs: {workdir}", file=sys.stderr)
    if not all(r.get("ok") for r in runs):
        sys.exit(1)


def _git_head(path: Path) -> str | None:
    stamp = path / "NANOGPT_COMMIT"  # written by the setup in README_nanogpt_notes.md
    if stamp.is_file():
        return stamp.read_text().strip()
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    main()
