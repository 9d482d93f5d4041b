"""How fast the command line answers when it needs no model: `lmlab --help`, `lmlab presets` and
the refusal of a plain mistake (an unknown preset), each in a fresh process, beside the floor
every Python command pays (`python -c pass`) and what importing torch alone costs, interleaved
in rounds so a busy machine slows all of them alike. Medians in seconds.

    .venv/bin/python bench/bench_cli.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from lmlab.cpu import cpu_info

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import torch": [sys.executable, "-c", "import torch"],
    "lmlab --help": [sys.executable, "-m", "lmlab", "--help"],
    "lmlab presets": [sys.executable, "-m", "lmlab", "presets"],
    "lmlab train no-such-preset (refused)": [sys.executable, "-m", "lmlab", "train", "no-such-preset"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    print(f"CPU: {cpu_info().describe()}; {args.rounds} rounds, median seconds per command")
    floor = statistics.median(times["python -c pass"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:40s} {m:6.3f} s  ({m - floor:+.3f} s over python -c pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
