"""manifest.json: enough about a run's making to say why two runs differ.

Versions (lmlab and its git commit when run from a checkout, Python, torch, numpy), the
device, the CPU's model and vector features (lmlab.cpu: they decide CPU speed), the precision the
run resolved to, the thread count, a content hash of the prepared data (the token ids of every split
and source, as the model sees them) and the full config.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lmlab.cpu import cpu_info
from lmlab.io import atomic_write_text


def git_commit(where: Path) -> str | None:
    """The commit of the lmlab checkout, with '+dirty' when it has local changes; None if not a checkout."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def data_hash(data) -> str:
    """SHA-256 over the token ids of every split and source, in a fixed order."""
    digest = hashlib.sha256()
    for split in sorted(data.splits):
        for name in sorted(data.splits[split]):
            ids = np.ascontiguousarray(data.splits[split][name].real_ids())
            digest.update(f"{split}/{name}/{ids.dtype}/{ids.size}\n".encode())
            digest.update(ids.tobytes())
    return digest.hexdigest()


def build_manifest(cfg, data, device: torch.device, precision: str) -> dict:
    from lmlab import __version__

    return {
        "lmlab": __version__, "git_commit": git_commit(Path(__file__).resolve().parent),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_info().model,
        "cpu": cpu_info().to_dict(), "precision": precision, "threads": torch.get_num_threads(), "argv": sys.argv, "created_at": time.time(),
        "data_sha256": data_hash(data), "tokenizer_vocab_size": data.tokenizer.vocab_size,
        "config": cfg.to_dict(),
    }


def write_manifest(run, cfg, data, device: torch.device, precision: str) -> None:
    atomic_write_text(run.manifest, json.dumps(build_manifest(cfg, data, device, precision), indent=1,
                                               default=str) + "\n")
