"""The page of a study: its plan, the results with intervals and verdicts, overlaid curves, the
scaling fit, and a link to each run's own page (written alongside)."""

from __future__ import annotations

import math

import re
from pathlib import Path
from typing import Any

from lmlab.errors import UserError
from lmlab.figures import run as F
from lmlab.report import tables as T
from lmlab.report.findings_page import claims_section, instruments_section, sanity_section
from lmlab.report.load import StudyData, read_study_page
from lmlab.report.page import PageBlock, Figure, PageSection, existing_figure, figures, table, write_page
from lmlab.report.run_page import write_report

LOSS_COLUMNS = ("best_val_loss", "val_loss", "loss", "final_val_loss")
SIZE_COLUMNS = {"params": ("params_non_embedding", "params", "n_params"),  # scaling.json key -> results column
                "flops": ("flops", "total_flops", "compute")}


def write_study_report(study_dir: str | Path) -> Path:
    """Write each run's page, then the study's report.html / report.md; return the study page's path."""
    study = read_study_page(study_dir)
    notes = list(study.notes)
    links = []
    for run in study.runs:
        try:
            write_report(run)
            links.append((run.name, f"runs/{run.name}/report.html", run_summary(study, run.name)))
        except UserError as err:  # one broken run must not hide the study
            notes.append(f"runs/{run.name}: no page ({err})")
    if not F.available():
        notes.append("figures left out: matplotlib is not installed (pip install 'lmlab[plot]')")
    sections = [plan_section(study), claims_section(study), results_section(study), curves_section(study),
                scaling_section(study), instruments_section(study), sanity_section(study),
                PageSection("runs", "Runs", [PageBlock("links", links=links)] if links else [])]
    subtitle = f"study {study.root.resolve().name} · {len(study.runs)} runs"
    return write_page(study.root, "study", study.name, subtitle, [s for s in sections if s.blocks], notes)


def run_summary(study: StudyData, name: str) -> str:
    evals = [r for r in study.curves.get(name, []) if r.get("kind") == "eval"
             and isinstance(r.get("val_loss"), (int, float)) and math.isfinite(r["val_loss"])]
    return f"best val loss {min(r['val_loss'] for r in evals):.4f}" if evals else "no evaluation yet"


def plan_section(study: StudyData) -> PageSection:
    plan = study.plan
    s = PageSection("plan", "Plan")
    if plan:  # the study's own fields (axes, seeds, budget, retrain) and its runs; the base config is in the file
        fields = plan.get("study", plan)
        fields = fields if isinstance(fields, dict) else {}
        shown_below = ("plan", "claims", "seed_tables")  # claims and seed tables have their own sections
        s.blocks += [table(t) for t in T.object_tables("Study", {k: v for k, v in fields.items()
                                                                 if k not in shown_below})]
        if isinstance(plan.get("plan"), list):
            s.blocks += [table(t) for t in T.object_tables("Runs", plan["plan"])]
        text = (study.root / "study.toml").read_text(encoding="utf-8", errors="replace")
        s.blocks.append(PageBlock("pre", "study.toml", text=text, collapsed=True))
    return s


def results_section(study: StudyData) -> PageSection:
    s = PageSection("results", "Results")
    if study.aggregate:
        s.blocks.append(table(T.rows_table("Per variant (mean and 95% interval over seeds; vs the baseline)",
                                           study.aggregate)))
        verdicts = verdict_lines(study.aggregate)
        if verdicts:
            s.blocks.append(PageBlock("notes", "Noise-floor verdicts", items=verdicts))
    if study.epochs:
        s.blocks.append(table(T.rows_table("Per epoch (mean over seeds and 95% half-width; gap = val - train loss)",
                                           study.epochs)))
    if study.results:
        s.blocks.append(table(T.rows_table("Per run", study.results)))
    if study.selected:
        s.blocks += [table(t) for t in T.object_tables("Selected (grid search)", study.selected)]
    return s


