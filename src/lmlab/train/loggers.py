"""Experiment trackers behind one interface: `train.loggers = ["jsonl", "tensorboard", "wandb"]`.

The training loop writes each record (a flat dict with `kind` and `step`) to one `FanOut`, which
hands it to every configured logger. `jsonl` (metrics.jsonl, which eval, report and resume read)
is always on; TensorBoard and Weights & Biases are optional packages imported only when named,
so the core trains with neither installed. W&B never reaches the network unless the user set
WANDB_API_KEY: without a key it runs in offline mode (a run folder under RUN/wandb that
`wandb sync` can upload later).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from lmlab.errors import need
from lmlab.registry import Registry
from lmlab.io import MetricsLog

LOGGERS: Registry = Registry("train.loggers")


class Logger(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """`{"kind": "eval", "val_loss": 2.1, "val_by_source": {"a": {"loss": 2.0}}}` ->
    `{"eval/val_loss": 2.1, "eval/val_by_source/a/loss": 2.0}`: trackers take flat numeric tags."""
    prefix = prefix or f"{record.get('kind', 'metrics')}/"
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in ("kind", "step"):
            continue
        if isinstance(value, dict):
            out.update(scalars({"kind": "", **value}, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = float(value)
    return out


def _need(module: str, what: str):
    return need(module, f"train.loggers = [..., {what!r}]")


PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}  # logger -> the package it writes through


def check_packages(cfg) -> None:
    """Each configured tracker's package imports, before the run directory is made (else a missing one
    would stop the run after its folder was written)."""
    for name in cfg.train.loggers:
        if name in PACKAGES:
            _need(PACKAGES[name], name)


@LOGGERS.register("jsonl", "metrics.jsonl in the run directory (always on)")
def jsonl_logger(cfg, run) -> Logger:
    return MetricsLog(run.metrics)


class TensorBoardLogger:
    """Scalars to RUN/tensorboard through torch's SummaryWriter (`tensorboard --logdir RUN`)."""

    def __init__(self, cfg, run):
        _need("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run.root / "tensorboard"))
        self.writer.add_text("config", "```\n" + cfg.to_toml() + "\n```", 0)

    def write(self, record: dict[str, Any]) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record.get("step", 0))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """A W&B run in RUN/wandb; offline (WANDB_MODE=offline) when no WANDB_API_KEY is set."""

    def __init__(self, cfg, run):
        if not os.environ.get("WANDB_API_KEY"):
            os.environ["WANDB_MODE"] = "offline"
        wandb = _need("wandb", "wandb")
        os.environ.setdefault("WANDB_SILENT", "true")
        (run.root / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lmlab"), name=run.root.name,
                              dir=str(run.root), config=cfg.to_dict())

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(scalars(record), step=record.get("step", 0))

    def flush(self) -> None:
        pass  # the W&B service writes continuously

    def close(self) -> None:
        self.run.finish()


LOGGERS.register("tensorboard", "TensorBoard event files in RUN/tensorboard (pip install 'lmlab[track]')")(
    TensorBoardLogger)
LOGGERS.register("wandb", "Weights & Biases, offline in RUN/wandb without WANDB_API_KEY")(WandbLogger)


class FanOut:
    """Every record to every logger; the loop sees one object with write/flush/close."""

    def __init__(self, loggers: list[Logger]):
        self.loggers = loggers

    def write(self, record: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.write(record)

    def flush(self) -> None:
        for logger in self.loggers:
            logger.flush()

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_loggers(cfg, run) -> FanOut:
    """The configured loggers for a run, jsonl first (and always)."""
    names = ["jsonl"] + [n for n in dict.fromkeys(cfg.train.loggers) if n != "jsonl"]
    opened: list[Logger] = []
    try:
        for name in names:
            opened.append(LOGGERS.get(name)(cfg, run))
    except BaseException:
        FanOut(opened).close()
        raise
    return FanOut(opened)
