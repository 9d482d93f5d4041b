"""Verbs owned by the training package: `lmlab bench-peak` (the CPU peak MFU is measured against)."""

from __future__ import annotations

import json

from lmlab.errors import UserError


def add_parsers(verbs) -> None:
    p = verbs.add_parser("bench-peak", help="measure this CPU's matmul FLOP/s (the peak for MFU on CPU) and cache it")
    p.add_argument("--seconds", type=float, default=2.0, help="time per precision (default 2)")
    p.add_argument("--size", type=int, default=1024, help="square matmul size (default 1024)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_bench_peak)


def cmd_bench_peak(args, overrides) -> int:
    from lmlab.train.mfu import TFLOPS, bench_peak

    if args.seconds <= 0 or args.size < 16:
        raise UserError(f"--seconds={args.seconds} --size={args.size}: expected seconds > 0 and size >= 16")
    result = bench_peak(args.seconds, args.size)
    if args.json:
        print(json.dumps(result))
        return 0
    from lmlab.cpu import cpu_info

    print(f"CPU: {cpu_info().describe()}")
    for precision in ("fp32", "bf16"):
        if precision in result:
            print(f"{precision}: {result[precision] / TFLOPS * 1000:,.1f} GFLOP/s")
    if "bf16" not in result:
        print("bf16: not measured, no native bf16 here (precision auto trains in fp32)")
    print(f"cached in {result['path']} for {result['key']}; training on this CPU now reports MFU against it")
    return 0