def verdict_lines(rows: list[dict]) -> list[str]:
    """'variant: verdict' for every row with a verdict (and its diff / noise floor when given)."""
    out = []
    for row in rows:
        key = next((k for k in row if "verdict" in k.lower()), None)
        if key is None or not row.get(key):
            continue
        name = row.get("variant") or row.get("name") or next(iter(row.values()))
        extra = ", ".join(f"{k} {T.fmt(row[k])}" for k in row if k.lower() in ("diff", "noise_floor", "p_value", "p")
                          and row[k] not in (None, ""))
        out.append(f"{name}: {row[key]}" + (f" ({extra})" if extra else ""))
    return out


def variant_of(run_name: str) -> str:
    """runs/<slug>-s<seed> -> <slug>: the seeds of one variant share a colour."""
    return re.sub(r"-s\d+$", "", run_name)


def curves_section(study: StudyData) -> PageSection:
    s = PageSection("curves", "Curves")
    if F.available():
        curves, curves_tok = {}, {}
        for name, records in study.curves.items():
            evals = [r for r in records if r.get("kind") == "eval" and "val_loss" in r]
            if not evals:
                continue
            curves[name] = ([r["step"] for r in evals], [r["val_loss"] for r in evals])
            tokens = {r["step"]: r["tokens"] for r in records if r.get("kind") == "train" and "tokens" in r}
            if all(r["step"] in tokens for r in evals):
                curves_tok[name] = ([tokens[r["step"]] for r in evals], curves[name][1])
        groups = {n: variant_of(n) for n in curves}
        figs = []
        if curves:
            figs.append(Figure("Validation loss of every run", "figures/val_loss_runs.png",
                               F.overlay(curves, groups, "step", "Validation loss of every run")))
        if curves_tok and len(curves_tok) == len(curves):
            figs.append(Figure("Validation loss against tokens", "figures/val_loss_runs_tokens.png",
                               F.overlay(curves_tok, groups, "training tokens", "Validation loss against tokens")))
        if figs:
            s.blocks.append(figures(figs))
    plots = [existing_figure(study.root, p) for p in study.plots]
    if plots:
        s.blocks.append(PageBlock("figures", "Plots written by the study", figures=plots))
    return s


def scaling_section(study: StudyData) -> PageSection:
    s = PageSection("scaling", "Scaling fit")
    if not study.scaling:
        return s
    s.blocks += [table(t) for t in T.object_tables("scaling.json", study.scaling)]
    if F.available():
        figs = [f for f in (scaling_figure(study, axis) for axis in study.scaling) if f is not None]
        if figs:
            s.blocks.insert(0, figures(figs))
    return s


def scaling_figure(study: StudyData, axis: str) -> Figure | None:
    """Points from results.csv (size, best loss) and the curve from scaling.json's fit for `axis`."""
    fit, rows = study.scaling.get(axis), study.results
    candidates = (axis,) + SIZE_COLUMNS.get(axis, SIZE_COLUMNS.get(axis.split("_")[0], ()))
    xcol = next((c for c in candidates if rows and c in rows[0]), None)
    ycol = next((c for c in LOSS_COLUMNS if rows and c in rows[0]), None)
    if not isinstance(fit, dict) or xcol is None or ycol is None:
        return None
    pts = [(number(r[xcol]), number(r[ycol])) for r in rows if r.get("status", "done") == "done"]
    pts = [p for p in pts if p[0] and p[1]]
    params = tuple(number(fit.get(k)) for k in ("a", "alpha", "c"))
    if not pts:
        return None
    if any(p is None for p in params):  # the fit failed (its error is in the table)
        return None
    return Figure(f"Scaling with {axis}", f"figures/scaling_{axis}.png",
                  F.scaling([p[0] for p in pts], [p[1] for p in pts], params, xcol.replace("_", " ")))


def number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
