"""Training: optimizer, schedules, precision, the loop, and exact resume. Names load on first use."""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {
    "TrainResult": "loop", "resume": "loop", "train": "loop"
})
