"""Evaluation: held-out loss, perplexity, accuracy, bits per byte (and per char); zero-shot tasks in
`lmlab.eval.tasks`; the lm-evaluation-harness adapter in `lmlab.eval.harness`.
Names load on first use (lmlab.lazy), so the CLI builds its parser without importing torch."""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {"evaluate": "metrics", "summarize": "metrics"})
