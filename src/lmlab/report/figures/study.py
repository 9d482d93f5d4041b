"""Study figures (PNG), matplotlib imported lazily: val loss of every run against steps, tokens,
FLOPs and wall time, per-variant bars with confidence intervals, and the scaling fit."""

from __future__ import annotations

import math
from pathlib import Path

from lmlab.runs import RunDir

X_AXES = {"steps": "step", "tokens": "tokens", "flops": "flops", "wall": "elapsed_s"}


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("matplotlib is not installed: pip install 'lmlab[plot]'") from None
    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _plt().close(fig)
    return path


def curves(out: Path, rows: list[dict]) -> Path:
    """Validation loss of every run against steps, tokens, FLOPs and wall time (a panel each);
    a variant's seeds share a colour."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    colours = {v: plt.cm.tab10(i % 10) for i, v in enumerate(variants)}
    for r in rows:
        run = RunDir(out / "runs" / r["run"])
        if not run.metrics.is_file():
            continue
        evals = run.read_metrics("eval")
        tokens_at = {t["step"]: t["tokens"] for t in run.read_metrics("train")}
        for ax, (name, key) in zip(axes, X_AXES.items()):
            xs, ys = [], []
            for e in evals:
                tok = tokens_at.get(e["step"])
                x = {"step": e["step"], "tokens": tok, "elapsed_s": e.get("elapsed_s"),
                     "flops": tok * r["flops_per_token"] if tok and r.get("flops_per_token") else None}[key]
                if x is not None:
                    xs.append(x), ys.append(e["val_loss"])
            ax.plot(xs, ys, color=colours[r["variant"]], alpha=0.8, marker=".",
                    label=r["variant"] if r["seed"] == min(x["seed"] for x in rows if x["variant"] == r["variant"]) else None)
    for ax, name in zip(axes, ["optimizer steps", "training tokens", "training FLOPs", "wall time (s)"]):
        ax.set_xlabel(name), ax.set_ylabel("val loss"), ax.grid(alpha=0.3)
    axes[2].set_xscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("validation loss of every run")
    return _save(fig, out / "plots" / "curves.png")


def bars(out: Path, agg: list[dict], metric: str) -> Path:
    """Mean of the metric per variant with its 95% interval; the baseline's noise floor shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(agg) + 2), 4))
    names = [a["variant"] for a in agg]
    means = [a.get(f"{metric}_mean", math.nan) for a in agg]
    err = [[m - a["ci_low"] if _finite(a.get("ci_low")) else 0 for m, a in zip(means, agg)],
           [a["ci_high"] - m if _finite(a.get("ci_high")) else 0 for m, a in zip(means, agg)]]
    colours = ["tab:grey" if a.get("verdict") == "baseline" else "tab:blue" for a in agg]
    ax.bar(range(len(agg)), means, yerr=err, capsize=4, color=colours)
    base = next((a for a in agg if a.get("verdict") == "baseline"), None)
    if base and _finite(base.get("noise_floor")):
        m, nf = base[f"{metric}_mean"], base["noise_floor"]
        ax.axhspan(m - nf, m + nf, color="tab:grey", alpha=0.2, label="baseline ± noise floor")
        ax.legend(fontsize=8)
    finite = [m for m in means if _finite(m)]
    if finite:
        span = max(finite) - min(finite) or abs(max(finite)) * 0.05 or 1
        ax.set_ylim(min(finite) - span, max(finite) + span)
    ax.set_xticks(range(len(agg)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"best {metric} (mean, 95% CI)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out / "plots" / "bars.png")


def scaling_fit(out: Path, rows: list[dict], fits: dict) -> Path:
    """Loss against non-embedding parameters and against FLOPs, log axes, with the fitted law."""
    import numpy as np

    from lmlab.study.scaling import power_law

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    done = [r for r in rows if r["status"] == "done" and r.get("best_val_loss") is not None]
    for ax, key in zip(axes, ["params_non_embedding", "flops"]):
        xs = np.array([r[key] for r in done], float)
        ys = np.array([r["best_val_loss"] for r in done], float)
        ax.scatter(xs, ys, color="tab:blue", label="runs")
        f = fits.get(key, {})
        if "alpha" in f and len(xs):
            grid = np.geomspace(xs.min(), xs.max(), 100)
            ax.plot(grid, power_law(grid, f["a"], f["alpha"], f["c"]), color="tab:red",
                    label=f"{f['a']:.3g} N^-{f['alpha']:.3f} + {f['c']:.3f}")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlabel(key.replace("_", " ")), ax.set_ylabel("best val loss"), ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    return _save(fig, out / "plots" / "scaling.png")


def study_plots(out: Path, rows: list[dict], agg: list[dict], metric: str) -> list[Path]:
    import json

    paths = [curves(out, rows), bars(out, agg, metric)]
    if (out / "scaling.json").is_file():
        paths.append(scaling_fit(out, rows, json.loads((out / "scaling.json").read_text())))
    return paths


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)
