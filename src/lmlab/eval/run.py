"""Evaluate a saved run on its held-out split, from the run directory alone."""

from __future__ import annotations

from pathlib import Path

from lmlab.data import encode_splits, load_corpus
from lmlab.eval.metrics import evaluate
from lmlab.load import load_run


def eval_run(run_dir: str | Path, checkpoint: str = "last", max_tokens: int = 0,
             device: str = "auto") -> dict:
    """Metrics of the run's `checkpoint` on its whole validation split (or the first max_tokens)."""
    loaded = load_run(run_dir, checkpoint, device)
    cfg = loaded.cfg
    splits = encode_splits(load_corpus(cfg.data), loaded.tokenizer)
    metrics = evaluate(loaded.model, splits.val, loaded.tokenizer, cfg.model.context_len,
                       cfg.eval.batch_size or cfg.train.batch_size, max_tokens, loaded.device,
                       loaded.precision().autocast)
    return {"run_dir": str(loaded.run.root), "checkpoint": checkpoint, "step": loaded.meta["step"],
            "split": "val", **metrics}
