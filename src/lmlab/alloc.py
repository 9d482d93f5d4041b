"""Keep large CPU temporaries in the heap instead of mapping them from the kernel every step.

glibc's malloc serves every block above `M_MMAP_THRESHOLD` (128 KiB, adapting up to 32 MiB)
with a fresh `mmap`, and gives freed memory at the top of the heap back to the kernel once it
exceeds `M_TRIM_THRESHOLD`. A training step allocates and frees the same large activations
and gradients every time, so the kernel maps, zeroes and unmaps them again and again: on a
2-core machine `minigpt_small` spent as much time in the kernel as in user code. Raising both
thresholds (and `M_TOP_PAD`, so the heap grows in large steps) makes the second step reuse the
first step's memory. PyTorch's CPU performance guide recommends jemalloc or tcmalloc for the
same reason; this gets most of it without a preloaded library. When jemalloc or tcmalloc is
already preloaded (`LD_PRELOAD`), or on a C library other than glibc, nothing is changed.

Set `LMLAB_MALLOC=default` in the environment to leave malloc as it is (for measuring).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = (1 << 31) - 1  # blocks up to 2 GiB (mallopt takes an int) come from the heap and are reused
TRIM_THRESHOLD = (1 << 31) - 1  # keep up to 2 GiB of free heap top instead of returning it every step
TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time
LEGACY_MMAP_MAX = 32 << 20  # glibc < 2.35 refuses thresholds above HEAP_MAX_SIZE / 2

_state: dict | None = None


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check). Every memory check reads it
    (training's prediction, analysis's windows)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def tune_malloc() -> dict:
    """Apply the settings once per process; returns what was done (for the run's manifest and tests):
    {"allocator": "glibc" | "jemalloc" | "tcmalloc" | "other", "tuned": bool, ...}."""
    global _state
    if _state is None:
        _state = _tune()
    return dict(_state)


def _tune() -> dict:
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc"):
        if name in preload:
            return {"allocator": name, "tuned": False, "reason": "preloaded"}
    if not sys.platform.startswith("linux"):
        return {"allocator": "other", "tuned": False, "reason": sys.platform}
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
        version.restype = ctypes.c_char_p
        glibc = version().decode()
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no gnu_get_libc_version / mallopt
        return {"allocator": "other", "tuned": False, "reason": "not glibc"}
    out = {"allocator": "glibc", "glibc": glibc, "tuned": False}
    if os.environ.get("LMLAB_MALLOC", "") == "default":
        return {**out, "reason": "LMLAB_MALLOC=default"}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mmap = MMAP_THRESHOLD
    if not mallopt(M_MMAP_THRESHOLD, mmap):
        mmap = LEGACY_MMAP_MAX
        mallopt(M_MMAP_THRESHOLD, mmap)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    mallopt(M_TOP_PAD, TOP_PAD)
    return {**out, "tuned": True, "mmap_threshold": mmap, "trim_threshold": TRIM_THRESHOLD,
            "top_pad": TOP_PAD}
