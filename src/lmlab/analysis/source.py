"""What every analysis starts from: a run's model at a chosen checkpoint, and a fixed, seeded
sample of its validation windows (with which positions are real tokens, not padding).

Checkpoints are named `best`, `last`, or a step number kept by `train.keep_checkpoints = "log"`
(stored as checkpoints/step-XXXXXX). Windows are drawn once from the validation split with their
own seed, so two analyses (or two checkpoints) of one run see the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lmlab.errors import UserError
from lmlab.runs import RunDir
from lmlab.alloc import available_bytes
from lmlab.data.layout import Rows
from lmlab.data.prepare import prepare
from lmlab.load import load_run


def kept_steps(run_dir: str | Path) -> list[int]:
    """Steps of a run's kept checkpoints (checkpoints/step-XXXXXX), ascending."""
    return RunDir(run_dir).kept_steps()


def open_run(run_dir: str | Path, which: str = "last", device: str = "auto"):
    """A `LoadedRun` at checkpoint `which` (best | last | STEP), verified as every load is
    (`lmlab.load.load_run`: tokenizer hash, config.toml unchanged since the checkpoint)."""
    return load_run(run_dir, which, device)


@dataclass
class Windows:
    """N windows of T tokens: x (N, T) inputs, y (N, T) targets, n_real (N,) real tokens per row
    (x positions >= n_real are padding; targets at >= n_real - 1 are not scored)."""

    x: torch.Tensor
    y: torch.Tensor
    n_real: torch.Tensor

    def __len__(self) -> int:
        return self.x.size(0)

    def real(self) -> torch.Tensor:
        """(N, T) True where the input token is real (queries and keys that count)."""
        return torch.arange(self.x.size(1))[None, :] < self.n_real[:, None]

    def scored(self) -> torch.Tensor:
        """(N, T) True where the target is a real token (the loss counts it)."""
        return torch.arange(self.x.size(1))[None, :] < self.n_real[:, None] - 1

    def batches(self, batch_size: int):
        for i in range(0, len(self), batch_size):
            yield Windows(self.x[i:i + batch_size], self.y[i:i + batch_size], self.n_real[i:i + batch_size])


def sample_windows(parts: dict, n: int, context_len: int, seed: int = 0) -> Windows:
    """n windows drawn (seeded) from {source: part}, each source in proportion to its real tokens."""
    if not parts:
        raise UserError("the run has no validation split to draw windows from; set data.val_fraction > 0")
    gen = torch.Generator().manual_seed(seed)
    sizes = np.array([p.real_tokens for p in parts.values()], dtype=np.float64)
    counts = np.floor(n * sizes / sizes.sum()).astype(int)
    counts[np.argmax(sizes)] += n - counts.sum()
    xs, ys, reals = [], [], []
    for part, k in zip(parts.values(), counts):
        if k == 0:
            continue
        if isinstance(part, Rows):
            rows = torch.randint(0, len(part.rows), (int(k),), generator=gen).numpy()
            window = torch.from_numpy(part.rows[rows].astype(np.int64))  # (k, T+1)
            real = torch.from_numpy(part.n_real[rows].astype(np.int64))
        else:
            T = min(context_len, len(part.tokens) - 1)
            if T < 2:
                continue
            x, y, _ = part.sample(gen, int(k), T)
            window, real = torch.cat([x, y[:, -1:]], dim=1), torch.full((int(k),), T + 1)
        xs.append(window[:, :-1]), ys.append(window[:, 1:]), reals.append(real.clamp(max=window.size(1)))
    if not xs:
        raise UserError("the validation split is too short for attention windows (fewer than 3 tokens)")
    T = min(x.size(1) for x in xs)  # sources of one run share context_len; streams may be shorter
    return Windows(torch.cat([x[:, :T] for x in xs]), torch.cat([y[:, :T] for y in ys]),
                   torch.cat(reals).clamp(max=T + 1))


WINDOW_BYTES = 48  # per token of a window: x and y as int64, its real-token mask, sampling's int64 copies


def check_windows_fit(n: int, context_len: int) -> None:
    """Refuse before drawing n windows that cannot fit in the memory available (they are held at once)."""
    free, per_window = available_bytes(), WINDOW_BYTES * (context_len + 1)
    if free is not None and n * per_window > free:
        raise UserError(f"--windows {n:,} needs about {n * per_window / 2**30:,.1f} GiB for windows of "
                        f"{context_len} tokens but {free / 2**30:.1f} GiB are available; use at most "
                        f"{free // per_window:,}")


def validation_windows(loaded, n: int, seed: int = 0) -> Windows:
    """The run's own validation split (prepared as in training), n seeded windows of context_len."""
    check_windows_fit(n, loaded.cfg.model.context_len)
    parts = prepare(loaded.cfg, loaded.tokenizer, progress=False).splits["val"]
    return sample_windows(parts, n, loaded.cfg.model.context_len, seed)
