"""Running a study: the plan on disk (study.toml, the marker), pending runs through an executor
with one line per run started/finished (ETA) and an overall count, then the tables, statistics,
plots and — for a grid search — select, retrain and test. Re-running skips finished runs and
resumes interrupted ones; a failed run is recorded with its one-line error and the rest go on."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.errors import UserError, has
from lmlab.io import LOCK_NAME, DirLock, atomic_write_text, read_marker, remove_owned, topmost_missing, write_marker
from lmlab.study.execution import execute, status_of
from lmlab.study.executors import Execution, get_executor
from lmlab.study.findings import check_findings, find
from lmlab.study.shared import draw_deferred
from lmlab.study.expand import RunPlan, plan
from lmlab.study.results import (aggregate, aggregate_text, epoch_aggregate, epoch_rows, epoch_text, markdown,
                                 run_row, write_study_table)
from lmlab.study.spec import Study

MARKER = ".lmlab-study"
# The top-level names a study writes into its folder (tables in several formats, plots, pages).
_TABLES = ("results", "aggregate", "epochs", "epochs_aggregate")
STUDY_LAYOUT = ("runs", "status", "retrain", "plots", "figures", "study.toml", "selected.json", "scaling.json",
                "timing.json", "instruments", "instruments.json", "claims.json", "claims.md", "seed_tables.json",
                "seed_tables.md",
                "report.html", "report.md", *(f"{t}.{ext}" for t in _TABLES for ext in ("csv", "md", "json", "parquet")))
SUMMARY_COLUMNS = ["run", "seed", "params", "tokens", "steps", "wall_s", "best_val_loss", "best_val_accuracy",
                   "best_val_bits_per_byte", "train_val_gap", "status"]


@dataclass
class Outcome:
    out: Path
    rows: list[dict]
    aggregate: list[dict]
    failed: list[dict] = field(default_factory=list)
    text: str = ""
    epochs: list[dict] = field(default_factory=list)  # a row per run x epoch (train.epochs budgets)


def prepare_dir(study: Study, out: Path, runs: list[RunPlan], force: bool) -> DirLock:
    """Lock the study folder for this process (one study process per folder: a second one would
    retrain or delete runs the first is training), then refuse a folder holding something else or
    a different study; --force starts over, deleting only what lmlab wrote there. The caller keeps
    the returned lock until the study ends."""
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a folder for the study")
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()) and not marker.is_file():
        raise UserError(f"{out} exists and is not an lmlab study directory; choose another --out")
    made = topmost_missing(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create study directory {out}: {err.strerror}") from None
    try:
        lock = DirLock(out, what="study directory").acquire()
    except OSError as err:  # a read-only file system, a folder without write permission
        raise not_writable(out, err) from None
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    try:
        _write_plan(study, out, runs, force)
    except OSError as err:
        lock.release()
        raise not_writable(out, err) from None
    except BaseException:
        lock.release()
        raise
    return lock


def not_writable(out: Path, err: OSError) -> UserError:
    return UserError(f"cannot write into the study directory {out} ({err.strerror or err}); its finished runs "
                     f"are untouched: make it writable (or copy it and give the copy as --out) and run again; "
                     f"`lmlab table {out}` prints what it holds")


def _write_plan(study: Study, out: Path, runs: list[RunPlan], force: bool) -> None:
    marker = out / MARKER
    if marker.is_file():
        if force:
            remove_owned(out, MARKER, STUDY_LAYOUT, what="study directory")
        else:
            held = read_study_marker(out)
            if held.get("plan") != plan_identity(study, runs):
                raise UserError(f"{out} holds a different study ({held.get('name')}); "
                                f"use another --out, or --force to delete it and start over")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "status").mkdir(exist_ok=True)
    write_marker(out, MARKER, "study", STUDY_LAYOUT, name=study.name, plan=plan_identity(study, runs))
    atomic_write_text(out / "study.toml", plan_toml(study, runs))


def read_study_marker(out: Path) -> dict:
    """The study marker's record; a damaged one is named (rewrite it with --force, which starts over)."""
    held = read_marker(out, MARKER)
    if not held:
        raise UserError(f"{out / MARKER} is damaged (not the JSON record lmlab writes); use --force to delete the "
                        f"study directory and start over, or another --out")
    return held


def plan_identity(study: Study, runs: list[RunPlan]) -> dict:
    return {r.name: r.cfg.to_dict() for r in runs}


def plan_toml(study: Study, runs: list[RunPlan]) -> str:
    import tomli_w

    from lmlab.study.expand import base_config

    values = {"study": study.to_dict(), "base_config": base_config(study).to_dict(),
              "plan": [{"run": r.name, "variant": r.variant.slug, "seed": r.seed,
                        "overrides": {k: v for k, v in r.variant.overrides.items()}} for r in runs]}
    return tomli_w.dumps(_tomlable(values))


