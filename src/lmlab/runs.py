"""The run directory, the only thing eval, generate, analysis and report read:

    runs/<name>/config.toml      the full RunConfig
                model.json       parameters, FLOPs per token, activation-memory estimate
                manifest.json    versions, device, threads, data hash, config: why two runs differ
                metrics.jsonl    one JSON object per line: {"kind": "train" | "eval", "step": ...}; also
                                 "init" (step 0: the initialization's loss), "epoch", "skip"
                tokenizer/       the tokenizer, reloadable on its own
                checkpoints/     last/ and best/ (model.safetensors, state.safetensors, meta.json), step-XXXXXX/
                                 (train.keep_checkpoints)
                samples/         generated text
                analysis/        analysis outputs
                report.md, loss.png
                .lmlab-run       the marker: lmlab made this folder; the names it owns (RUN_LAYOUT);
                                 whether it ever saved a checkpoint
                .lmlab-lock      flocked by the process training into it (with a twin outside the folder)

lmlab deletes in a run directory only the names its marker lists, and only when asked (--force),
or when the run never saved a checkpoint (a failed start is not a dead end); anything else in the
folder (a user's notes) makes it refuse, naming those files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.errors import UserError
from lmlab.io import (  # noqa: F401  (atomic_write_*, iter_jsonl, MetricsLog: re-exported for old imports)
    LOCK_NAME,
    DirLock,
    MetricsLog,
    atomic_write_bytes,
    atomic_write_text,
    foreign_entries,
    is_owned,
    iter_jsonl,
    listed,
    read_marker,
    remove_owned,
    topmost_missing,
    update_marker,
    write_marker,
)

MARKER = ".lmlab-run"
# Every top-level name lmlab writes into a run directory (train, eval, analyze, sample, report,
# the loggers). Written into the marker, so a later lmlab knows what an older one owned.
RUN_LAYOUT = ("config.toml", "model.json", "manifest.json", "metrics.jsonl", "tokenizer", "checkpoints", "data",
              "samples", "analysis", "eval", "report.md", "report.html", "loss.png", "figures",
              "tensorboard", "wandb")
STEP_DIR = re.compile(r"^step-(\d+)$")  # checkpoints/step-XXXXXX, kept by train.keep_checkpoints


def step_checkpoint(step: int) -> str:
    """The checkpoint folder's name for a kept step."""
    return f"step-{step:06d}"


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock: DirLock | None = None
        self._made: Path | None = None  # the topmost folder create() made (so discard() may remove it)
        self._noted = False  # note_checkpoint() has marked the run as checkpointed

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    tokenizer = property(lambda self: self.root / "tokenizer")
    checkpoints = property(lambda self: self.root / "checkpoints")
    samples = property(lambda self: self.root / "samples")
    analysis = property(lambda self: self.root / "analysis")
    report = property(lambda self: self.root / "report.md")
    manifest = property(lambda self: self.root / "manifest.json")

    def checkpoint(self, which: str = "last") -> Path:
        return self.checkpoints / which

    def has_checkpoint(self, which: str = "last") -> bool:
        from lmlab.checkpoint import find_checkpoint

        return find_checkpoint(self.checkpoint(which)) is not None

    def kept_steps(self) -> list[int]:
        """Steps of the kept checkpoints under checkpoints/step-XXXXXX, ascending."""
        found = [int(m.group(1)) for p in self.checkpoints.glob("step-*") if (m := STEP_DIR.match(p.name))]
        return sorted(step for step in found if self.has_checkpoint(step_checkpoint(step)))

    def checkpoint_name(self, which: str) -> str:
        """best | last | a kept step number -> the checkpoint folder's name; a clear error otherwise."""
        which = str(which)
        if which in ("best", "last"):
            return which
        if which.isdigit():
            steps = self.kept_steps()
            if int(which) in steps:
                return step_checkpoint(int(which))
            listed = ", ".join(map(str, steps)) if steps else "none (train with --train.keep_checkpoints=log)"
            raise UserError(f"--checkpoint {which}: {self.root} keeps no checkpoint at that step; kept steps: {listed}")
        raise UserError(f"--checkpoint {which!r} is not valid; expected best, last or a kept step number")

    def owned(self) -> bool:
        """lmlab made this folder (its marker)."""
        return is_owned(self.root, MARKER)

    def ever_checkpointed(self) -> bool:
        """The run saved a checkpoint at some time (its marker says so, or one is here now): a
        folder whose checkpoints/ were deleted afterwards still holds a run, not a failed start."""
        record = read_marker(self.root, MARKER) or {}
        if self.has_checkpoint("last") or self.has_checkpoint("best") or record.get("checkpointed"):
            return True
        # markers written before the flag existed: an evaluation logged means a checkpoint followed it
        return "checkpointed" not in record and any(r.get("kind") == "eval"
                                                    for r in iter_jsonl(self.metrics, quiet=True))

    def note_checkpoint(self) -> None:
        """Record in the marker that this run has saved a checkpoint (once)."""
        if not self._noted:
            update_marker(self.root, MARKER, checkpointed=True)
            self._noted = True

    def lock(self) -> "RunDir":
        """Hold this run's lock until `unlock()` or the process ends; refuse if another holds it."""
        if self._lock is None or not self._lock.held:
            self._lock = DirLock(self.root).acquire()
        return self

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    @classmethod
    def create(cls, root: str | Path, overwrite: bool = False) -> "RunDir":
        """A fresh, locked run directory. An existing folder is emptied only when lmlab made it
        (marker), holds nothing lmlab did not write, and either `overwrite` is set or it never saved
        a checkpoint (a run that failed or was stopped before its first save is not a dead end)."""
        run = cls(root)
        if run.root.exists() and not run.root.is_dir():
            raise UserError(f"run directory {run.root} is a file; choose a folder path for --run-dir")
        held = [p for p in run.root.iterdir() if p.name != LOCK_NAME] if run.root.is_dir() else []
        if held:
            run._check_reusable(overwrite)
            run.lock()
            remove_owned(run.root, MARKER, RUN_LAYOUT, what="run directory")
        made = topmost_missing(run.root)  # the topmost folder this call creates (discard() removes it again)
        try:
            run.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create run directory {run.root}: {err.strerror}") from None
        run._made = made
        try:
            write_marker(run.root, MARKER, "run", RUN_LAYOUT, checkpointed=False)
        except OSError as err:
            raise UserError(f"cannot write into run directory {run.root}: {err.strerror}") from None
        return run.lock()

    def _check_reusable(self, overwrite: bool) -> None:
        """Refuse, in one line naming what to do, to empty a folder that is not lmlab's alone to empty."""
        if not self.owned():
            raise UserError(f"{self.root} already holds files and was not made by lmlab (no {MARKER} marker); "
                            f"lmlab will not delete them, even with --force: choose an empty or new --run-dir")
        foreign = foreign_entries(self.root, MARKER, RUN_LAYOUT)
        if foreign:
            raise UserError(f"run directory {self.root} holds files lmlab did not write ({listed(foreign)}); "
                            f"lmlab deletes only its own, even with --force: move them out, or choose another "
                            f"--run-dir")
        if overwrite or not self.ever_checkpointed():
            return
        if self.has_checkpoint("last"):
            raise UserError(f"run directory {self.root} already holds files; use --resume {self.root} "
                            f"to continue it, --force to overwrite it, or another --run-dir")
        raise UserError(f"run directory {self.root} holds a run whose checkpoints are gone (its metrics, "
                        f"analysis and pages remain); use --force to train it again from scratch, or another "
                        f"--run-dir")

    def discard(self) -> None:
        """Undo `create` after a failure before anything worth keeping was written."""
        try:
            remove_owned(self.root, MARKER, RUN_LAYOUT)
            self.unlock()
            (self.root / LOCK_NAME).unlink(missing_ok=True)
            if self._made is not None:
                self.root.rmdir()
                for parent in self.root.parents:  # parents create() made for it, if still empty
                    if not str(parent).startswith(str(self._made)):
                        break
                    parent.rmdir()
        except (OSError, UserError):
            pass

    @classmethod
    def open(cls, root: str | Path, need_checkpoint: bool = True) -> "RunDir":
        run = cls(root)
        if run.root.exists() and not run.root.is_dir():
            raise UserError(f"run directory {run.root} is a file, not a directory")
        if not run.root.is_dir():
            raise UserError(f"run directory {run.root} does not exist")
        if not run.config.is_file():
            raise UserError(f"{run.root} is not a run directory (no config.toml)")
        if need_checkpoint:
            from lmlab.checkpoint import require_last

            require_last(run)
        return run

    def read_metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in iter_jsonl(self.metrics) if kind is None or r.get("kind") == kind]

    def truncate_metrics(self, step: int) -> None:
        """Keep records up to `step` (resuming replays the steps after the checkpoint). A damaged
        line is dropped with a warning; every good line before and after it is kept."""
        keep = [r for r in iter_jsonl(self.metrics) if r.get("step", 0) <= step]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in keep))


