"""The training bar: steps done of max_steps, with loss, tokens/s (and the last val loss) after it;
rate and ETA come from `lmlab.progress.Progress` (tqdm on a terminal, a line per 10% elsewhere)."""

from __future__ import annotations

from lmlab.progress import Progress as BaseProgress


class Progress(BaseProgress):
    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream=None):
        super().__init__(total, desc="train", unit="step", initial=start, enabled=enabled, stream=stream)

    def update(self, step: int, loss: float, tokens_per_s: float, extra: str = "") -> None:
        """Training reached `step` with this loss and speed; `extra` is appended (e.g. ' val 1.234')."""
        extra = f", {extra.strip()}" if extra.strip() else ""
        self.set(step, f"loss {loss:.4f}, {tokens_per_s:,.0f} tok/s{extra}")
