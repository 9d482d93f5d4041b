"""The look-inside figures (lmlab.analysis), one function each; matplotlib is imported lazily,
so the analysis works without it. Each function writes one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _plt():
    from lmlab.errors import need

    matplotlib = need("matplotlib", "drawing figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import io

    from lmlab.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _grid(ax, values: np.ndarray, title: str, cmap: str, fmt: str = "{:.2f}", center: bool = False,
          limits: tuple[float, float] | None = None):
    values = np.asarray(values, dtype=float)
    kw = {"vmin": limits[0], "vmax": limits[1]} if limits else {}
    if center:
        lim = max(float(np.nanmax(np.abs(values))), 1e-9)
        kw = {"vmin": -lim, "vmax": lim}
    im = ax.imshow(values, cmap=cmap, aspect="auto", **kw)
    ax.set_title(title)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    if values.size <= 150:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="black",
                    bbox={"facecolor": "white", "alpha": 0.5, "pad": 0.5, "linewidth": 0})
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def head_grids(per_head: dict, keys: list[str], titles: list[str], path: Path, suptitle: str = "",
               limits: tuple[float, float] | None = None) -> Path:
    """Layer x head heatmaps side by side (e.g. entropy and sparsity); `limits` fixes the colour scale."""
    plt = _plt()
    L, H = np.asarray(per_head[keys[0]]).shape
    fig, axes = plt.subplots(1, len(keys), figsize=(max(3.5, 0.7 * H + 2) * len(keys), max(3, 0.45 * L + 1.5)),
                             layout="constrained")
    for ax, key, title in zip(np.atleast_1d(axes), keys, titles):
        _grid(ax, per_head[key], title, "viridis", limits=limits)
    if suptitle:
        fig.suptitle(suptitle)
    return _save(fig, path)


def delta_grid(delta, path: Path, title: str) -> Path:
    """Δ loss per (layer, head), centred colour scale (red = the head helps)."""
    plt = _plt()
    d = np.asarray(delta, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * d.shape[1] + 2), max(3, 0.45 * d.shape[0] + 1.5)),
                           layout="constrained")
    _grid(ax, d, title, "RdBu_r", fmt="{:+.3f}", center=True)
    return _save(fig, path)


def attention_maps(patterns, labels: list[str], layer: int, heads: list[int], path: Path, prompt: str) -> Path:
    """One layer's query x key patterns, a panel per head, tokens as tick labels."""
    plt = _plt()
    n = len(heads)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    T = len(labels)
    size = max(3.5, 0.22 * T + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False, layout="constrained")
    small = 7 if T <= 40 else 5
    for ax, h in zip(axes.ravel(), heads):
        ax.imshow(np.asarray(patterns[layer][h]), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"layer {layer} head {h}")
        if T <= 80:
            ax.set_xticks(range(T), labels, rotation=90, fontsize=small)
            ax.set_yticks(range(T), labels, fontsize=small)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle(f"attention of {prompt[:60]!r}")
    return _save(fig, path)


def pca_words(words: list[str], coords, path: Path, explained) -> Path:
    plt = _plt()
    xy = np.asarray(coords, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue")
    for w, (x, y) in zip(words, xy):
        ax.annotate(w, (x, y), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1] if len(explained) > 1 else 0:.0%})")
    ax.set_title("input embeddings, 2-D PCA")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def trajectories(steps: list[int], series: dict[str, list[float]], path: Path, title: str, ylabel: str) -> Path:
    """Lines against training step (log-scaled x, step 0 drawn at 0.5)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = [max(s, 0.5) for s in steps]
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", markersize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training step (log; step 0 at 0.5)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bleu_heatmap(matrix, path: Path, mean: float) -> Path:
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(m) + 2), max(3.5, 0.6 * len(m) + 1.5)))
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color="white" if v < 60 else "black")
    ax.set_xticks(range(len(m)))  # whole variant numbers, as in prompt_sensitivity.json
    ax.set_yticks(range(len(m)))
    ax.set_xlabel("reference variant")
    ax.set_ylabel("hypothesis variant")
    ax.set_title(f"pairwise BLEU of continuations (mean {mean:.1f})")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)