@dataclass
class TrainState:
    """What a checkpoint must restore besides tensors. `step` = optimizer steps completed,
    which is also the position in the (pure-function) batch stream."""

    step: int = 0
    tokens: int = 0
    best_val: float = math.inf
    best_step: int = -1
    bad_evals: int = 0
    train_time: float = 0.0  # seconds spent in training steps, summed across resumes
    elapsed: float = 0.0  # wall seconds including evaluation, summed across resumes
    stopped_early: bool = False
    skipped: int = 0  # steps skipped for a non-finite loss or gradient (train.skip_nonfinite)
    stopped_by_time: bool = False  # train.max_time ran out (the run evaluated and saved first)
    epoch_loss_sum: float = 0.0  # train losses summed over the current epoch's steps (train.epochs)
    epoch_loss_steps: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_same_model(run: RunDir, cfg, meta: dict) -> None:
    """config.toml edited after the checkpoint was saved: the model section must still match."""
    saved = (meta.get("config") or {}).get("model")
    if not isinstance(saved, dict):
        return  # a checkpoint without its config (older or imported): the shapes are checked on load
    now = cfg.to_dict()["model"]
    changed = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if changed:
        k = changed[0]
        raise UserError(f"{run.config} was edited after the checkpoint was saved: model.{k} is {now.get(k)!r} but "
                        f"the checkpoint was trained with {saved.get(k)!r}; restore it, or train a new run")
