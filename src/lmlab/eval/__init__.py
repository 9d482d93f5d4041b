"""Evaluation: held-out loss, perplexity, accuracy, bits per byte (and per char); zero-shot tasks in
`lmlab.eval.tasks`; the lm-evaluation-harness adapter in `lmlab.eval.harness`.

Names are imported on first use, so that the CLI can build its parser without importing torch."""


def __getattr__(name):
    if name in ("evaluate", "summarize"):
        from lmlab.eval import metrics

        return getattr(metrics, name)
    raise AttributeError(name)


__all__ = ["evaluate", "summarize"]
