"""Evaluation: held-out loss, perplexity, accuracy, bits per byte (and per char)."""

from lmlab.eval.metrics import evaluate, summarize

__all__ = ["evaluate", "summarize"]
