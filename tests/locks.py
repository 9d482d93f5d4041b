"""Another process holding a folder's lock (as a trainer or a study does) until it is killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def hold_lock(path: Path, seconds: int = 60) -> subprocess.Popen:
    code = (f"import sys, time; sys.path.insert(0, {str(SRC)!r}); from lmlab.io import DirLock; "
            f"DirLock({str(path)!r}).acquire(); print('locked', flush=True); time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
