"""A small progress bar on stderr: step, loss, tokens/s and ETA.

On a terminal it redraws one line; elsewhere (CI logs, pipes) it prints a line every 10%."""

from __future__ import annotations

import sys
import time


def fmt_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream=None):
        self.total, self.start = total, start
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()
        self._last_draw = 0.0
        self._next_line = start + max(total // 10, 1)

    def update(self, step: int, loss: float, tokens_per_s: float, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        done = step - self.start
        eta = (now - self.t0) / done * (self.total - step) if done else 0.0
        width = 24
        filled = int(width * step / self.total)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} loss {loss:.4f} "
                f"{tokens_per_s:,.0f} tok/s ETA {fmt_duration(eta)}{extra}")
        if self.tty and (now - self._last_draw > 0.1 or step == self.total):
            self.stream.write("\r" + line.ljust(100)[:120])
            self.stream.flush()
            self._last_draw = now
        elif not self.tty and (step >= self._next_line or step == self.total):
            self.stream.write(line + "\n")
            self._next_line = step + max(self.total // 10, 1)

    def update_task(self, done: int, text: str) -> None:
        """A bar for work that is not training steps: `done` of `total`, a free text and ETA."""
        if not self.enabled:
            return
        now = time.perf_counter()
        eta = (now - self.t0) / done * (self.total - done) if done else 0.0
        filled = int(24 * done / self.total)
        line = f"[{'#' * filled}{'.' * (24 - filled)}] {text} ETA {fmt_duration(eta)}"
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:120])
            self.stream.flush()
        elif done >= self._next_line or done >= self.total:
            self.stream.write(line + "\n")
            self._next_line = done + max(self.total // 10, 1)

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.tty and self.enabled:
            self.stream.write("\r" + " " * 120 + "\r")
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.enabled:
            self.stream.write("\n")
            self.stream.flush()
