"""Every figure lmlab draws: this package is the only place in lmlab that imports matplotlib.
Run and data figures live here; `analysis` and `study` hold the look-inside and study figures.

Each function takes plain numbers and returns PNG bytes (or writes a PNG file), so the pages
embed them as data: URIs and the markdown twin links them as files. matplotlib is imported
lazily through `_figure()`; `available()` lets callers leave figures out when it is missing.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lmlab.errors import UserError, need

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 6.0, height: float = 3.6):
    """A pyplot-free Figure (no global state) with one Axes."""
    Figure = need("matplotlib.figure", "drawing figures").Figure
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _log_y(ax) -> None:
    """A log y axis labelled 0.6, 1, 2 rather than 6×10⁻¹ (losses and norms span a decade or less)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_yscale("log")
    label = FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(label)
    ax.yaxis.set_minor_formatter(label)


def running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def smooth(values: list[float]) -> list[float]:
    return running_mean(values, max(len(values) // 50, 1))


def loss_curves(train: list[dict], evals: list[dict], x: str, title: str) -> bytes:
    """Train loss (faint raw, solid running mean) and val loss against `x` ('step' or 'tokens')."""
    fig, ax = _figure()
    if train:
        xs, losses = [r[x] for r in train], [r["loss"] for r in train]
        ax.plot(xs, losses, color=COLORS[0], alpha=0.25, linewidth=0.8)
        ax.plot(xs, smooth(losses), color=COLORS[0], label="train (running mean)")
    if evals:
        ax.plot([r[x] for r in evals], [r["val_loss"] for r in evals], "o-", color=COLORS[1], label="val")
    if x == "tokens":
        from matplotlib.ticker import EngFormatter

        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 800k, 1.2M
    ax.set_xlabel("training tokens" if x == "tokens" else "step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def per_source(evals: list[dict]) -> bytes:
    """Validation loss of each source of a mixture against steps."""
    fig, ax = _figure()
    names = list(dict.fromkeys(s for r in evals for s in (r.get("val_by_source") or {})))
    for i, name in enumerate(names):
        pts = [(r["step"], r["val_by_source"][name]["loss"]) for r in evals if name in (r.get("val_by_source") or {})]
        ax.plot(*zip(*pts), "o-", color=COLORS[i % len(COLORS)], label=name, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("val loss (nats / token)")
    ax.set_title("Validation loss per source")
    ax.legend(fontsize=8)
    return _png(fig)


def series(xs: list[float], ys: list[float], ylabel: str, title: str, log: bool = False,
           smooth_line: bool = False) -> bytes:
    """One quantity against steps (learning rate, gradient norm, tokens/s)."""
    fig, ax = _figure()
    ax.plot(xs, ys, color=COLORS[0], alpha=0.35 if smooth_line else 1.0, linewidth=0.8 if smooth_line else 1.5)
    if smooth_line:
        ax.plot(xs, smooth(ys), color=COLORS[0])
    if log and min(ys, default=1) > 0:
        _log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _png(fig)


def gap(steps: list[int], values: list[float]) -> bytes:
    """val − train loss at each evaluation: above zero the model fits training text better than new text."""
    fig, ax = _figure()
    ax.axhline(0, color="black", linewidth=0.8)
    ax.plot(steps, values, "o-", color=COLORS[3])
    ax.set_xlabel("step")
    ax.set_ylabel("val − train loss (nats)")
    ax.set_title("Generalization gap")
    return _png(fig)


def heatmap(matrix: np.ndarray, title: str, label: str) -> bytes:
    """A layer × head grid of one statistic, each cell annotated when the grid is small."""
    layers, heads = matrix.shape
    fig, ax = _figure(min(max(4.5, 2.0 + 0.6 * heads), 9.0), min(max(3.0, 1.6 + 0.45 * layers), 8.0))
    ax.grid(False)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_xticks(range(heads))
    ax.set_yticks(range(layers))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    if layers * heads <= 96:
        mid = np.nanmean(matrix)
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < mid else "black")
    return _png(fig)


def overlay(curves: dict[str, tuple[list[float], list[float]]], groups: dict[str, str], xlabel: str,
            title: str) -> bytes:
    """Val loss of many runs on one axes; runs of one variant (different seeds) share a colour."""
    fig, ax = _figure(7.0, 4.2)
    colors = {g: COLORS[i % len(COLORS)] for i, g in enumerate(dict.fromkeys(groups.values()))}
    shown: set[str] = set()
    for name, (xs, ys) in curves.items():
        group = groups[name]
        ax.plot(xs, ys, "o-", markersize=2.5, linewidth=1.2, color=colors[group],
                label=None if group in shown else group)
        shown.add(group)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("val loss (nats / token)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2 if len(shown) > 8 else 1)
    return _png(fig)


def scaling(xs: list[float], ys: list[float], fit: tuple[float, float, float], xlabel: str) -> bytes:
    """Best val loss against size on log-log axes, with the fitted L = a·x^(−alpha) + c."""
    fig, ax = _figure()
    ax.scatter(xs, ys, color=COLORS[0], zorder=3, label="runs")
    if len(xs) > 0:
        a, alpha, c = fit
        grid = np.geomspace(min(xs), max(xs), 100)
        ax.plot(grid, a * grid ** (-alpha) + c, color=COLORS[1], label=f"fit: {a:.3g}·x^(−{alpha:.3g}) + {c:.3g}")
    ax.set_xscale("log")
    _log_y(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("best val loss")
    ax.set_title(f"Scaling with {xlabel}")
    ax.legend(fontsize=8)
    return _png(fig)


def length_histogram(lengths: dict[str, np.ndarray], context_len: int, path: Path) -> Path | None:
    """Document lengths per source (log bins) with the context window marked; None without matplotlib."""
    if not available():
        return None
    from lmlab.io import atomic_write_bytes

    fig, ax = _figure(7.0, 4.0)
    top = max((int(v.max()) for v in lengths.values() if len(v)), default=1)
    bins = np.unique(np.geomspace(1, max(top, 2), 50).round())
    for name, values in lengths.items():
        if len(values):
            ax.hist(np.maximum(values, 1), bins=bins, histtype="step", label=name, linewidth=1.4)
    ax.axvline(context_len, color="black", linestyle="--", linewidth=1, label=f"context {context_len}")
    ax.set_xscale("log")
    ax.set_xlabel("document length (tokens)")
    ax.set_ylabel("documents")
    ax.legend(fontsize=8)
    ax.set_title("Document lengths per source")
    atomic_write_bytes(Path(path), _png(fig))
    return Path(path)
