"""Fault injection: kill `lmlab train` at many moments, resume, and check nothing was lost.

Each trial starts a fresh tiny run in a subprocess and kills it with SIGKILL either at a random
time or at a named fault point (inside a checkpoint write, between the two renames of the
swap, half-way through writing the token cache, after a random optimizer step; see
`lmlab.io.fault_point`). It then continues the run the way a user would (`lmlab train
--resume`, or plain `lmlab train` again when no checkpoint was saved yet) and compares the
final weights with an uninterrupted run: on CPU they must be bit-identical.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/faults.py --trials 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ["--train.max_steps=30", "--train.checkpoint_every=5", "--eval.every=10", "--eval.max_tokens=512",
            "--train.batch_size=4", "--train.threads=1", "--train.progress=false"]
POINTS = ["checkpoint:tensors", "checkpoint:swap", "cache:write", "train:step", "time"]


def env(cache: Path, fault: str | None = None) -> dict[str, str]:
    out = {**os.environ, "OMP_NUM_THREADS": "1", "LMLAB_CACHE": str(cache),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out.pop("LMLAB_FAULT", None)
    if fault:
        out["LMLAB_FAULT"] = fault
    return out


def train_argv(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lmlab", "train", "tiny", "--run-dir", str(run_dir), *SETTINGS, *extra]


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    import torch

    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def reference(work: Path) -> Path:
    ref = work / "reference"
    subprocess.run(train_argv(ref), env=env(work / "cache-ref"), check=True, capture_output=True)
    return ref


def kill_at(run_dir: Path, cache: Path, point: str, nth: int, delay: float = 0.0) -> int:
    """Run training until the fault strikes (or `delay` seconds pass, for point 'time'); its exit code."""
    if point == "time":
        proc = subprocess.Popen(train_argv(run_dir), env=env(cache), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        return proc.wait()
    done = subprocess.run(train_argv(run_dir), env=env(cache, f"{point}@{nth}"), capture_output=True)
    return done.returncode


def recover_argv(run_dir: Path) -> list[str]:
    """What a user does next: resume when a checkpoint exists, otherwise train again (no --force needed)."""
    from lmlab.runs import RunDir

    if run_dir.is_dir() and RunDir(run_dir).has_checkpoint():
        return ["train", "--resume", str(run_dir)]
    return train_argv(run_dir)[3:]


def recover(run_dir: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmlab", *recover_argv(run_dir)], env=env(cache),
                          capture_output=True, text=True)


def trial(work: Path, ref: Path, rng: random.Random, index: int) -> dict:
    point = rng.choice(POINTS)
    nth = {"checkpoint:tensors": rng.randint(1, 8), "checkpoint:swap": rng.randint(1, 8),
           "cache:write": rng.randint(1, 2), "train:step": rng.randint(1, 29), "time": 0}[point]
    delay = rng.uniform(0.5, 8.0)
    run_dir, cache = work / f"trial{index}", work / f"cache{index}"
    code = kill_at(run_dir, cache, point, nth, delay)
    done = recover(run_dir, cache)
    ok = done.returncode == 0 and same_weights(ref, run_dir)
    return {"point": point, "nth": nth, "delay_s": round(delay, 2) if point == "time" else None,
            "killed": code == -signal.SIGKILL, "recovered": done.returncode == 0, "identical": ok,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/faults.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ref = reference(work)
        results = []
        for i in range(args.trials):
            r = trial(work, ref, rng, i)
            results.append(r)
            print(json.dumps(r), flush=True)
    killed = [r for r in results if r["killed"]]
    survived = [r for r in killed if r["identical"]]
    summary = {"trials": len(results), "killed": len(killed), "survived_bit_identical": len(survived),
               "by_point": {p: sum(1 for r in survived if r["point"] == p) for p in POINTS}, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(survived)} of {len(killed)} kill points survived with bit-identical final weights "
          f"({len(results) - len(killed)} runs finished before the kill); wrote {args.out}")
    return 0 if len(survived) == len(killed) else 1


if __name__ == "__main__":
    sys.exit(main())
