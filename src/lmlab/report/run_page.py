"""The page of one run: what was trained, on what, how training went, and what the model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmlab.figures import run as F
from lmlab.report import tables as T
from lmlab.report.load import RunData, read_run_page
from lmlab.report.page import PageBlock, Figure, PageSection, existing_figure, figures, table, write_page
from lmlab.sanity import check_rows, run_checks, title


def write_report(run_dir: str | Path) -> Path:
    """Write report.html (self-contained), report.md (its twin) and the figures of a run; return the html path."""
    run = read_run_page(run_dir)
    notes = list(run.notes)
    if not F.available():
        notes.append("figures left out: matplotlib is not installed (pip install 'lmlab[plot]')")
    sections = [s for s in run_sections(run) if s.blocks]
    subtitle = f"run {run.root.name} · {run.config.model.arch} · preset {run.preset}"
    return write_page(run.root, "run", run.name, subtitle, sections, notes)


def run_sections(run: RunData) -> list[PageSection]:
    return [PageSection("overview", "Overview", [table(T.overview_table(run))]),
            sanity_section(run),
            config_section(run),
            PageSection("model", "Model", [table(T.model_table(run))]),
            data_section(run),
            curves_section(run),
            eval_section(run),
            samples_section(run),
            analysis_section(run),
            sampling_section(run)]


def sanity_section(run: RunData) -> PageSection:
    """lmlab.sanity's checks: numbers a correct run cannot produce (a biased init, scored padding,
    validation text in training, a perplexity near 1 on natural text)."""
    checks = run_checks(run.root)
    failed = [title(c.name) for c in checks if c.status == "fail"]
    warned = [title(c.name) for c in checks if c.status == "warn"]
    intro = (f"{len(failed)} of {len(checks)} checks FAIL ({', '.join(failed)}): these results are not to be "
             f"trusted as they stand." if failed else "Every applicable check passes.")
    if warned:
        intro += f" To look at: {', '.join(warned)}."
    return PageSection("sanity", "Sanity checks", [table(T.sanity_table(check_rows(checks)))], intro)


def config_section(run: RunData) -> PageSection:
    return PageSection("config", "Configuration", [table(T.diff_table(run)),
                                               PageBlock("pre", "config.toml", text=run.config_toml, collapsed=True)])


def data_section(run: RunData) -> PageSection:
    s = PageSection("data", "Data")
    if run.stats:
        s.blocks += [table(t) for t in T.stats_tables(run.stats)]
    imgs = [existing_figure(run.root, p) for p in run.images.get("data", [])]
    if imgs:
        s.blocks.append(figures(imgs))
    return s


def curves_section(run: RunData) -> PageSection:
    s = PageSection("training", "Training curves")
    if not F.available() or not (run.train or run.evals):
        return s
    train, evals = run.train, with_tokens(run.evals, run.train)
    figs = [Figure("Loss against steps", "loss.png", F.loss_curves(train, evals, "step", "Loss against steps"))]
    if train and all("tokens" in r for r in train):
        figs.append(Figure("Loss against tokens", "figures/loss_tokens.png",
                           F.loss_curves(train, evals, "tokens", "Loss against training tokens")))
    if len({k for r in evals for k in (r.get("val_by_source") or {})}) > 1:
        figs.append(Figure("Validation loss per source", "figures/val_per_source.png", F.per_source(evals)))
    steps = [r["step"] for r in train]
    for key, label, title, log, sm in (("lr", "learning rate", "Learning rate", False, False),
                                       ("grad_norm", "global gradient norm", "Gradient norm", True, True),
                                       ("tokens_per_s", "tokens / s", "Training throughput", False, True)):
        if train and all(key in r for r in train):
            figs.append(Figure(title, f"figures/{key}.png", F.series(steps, [r[key] for r in train], label, title,
                                                                    log, sm)))
    gaps = generalization_gap(train, evals)
    if gaps[0]:
        figs.append(Figure("Generalization gap", "figures/gap.png", F.gap(*gaps),
                           "val loss minus the running mean of train loss at each evaluation"))
    s.blocks.append(figures(figs))
    return s


def with_tokens(evals: list[dict], train: list[dict]) -> list[dict]:
    """Eval records carry steps; take each one's token count from the train record of that step."""
    tokens = {r["step"]: r["tokens"] for r in train if "tokens" in r}
    per_step = train[-1]["tokens"] / train[-1]["step"] if train and "tokens" in train[-1] else 0
    return [{**r, "tokens": tokens.get(r["step"], r["step"] * per_step)} for r in evals]


def generalization_gap(train: list[dict], evals: list[dict]) -> tuple[list[int], list[float]]:
    if not train:
        return [], []
    smoothed = dict(zip((r["step"] for r in train), F.smooth([r["loss"] for r in train])))
    pts = [(r["step"], r["val_loss"] - smoothed[r["step"]]) for r in evals if r["step"] in smoothed]
    return [p[0] for p in pts], [p[1] for p in pts]


def eval_section(run: RunData) -> PageSection:
    s = PageSection("evaluation", "Evaluation")
    if run.evals:
        s.blocks.append(table(T.evals_table(run)))
    if run.tasks:
        s.blocks.append(table(T.tasks_table(run.tasks)))
    return s


def samples_section(run: RunData) -> PageSection:
    labels = {"before": "Before training", "after": "After training"}
    return PageSection("samples", "Samples", [PageBlock("pre", labels.get(name, name), text=text)
                                          for name, text in run.samples.items()])


def analysis_section(run: RunData) -> PageSection:
    s = PageSection("analysis", "Analysis")
    maps = []
    for name, value in run.tables.get("analysis", []):
        rows = value if isinstance(value, list) else []
        if F.available() and rows and {"layer", "head"} <= set(rows[0]):
            maps += head_heatmaps(name, rows)
        s.blocks += [table(t) for t in T.object_tables(name, value)]
    imgs = maps + [existing_figure(run.root, p) for p in run.images.get("analysis", [])]
    if imgs:
        s.blocks.insert(0, figures(imgs))
    return s


HEAT_KEYS = ("entropy_norm", "entropy", "sparsity", "max_weight", "mean_distance", "score", "loss_increase", "delta")


def head_heatmaps(name: str, rows: list[dict]) -> list[Figure]:
    """Layer × head grids of the first two per-head statistics a table has (e.g. attention.csv)."""
    out = []
    rows = [r for r in rows if is_index(r.get("layer")) and is_index(r.get("head"))]  # not the mean rows
    if not rows:
        return []
    layers = sorted({int(float(r["layer"])) for r in rows})
    heads = sorted({int(float(r["head"])) for r in rows})
    keys = [k for k in HEAT_KEYS if k in rows[0]][:2]
    for key in keys:
        grid = np.full((len(layers), len(heads)), np.nan)
        for r in rows:
            try:
                grid[layers.index(int(float(r["layer"]))), heads.index(int(float(r["head"])))] = float(r[key])
            except (TypeError, ValueError):
                continue
        stem = Path(name).stem
        out.append(Figure(f"{stem}: {key}", f"figures/{stem}_{key}.png",
                          F.heatmap(grid, f"{stem}: {key.replace('_', ' ')} per head", key)))
    return out


def is_index(value) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def sampling_section(run: RunData) -> PageSection:
    return PageSection("sampling", "Sampling", [table(t) for name, value in run.tables.get("sampling", [])
                                            for t in T.object_tables(name, value)])
