"""Progress bars on stderr, for any long work: training, encoding, studies, evaluation, analysis.

    bar = Progress(total, desc="encoding", unit="char", position=0)
    bar.update(n, note="loss 2.31")   # advance by n; `note` is shown after the bar
    bar.set(done, note=...)           # or move to an absolute count
    bar.note("2 running")             # replace that text and redraw, between counts
    bar.message("a line")             # print without breaking the bar
    bar.close()

With `delay=1.0` nothing shows until a second has passed: work that is usually quick (planning a
study) stays silent, and says how far it is only when it is not.

On a terminal it is a tqdm bar (rate, ETA; `position` stacks nested bars, e.g. a study's
overall bar at 0 and each run's at 1). Elsewhere (CI logs, pipes, files) it prints one plain line
every 10% of the total (and at the end), in tqdm's format, so logs stay short and readable.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """A bar that counts `total` units; disabled, every call is a no-op (message still prints)."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", position: int | None = None,
                 initial: int = 0, enabled: bool = True, stream=None, leave: bool = True, unit_scale: bool = False,
                 delay: float = 0.0):
        self.stream, self.delay = stream or sys.stderr, delay
        self.total, self.done, self.desc, self.unit = max(int(total), 1), initial, desc, unit
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.initial, self.t0 = initial, time.perf_counter()
        self.postfix, self.unit_scale = "", unit_scale
        self._next_line = initial + self._tenth()
        self.bar = None
        if enabled and self.tty:
            self.bar = tqdm(total=self.total, initial=initial, desc=desc or None, unit=unit, position=position,
                            file=self.stream, leave=leave, dynamic_ncols=True, mininterval=0.1, unit_scale=unit_scale,
                            delay=delay)

    def _tenth(self) -> int:
        return max(self.total // 10, 1)

    def update(self, n: int = 1, note: str | None = None) -> None:
        self.set(self.done + n, note)

    def set(self, done: int, note: str | None = None) -> None:
        """Move to `done` units; `note` (when given) replaces the text shown after the bar."""
        if not self.enabled:
            return
        step, self.done = done - self.done, done
        if note is not None:
            self.postfix = note
        if self.bar is not None:
            if note is not None:
                self.bar.set_postfix_str(self.postfix, refresh=False)
            self.bar.update(step)
        elif (done >= self._next_line or done >= self.total) and time.perf_counter() - self.t0 >= self.delay:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._next_line = done + self._tenth()

    def note(self, text: str) -> None:
        """Replace the text after the bar and redraw it now (on a terminal; a log keeps its 10% lines)."""
        self.postfix = text
        if self.enabled and self.bar is not None:
            self.bar.set_postfix_str(text)

    def line(self) -> str:
        """The bar as one line of text, as tqdm draws it (for logs)."""
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.initial) / elapsed if elapsed > 0 and self.done > self.initial else None
        return tqdm.format_meter(self.done, self.total, elapsed, ncols=0, prefix=self.desc, unit=self.unit,
                                 rate=rate, postfix=self.postfix or None, unit_scale=self.unit_scale)

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def track(items, desc: str = "", unit: str = "it", enabled: bool = True, leave: bool = False, delay: float = 0.0):
    """Iterate over `items` with a Progress bar (a tqdm bar on a terminal, a line per 10% elsewhere)."""
    items = list(items)
    bar = Progress(len(items), desc=desc, unit=unit, enabled=enabled and bool(items), leave=leave, delay=delay)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
