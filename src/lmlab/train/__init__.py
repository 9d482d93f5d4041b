"""Training: optimizer, schedules, precision, the loop, and exact resume."""

from lmlab.train.loop import TrainResult, resume, train

__all__ = ["TrainResult", "resume", "train"]
