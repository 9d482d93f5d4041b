#!/usr/bin/env python
"""Muon vs AdamW step time of shakespeare_speedrun on this CPU, with Muon's Newton-Schulz
iteration in bf16 (torch.optim.Muon's, what lmlab ran before) and in fp32 (what lmlab runs where
bf16 is not native).

The three variants train side by side in one process, a step each in turn, so a busy shared
machine slows them alike: compare the ratios of one run. Each has its own model and optimizer,
built by `lmlab train`'s own code from the preset (precision `auto`), on the preset's batches.
Set ONEDNN_MAX_CPU_ISA=AVX2 to get an AVX2-only CPU's behaviour (no native bf16) on any machine:

    ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=src .venv/bin/python bench/bench_muon.py \\
        --data ../shared/data/tinyshakespeare/input.txt --steps 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

from lmlab.cpu import cpu_info
from lmlab.data.prepare import prepare
from lmlab.model import build_model
from lmlab.commands import resolve_config
from lmlab.train import distributed
from lmlab.train.job import train_batches
from lmlab.train.optim import make_optimizer
from lmlab.device import Precision, resolve_precision
from lmlab.train.step import set_lr, train_step

VARIANTS = {"adamw": ("adamw", None), "muon, bf16 Newton-Schulz": ("muon", torch.bfloat16),
            "muon, fp32 Newton-Schulz": ("muon", torch.float32)}


def build(cfg, optimizer: str, ns_dtype, vocab_size: int):
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, vocab_size)
    opt = make_optimizer(model, dataclasses.replace(cfg.train, optimizer=optimizer), torch.device("cpu"))
    if ns_dtype is not None:
        opt.optimizers[0].ns_dtype = ns_dtype  # bf16: bit-identical to torch.optim.Muon (tests/test_optim.py)
    return model, opt


def run(data_path: str, steps: int) -> dict:
    cfg = resolve_config("shakespeare_speedrun", data_path, {})
    data = prepare(cfg, progress=False)
    batches = train_batches(cfg, data, distributed.setup(cfg.train))
    device = torch.device("cpu")
    precision = Precision(resolve_precision(cfg.train.precision, device), device)
    jobs = {name: build(cfg, opt, dt, data.tokenizer.vocab_size) for name, (opt, dt) in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in jobs}
    losses: dict[str, float] = {}
    for step in range(steps + 1):  # step 0 warms each variant up and is not timed
        for name, (model, opt) in jobs.items():
            set_lr(opt, cfg.train.lr)
            t0 = time.perf_counter()
            losses[name], _ = train_step(model, opt, batches, step, 1, cfg.train.grad_clip, precision, device)
            if step:
                times[name].append(time.perf_counter() - t0)
    tokens = cfg.train.batch_size * cfg.model.context_len
    base = statistics.median(times["adamw"])
    rows = [{"variant": name, "ms_per_step": 1000 * statistics.median(t), "tokens_per_s": tokens / statistics.median(t),
             "vs_adamw": statistics.median(t) / base, "loss": losses[name]} for name, t in times.items()]
    return {"cpu": cpu_info().to_dict(), "precision": precision.name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "steps": steps, "rows": rows}


def markdown(result: dict) -> str:
    cpu = result["cpu"]
    lines = [f"CPU {cpu['model']} ({', '.join(cpu['features'] or ['features unknown'])}), ONEDNN_MAX_CPU_ISA="
             f"{cpu['onednn_max_cpu_isa'] or 'unset'}, precision {result['precision']}, torch {result['torch']}, "
             f"{result['threads']} threads, median of {result['steps']} steps", "",
             "| variant | ms/step | tokens/s | step time vs adamw | loss at the last step |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['ms_per_step']:,.1f} | {r['tokens_per_s']:,.0f} | {r['vs_adamw']:.2f}x | "
              f"{r['loss']:.3f} |" for r in result["rows"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the character corpus (tinyshakespeare/input.txt)")
    ap.add_argument("--steps", type=int, default=60, help="timed steps per variant (default 60)")
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args()
    result = run(args.data, args.steps)
    print(markdown(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
