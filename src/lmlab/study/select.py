"""Grid search -> retrain -> test. `select` picks the variant with the best mean over seeds of the
study's metric; `retrain` (budget changes such as {"train.epochs" = 20}) trains it again from
scratch on the first seed; the test split is evaluated once (eval.max_tokens of it, spread over
the split), on the retrained model's best checkpoint only, and reported apart from the search (selected.json, retrain/)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from lmlab.io import atomic_write_text
from lmlab.study.expand import RunPlan, variant_config, variants
from lmlab.study.spec import Study


def best_variant(agg: list[dict], metric: str) -> dict | None:
    scored = [a for a in agg if a["n"] and math.isfinite(a.get(f"{metric}_mean", math.nan))]
    if not scored:
        return None
    sign = -1 if "accuracy" in metric else 1
    return min(scored, key=lambda a: sign * a[f"{metric}_mean"])


def select_retrain_test(study: Study, out: Path, outcome, execution) -> str:
    from lmlab.eval.run import eval_run
    from lmlab.study.execution import execute, status_of

    best = best_variant(outcome.aggregate, study.select)
    if best is None:
        return "select: no variant finished; nothing to retrain\n"
    variant = next(v for v in variants(study) if v.slug == best["variant"])
    seed = study.seeds[0]
    cfg = variant_config(study, variant, seed, budget={**study.budget, **study.retrain})
    root = out / "retrain"
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "status").mkdir(exist_ok=True)
    plan = RunPlan(variant, seed, cfg.replace(name=f"{study.name}/retrain/{variant.slug}-s{seed}"))
    print(f"lmlab: selected {variant.slug} ({study.select} {best[f'{study.select}_mean']:.4f}); "
          f"retraining from scratch with {study.retrain or 'the same budget'}", file=execution.stream, flush=True)
    execute([plan], root, replace(execution, workers=1))
    run_dir = root / "runs" / plan.name
    status = status_of(root, plan.name)
    record = {"variant": variant.slug, "selected_by": study.select, "search_mean": best[f"{study.select}_mean"],
              "search_ci": [best["ci_low"], best["ci_high"]], "retrain": study.retrain, "seed": seed,
              "run_dir": str(run_dir.relative_to(out)), "status": status.get("status", "failed")}
    if status.get("status") == "done":
        test_file = root / "test.json"
        if test_file.is_file():  # evaluated once: a re-run reads it back, never re-evaluates
            record["test"] = json.loads(test_file.read_text())
        else:
            try:
                record["test"] = eval_run(run_dir, "best", max_tokens=cfg.eval.max_tokens, split="test")
            except Exception as err:  # noqa: BLE001 — no test split is a note, not a crash
                record["test"] = {"error": executors_error(err)}
            atomic_write_text(test_file, json.dumps(record["test"], indent=1))
        from lmlab.runs import RunDir

        evals = RunDir(run_dir).read_metrics("eval")
        record["retrain_best_val_loss"] = min(e["val_loss"] for e in evals) if evals else None
    else:
        record["error"] = status.get("error", "")
    atomic_write_text(out / "selected.json", json.dumps(record, indent=1, default=str))
    return selection_text(record)


def selection_text(record: dict) -> str:
    """selected.json as one line: the variant, its search mean, the retrain's best val and the test."""
    t = record.get("test") or {}
    test = (f"test loss {t['loss']:.4f}, accuracy {t['accuracy']:.4f}" if "loss" in t
            else f"test: {t.get('error', record.get('error', 'not evaluated'))}")
    return (f"\nselected {record['variant']} by mean {record['selected_by']} {record['search_mean']:.4f}; retrained "
            f"({record.get('retrain')}): best val {record.get('retrain_best_val_loss') or float('nan'):.4f}; "
            f"{test}\n")


def executors_error(err: BaseException) -> str:
    from lmlab.study.worker import one_line

    return one_line(err)
