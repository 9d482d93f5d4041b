"""The run directory, the only thing eval, generate, analysis and report read:

    runs/<name>/config.toml      the full RunConfig
                model.json       parameters, FLOPs per token, activation-memory estimate
                metrics.jsonl    one JSON object per line: {"kind": "train" | "eval", "step": ...}
                tokenizer/       the tokenizer, reloadable on its own
                checkpoints/     last/ and best/ (model.safetensors, state.safetensors, meta.json)
                samples/         generated text
                analysis/        analysis outputs
                report.md, loss.png
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from lmlab.errors import UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"))


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    tokenizer = property(lambda self: self.root / "tokenizer")
    checkpoints = property(lambda self: self.root / "checkpoints")
    samples = property(lambda self: self.root / "samples")
    analysis = property(lambda self: self.root / "analysis")
    report = property(lambda self: self.root / "report.md")

    def checkpoint(self, which: str = "last") -> Path:
        return self.checkpoints / which

    def has_checkpoint(self, which: str = "last") -> bool:
        from lmlab.checkpoint import find_checkpoint

        return find_checkpoint(self.checkpoint(which)) is not None

    @classmethod
    def create(cls, root: str | Path, overwrite: bool = False) -> "RunDir":
        """A fresh run directory; refuses to clobber an existing run unless `overwrite`."""
        run = cls(root)
        if run.root.exists() and any(run.root.iterdir()):
            if not overwrite:
                raise UserError(f"run directory {run.root} already holds files; use --resume {run.root} "
                                f"to continue it, --force to overwrite it, or another --run-dir")
            if not (run.config.exists() or run.checkpoints.exists() or run.metrics.exists()):
                raise UserError(f"{run.root} is not an lmlab run directory; refusing to overwrite it")
            shutil.rmtree(run.root)
        run.root.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, root: str | Path, need_checkpoint: bool = True) -> "RunDir":
        run = cls(root)
        if not run.root.is_dir():
            raise UserError(f"run directory {run.root} does not exist")
        if not run.config.is_file():
            raise UserError(f"{run.root} is not a run directory (no config.toml)")
        if need_checkpoint and not run.has_checkpoint("last"):
            raise UserError(f"run directory {run.root} has no checkpoint yet (checkpoints/last); "
                            f"train it first with `lmlab train --run-dir {run.root}`")
        return run

    def read_metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in iter_jsonl(self.metrics) if kind is None or r.get("kind") == kind]

    def truncate_metrics(self, step: int) -> None:
        """Keep records up to `step` (resuming replays the steps after the checkpoint)."""
        keep = [r for r in iter_jsonl(self.metrics) if r.get("step", 0) <= step]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in keep))


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: everything before it stands
                    return


class MetricsLog:
    """Appends one JSON object per line; flushed on `flush()` and on close."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
