"""Every figure lmlab draws, on the ground floor: any stage may draw with it, and this package is
the only place in lmlab that imports matplotlib (lazily, so nothing else needs it installed).

One set-up for all of them: a pyplot-free `Figure` (no global state, no GUI backend, safe in
threads and forked workers), one style (size, dpi, grid, colours), and two ways out: PNG bytes
for pages that embed them, or an atomically written PNG file.

    run        loss curves, per-source and gap plots, heatmaps, overlays, the data's length histogram
    analysis   attention grids and maps, ablation deltas, embedding PCA, BLEU matrices, trajectories
    study      a study's curves, per-variant bars and its scaling fit
"""

from __future__ import annotations

import io
from pathlib import Path

from lmlab.errors import need

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
DPI = 110
INSTALL_HINT = "figures need matplotlib: pip install 'lmlab[plot]'"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure(width: float = 6.0, height: float = 3.6, nrows: int = 1, ncols: int = 1, grid: bool = True, **subplots):
    """(Figure, axes): one Axes, or the array `Figure.subplots(nrows, ncols, **subplots)` gives."""
    Figure = need("matplotlib.figure", "drawing figures").Figure
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, **subplots)
    if grid:
        for ax in (axes.flat if hasattr(axes, "flat") else [axes]):
            ax.grid(alpha=0.3)
    return fig, axes


def colour(i: int) -> str:
    return COLORS[i % len(COLORS)]


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save(fig, path: Path) -> Path:
    """Write the figure as a PNG, whole or not at all (readers never see half a file)."""
    from lmlab.io import atomic_write_bytes

    atomic_write_bytes(Path(path), png_bytes(fig))
    return Path(path)
