"""Analyses across training: attention statistics and head-role scores at every kept checkpoint
(train.keep_checkpoints = "log": steps 0, 1, 2, 4, ... then every N), so the moment a head
specialises, e.g. an induction head forming, shows as a curve against step."""

from __future__ import annotations

from lmlab.analysis.ablation import windows_loss
from lmlab.analysis.attention import attention_stats
from lmlab.analysis.heads import ROLES, head_roles
from lmlab.analysis.source import kept_steps, open_run
from lmlab.errors import UserError


def check_kept(run_dir) -> list[int]:
    """The run's kept steps; a clear error when it keeps none."""
    steps = kept_steps(run_dir)
    if not steps:
        raise UserError(f"{run_dir} keeps no step checkpoints; train it with --train.keep_checkpoints=log")
    return steps


def across_checkpoints(run_dir, windows, token_ids, threshold: float = 1e-3, device: str = "auto",
                       progress: bool = True) -> dict:
    """{"steps": [...], "records": [{step, loss on the windows, model means, layer means, best head per role}]}."""
    steps = check_kept(run_dir)
    records = []
    items = steps
    if progress:
        from lmlab.progress import track

        items = track(steps, desc="checkpoints", unit="ckpt")
    for step in items:
        loaded = open_run(run_dir, str(step), device)
        stats = attention_stats(loaded.model, windows, threshold)
        roles = head_roles(loaded.model, token_ids=token_ids)
        records.append({"step": step, "loss": windows_loss(loaded.model, windows),
                        "model": stats["model"], "layers": stats["layers"],
                        "max_role": {r: max(max(row) for row in roles["scores"][r]) for r in ROLES},
                        "top_role": {r: roles["top"][r][0] for r in ROLES},
                        "roles": roles["scores"]})
    return {"steps": steps, "threshold": threshold, "records": records}


def trajectory_rows(result: dict) -> list[dict]:
    rows = []
    for r in result["records"]:
        rows.append({"step": r["step"], "loss": r["loss"], **{f"model_{k}": v for k, v in r["model"].items()},
                     **{f"max_{k}": v for k, v in r["max_role"].items()}})
    return rows


def format_trajectory(result: dict) -> str:
    lines = [f"{'step':>7} {'loss':>7} {'entropy':>8} {'sparsity':>9} " + " ".join(f"{r[:10]:>10}" for r in ROLES) +
             "   (role columns: the best head's score)"]
    for r in result["records"]:
        lines.append(f"{r['step']:>7} {r['loss']:>7.3f} {r['model']['entropy']:>8.3f} {r['model']['sparsity']:>9.3f} " +
                     " ".join(f"{r['max_role'][k]:>10.3f}" for k in ROLES))
    return "\n".join(lines)
