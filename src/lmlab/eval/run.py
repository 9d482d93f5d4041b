"""Evaluate a saved run on its held-out split, from the run directory alone."""

from __future__ import annotations

from pathlib import Path

from lmlab.data.prepare import prepare
from lmlab.errors import UserError
from lmlab.eval.metrics import evaluate
from lmlab.load import load_run
from lmlab.tables import finite_or_none


def eval_run(run_dir: str | Path, checkpoint: str = "last", max_tokens: int = 0,
             device: str = "auto", split: str = "val") -> dict:
    """Metrics of the run's `checkpoint` on its whole `split` (val or test; max_tokens spread over it).
    A non-finite value is reported as None, so the JSON printed from it is always valid."""
    if split not in ("val", "test"):
        raise UserError(f"split={split!r} is not valid; expected val or test")
    if max_tokens < 0:
        raise UserError(f"max_tokens={max_tokens} is invalid; expected 0 (the whole split) or a positive integer")
    loaded = load_run(run_dir, checkpoint, device)
    cfg = loaded.cfg
    parts = prepare(cfg, loaded.tokenizer, progress=False).splits[split]
    if not parts:
        raise UserError(f"{loaded.run.root} has no {split} split; set data.test_fraction, or a source with "
                        f"split = \"{split}\", when training")
    metrics = evaluate(loaded.model, parts, loaded.tokenizer, cfg.model.context_len,
                       cfg.eval.batch_size or cfg.train.batch_size, max_tokens, loaded.device,
                       loaded.precision().autocast)
    return finite_or_none({"run_dir": str(loaded.run.root), "checkpoint": checkpoint, "step": loaded.meta["step"],
                           "split": split, **metrics})


def format_metrics(metrics: dict) -> str:
    """eval_run's result as aligned lines, per-source losses last (None: not a finite number)."""
    metrics = dict(metrics)
    by_source = metrics.pop("by_source", {})
    lines = [f"{key:>14}: {value:.4f}" if isinstance(value, float) else f"{key:>14}: {value}"
             for key, value in metrics.items()]
    lines += [f"{name:>14}: loss {_num(values['loss'])}, bits/byte {_num(values['bits_per_byte'])}, "
              f"{values['tokens']:,} tokens" for name, values in by_source.items()]
    return "\n".join(lines)


def _num(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