def _tomlable(v):
    if isinstance(v, dict):
        return {str(k): _tomlable(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_tomlable(x) for x in v]
    return v


def run_study(study: Study, out: str | Path, workers: int | str = "auto", executor: str = "local",
              address: str = "", force: bool = False, stream=None) -> Outcome:
    stream = stream or sys.stderr
    out = Path(out)
    runs = plan(study)  # validates every variant before anything is written
    check_findings(study, list(dict.fromkeys(r.variant.slug for r in runs)))
    check_data(runs)
    execution = Execution(workers, executor, address, stream)
    check = get_executor(executor).check
    if check is not None:
        check(address)
    lock = prepare_dir(study, out, runs, force)
    try:
        execute(runs, out, execution)
        outcome = tabulate(study, out, runs)
        draw_deferred(out, runs)  # after the study's plots: matplotlib is imported by then
        if study.select:
            from lmlab.study.select import select_retrain_test

            outcome.text += select_retrain_test(study, out, outcome, execution)
        outcome.text += find(study, out, runs, outcome.rows, outcome.epochs, stream)
    finally:
        lock.release()
    return outcome


def check_data(runs: list[RunPlan]) -> None:
    """Every run's data files exist and read as text the way training reads them, before the study
    writes its folder (each worker would fail). Runs with the same data settings are read once."""
    from lmlab.data.sources import check_readable

    by_data: dict[str, RunPlan] = {}
    for r in runs:
        by_data.setdefault(json.dumps(r.cfg.data.to_dict(), sort_keys=True, default=str), r)
    for r in by_data.values():
        try:
            check_readable(r.cfg.data)
        except UserError as err:
            raise UserError(f"variant {r.variant.slug}: {err}") from None


def tabulate(study: Study, out: Path, runs: list[RunPlan]) -> Outcome:
    """results.* (a row per run), aggregate.* (a row per variant), scaling.json, plots/."""
    rows = [run_row(out / "runs" / r.name, status_of(out, r.name), r.variant.axes, r.variant.slug, r.seed)
            for r in runs]
    write_study_table(out, "results", rows, parquet=True)
    baseline = study.baseline or runs[0].variant.slug
    agg = aggregate(rows, baseline, study.metric)
    write_study_table(out, "aggregate", agg, as_json={"baseline": baseline, "metric": study.metric, "variants": agg})
    text = f"{markdown(rows, [c for c in SUMMARY_COLUMNS if any(c in r for r in rows)])}\n"
    text += aggregate_text(agg, study.metric)
    per_epoch = [e for r in runs for e in epoch_rows(out / "runs" / r.name, r.variant.slug, r.seed)]
    if per_epoch:  # train.epochs budgets: the seeds' per-epoch table, per run and per variant
        write_study_table(out, "epochs", per_epoch)
        epoch_agg = epoch_aggregate(per_epoch)
        write_study_table(out, "epochs_aggregate", epoch_agg, as_json=epoch_agg)
        text += "\nper epoch (mean ± 95% half-width over seeds):\n" + epoch_text(epoch_agg)
    if study.scaling:
        from lmlab.study.scaling import fit_power_law

        text += scaling(out, rows, fit_power_law)
    from lmlab.figures import INSTALL_HINT, available, study as plots
    from lmlab.study.scaling import power_law

    if available():
        plots.study_plots(out, rows, agg, study.metric, power_law if study.scaling else None)
    else:
        text += f"(no plots: {INSTALL_HINT})\n"
    if not has("pyarrow"):
        text += "(no results.parquet: pyarrow is not installed; pip install 'lmlab[parquet]')\n"
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        text += f"\n{len(failed)} of {len(rows)} runs did not finish:\n"
        text += "".join(f"  {r['run']}: {r['status']} {r['error']}\n" for r in failed)
    return Outcome(out, rows, agg, failed, text, per_epoch)


def scaling(out: Path, rows: list[dict], fit) -> str:
    done = [r for r in rows if r["status"] == "done" and r.get("best_val_loss") is not None]
    fits = {"params_non_embedding": fit([r["params_non_embedding"] for r in done], [r["best_val_loss"] for r in done]),
            "flops": fit([r["flops"] for r in done], [r["best_val_loss"] for r in done])}
    atomic_write_text(out / "scaling.json", json.dumps(fits, indent=1))
    lines = []
    for k, f in fits.items():
        if "error" in f:
            lines.append(f"scaling vs {k}: {f['error']}")
        else:
            lines.append(f"scaling vs {k}: L = {f['a']:.4g} N^-{f['alpha']:.3f} + {f['c']:.3f} "
                         f"(alpha 95% CI [{f['alpha_ci'][0]:.3f}, {f['alpha_ci'][1]:.3f}], {f['points']} runs)")
    return "\n".join(lines) + "\n"
