#!/usr/bin/env python
"""Training speed and memory levers of lmlab, each measured against the same code with the
lever off, side by side: every variant runs in its own fresh process (so peak RSS and the
allocator state are its own), variants alternate (A, B, C, A, B, C, ...), and the report gives
medians and ratios to the `today` variant.

    .venv/bin/python bench/bench_speed.py --quick                 # ~5 min on 2 busy cores
    .venv/bin/python bench/bench_speed.py --part vocab --repeats 3  # LLmini-C's real shape
    .venv/bin/python bench/bench_speed.py --part alloc

Part `vocab` (LLmini-C: 8 layers x 256, 4 heads, GPT-2 vocabulary 50,257, context 256,
untied head, the preset's dropout 0.1 on attention and 0.3 on the residual branches, batch 32 x 2;
--quick: batch 8 x 1): variants
  today    model.fused_loss=false, model.vocab_pad=0, LMLAB_MALLOC=default, torch.nn.Dropout (the code before)
  pad      + vocabulary padded to 50,304
  fused    + the chunked head + cross-entropy
  malloc   + malloc tuning
  all      + lmlab's CPU dropout (16-bit masks; = what `lmlab train` does by default)
Part `alloc` (minigpt_small-like: 4 x 256... see SHAPES; character vocabulary, so the head is
small): malloc tuning off vs on, everything else default.

Each worker trains with lmlab's own `train_step` (AdamW, clipping, bf16 autocast where the CPU
has it) on random tokens (`--data preset`: on the batches `lmlab train llmini_c` draws from its
llmini_mix corpora, loss masks included, which needs them under $LMLAB_DATA) and reports the
median step time after one warm-up step, the user and system CPU seconds of its measured steps,
and its peak RSS. Timings on a shared machine are
inflated and noisy: compare the ratios of one run only; tokens per CPU-second (user + system
time) is the steadier figure when other processes compete for the cores. `--out FILE` writes
the JSON.

With `--peak` (the default) the run measures this CPU's bf16 matmul peak (`lmlab bench-peak`)
before and after the parts, reports each variant's useful GFLOP/s (tokens/s x the model's
training FLOPs per token; with the chunked head, whose matmuls skip positions without a loss,
the head's FLOPs count only for the scored share, as lmlab's MFU does) as a share of it, and
the ceiling that peak puts on the speedup: the tokens/s of a step whose matrix multiplies alone
ran at the peak and everything else took no time, as a multiple of the baseline. On a CPU
without AMX that ceiling bounds what any lever can still give at LLmini-C's shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

LLMINI_DROPOUT = {"attn_dropout": 0.1, "resid_dropout": 0.3}  # the llmini_* presets' (the seed's) dropout
SHAPES = {
    "llmini_c": {"n_layer": 8, "n_head": 4, "d_model": 256, "context_len": 256, "vocab_size": 50257,
                 "tie_embeddings": False, **LLMINI_DROPOUT, "batch": 32, "accum": 2},
    "llmini_c_quick": {"n_layer": 8, "n_head": 4, "d_model": 256, "context_len": 256, "vocab_size": 50257,
                       "tie_embeddings": False, **LLMINI_DROPOUT, "batch": 8, "accum": 1},
    "minigpt_small": {"n_layer": 4, "n_head": 4, "d_model": 256, "context_len": 256, "vocab_size": 3000,
                      "position": "sinusoidal", "batch": 64, "accum": 1},
    "minigpt_small_quick": {"n_layer": 4, "n_head": 4, "d_model": 256, "context_len": 256, "vocab_size": 3000,
                            "position": "sinusoidal", "batch": 16, "accum": 1},
}
TORCH_DROPOUT = {"torch_dropout": True}  # torch.nn.Dropout instead of lmlab.model.dropout (the code before)
VARIANTS = {  # name -> (model overrides, environment); "torch_dropout" in the overrides is the worker's
    "today": ({"fused_loss": False, "vocab_pad": 0, **TORCH_DROPOUT}, {"LMLAB_MALLOC": "default"}),
    "pad": ({"fused_loss": False, **TORCH_DROPOUT}, {"LMLAB_MALLOC": "default"}),
    "fused": (TORCH_DROPOUT, {"LMLAB_MALLOC": "default"}),
    "malloc": (TORCH_DROPOUT, {}),
    "all": ({}, {}),
    "malloc_off": ({}, {"LMLAB_MALLOC": "default"}),
    "malloc_on": ({}, {}),
}
PARTS = {"vocab": ("llmini_c", ["today", "pad", "fused", "malloc", "all"]),
         "alloc": ("minigpt_small", ["malloc_off", "malloc_on"])}
PRESET_DATA = {"vocab": "llmini_c"}  # --data preset: the part's batches come from this preset's data


def machine() -> dict:
    """The CPU with its vector features and the precision the workers' `auto` resolves to here."""
    import torch

    from lmlab.cpu import cpu_info
    from lmlab.device import resolve_precision

    return {"cpu": cpu_info().to_dict(), "precision": resolve_precision("auto", torch.device("cpu")),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_avg_1min": os.getloadavg()[0]}


def preset_batches(preset: str, batch: int, accum: int, context_len: int):
    """The batches `lmlab train <preset>` would draw (its data, prepared or read from the cache)."""
    from lmlab.data.prepare import prepare
    from lmlab.presets import get_preset
    from lmlab.train import distributed
    from lmlab.train.job import train_batches

    cfg = get_preset(preset).replace(train={"batch_size": batch, "grad_accum": accum, "progress": False})
    if cfg.model.context_len != context_len:
        raise SystemExit(f"preset {preset} has context {cfg.model.context_len}, the shape {context_len}")
    return train_batches(cfg, prepare(cfg, progress=False), distributed.setup(cfg.train))


def worker(shape: dict, model_over: dict, steps: int, preset: str | None = None) -> dict:
    """Runs in a fresh process: build, warm up one step, time `steps` steps (on random tokens, or on
    the batches of `preset`'s data)."""
    import torch

    from lmlab.alloc import tune_malloc
    from lmlab.config import TrainConfig
    from lmlab.model import ModelConfig, build_model
    from lmlab.train.mfu import executed_flops
    from lmlab.train.optim import make_optimizer
    from lmlab.device import Precision, resolve_precision
    from lmlab.train.step import train_step

    malloc = tune_malloc()  # what the trainer does at start (LMLAB_MALLOC=default: nothing)
    model_over = dict(model_over)
    if model_over.pop("torch_dropout", False):
        import lmlab.model.base

        lmlab.model.base.Dropout = torch.nn.Dropout  # the dropout every site used before lmlab.model.dropout
    shape = dict(shape)
    batch, accum = shape.pop("batch"), shape.pop("accum")
    torch.manual_seed(0)
    cfg = ModelConfig(**shape, **model_over)
    model = build_model(cfg)
    tcfg = TrainConfig(batch_size=batch, grad_accum=accum)
    optimizer = make_optimizer(model, tcfg, torch.device("cpu"))
    precision = Precision(resolve_precision("auto", torch.device("cpu")), torch.device("cpu"))
    T, V = cfg.context_len, cfg.vocab_size

    class Batches:
        def batch(self, step, micro):
            g = torch.Generator().manual_seed(step * 1000 + micro)
            x = torch.randint(0, V, (batch, T + 1), generator=g)
            return x[:, :-1], x[:, 1:], None

        def micro_batches(self, step):  # the stream owns grad_accum, as lmlab's do
            return [self.batch(step, micro) for micro in range(accum)]

    batches = preset_batches(preset, batch, accum, T) if preset else Batches()
    times, losses, positions, scored = [], [], 0, 0
    for step in range(steps + 1):
        if step == 1:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        out = train_step(model, optimizer, batches, step, precision, torch.device("cpu"), grad_clip=1.0)
        times.append(time.perf_counter() - t0)
        losses.append(out.loss)
        positions, scored = positions + out.positions, scored + out.scored
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    step_s = statistics.median(times[1:])
    cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    # the FLOPs executed per position: the chunked head skips positions without a loss (as lmlab's MFU counts)
    flops = executed_flops(model.flops_per_token(), model.scored_only_flops(), scored / positions)
    return {"step_s": step_s, "tokens_per_s": batch * accum * T / step_s, "flops_per_token": flops,
            "tokens_per_cpu_s": batch * accum * T * steps / max(cpu_s, 1e-9),
            "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
            "peak_rss_mb": r1.ru_maxrss / 1024, "losses": losses, "precision": precision.name,
            "malloc_tuned": malloc["tuned"]}


def run_variant(shape: str, variant: str, steps: int, preset: str | None = None) -> dict:
    over, env = VARIANTS[variant]
    spec = json.dumps({"shape": SHAPES[shape], "over": over, "steps": steps, "preset": preset})
    out = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True,
                         env={**os.environ, **env}, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"worker {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_part(part: str, quick: bool, repeats: int, steps: int, only: str | None = None,
             preset_data: bool = False) -> dict:
    shape, variants = PARTS[part]
    preset = PRESET_DATA[part] if preset_data else None
    variants = [v for v in variants if not only or v in only.split(",")]
    shape = shape + ("_quick" if quick else "")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(repeats):
        for v in variants:
            res = run_variant(shape, v, steps, preset)
            results[v].append(res)
            print(f"  [{part} {r + 1}/{repeats}] {v:10s} {res['tokens_per_s']:9,.0f} tok/s  "
                  f"user {res['user_s']:6.1f} s  sys {res['sys_s']:6.1f} s  peak {res['peak_rss_mb']:7,.0f} MB",
                  file=sys.stderr, flush=True)
    base = variants[0]
    rows = []
    for v in variants:
        med = {k: statistics.median(x[k] for x in results[v])
               for k in ("tokens_per_s", "tokens_per_cpu_s", "user_s", "sys_s", "peak_rss_mb", "flops_per_token")}
        ref = {k: statistics.median(x[k] for x in results[base]) for k in med}
        rows.append({"variant": v, **med, "speedup": med["tokens_per_s"] / ref["tokens_per_s"],
                     "cpu_speedup": med["tokens_per_cpu_s"] / ref["tokens_per_cpu_s"],
                     "memory_ratio": med["peak_rss_mb"] / ref["peak_rss_mb"],
                     "first_losses": results[v][0]["losses"][:3]})
    return {"part": part, "shape": SHAPES[shape], "shape_name": shape, "steps": steps, "repeats": repeats,
            "data": f"{preset}'s data" if preset else "random tokens", "rows": rows}


def measure_peak() -> float:
    """This CPU's bf16 matmul GFLOP/s (fp32 where it has no bf16), from `lmlab bench-peak` in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "lmlab", "bench-peak", "--json", "--size", "2048", "--seconds", "3"],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    return result.get("bf16", result["fp32"]) / 1e9


def add_ceiling(part: dict, peak: float) -> None:
    """Each variant's useful GFLOP/s and share of `peak`; the part's ceiling: tokens/s at the peak, over the baseline's."""
    for r in part["rows"]:
        r["gflops"] = r["tokens_per_s"] * r["flops_per_token"] / 1e9
        r["share_of_peak"] = r["gflops"] / peak
    base = part["rows"][0]
    ceiling = peak * 1e9 / min(r["flops_per_token"] for r in part["rows"])
    part["ceiling"] = {"peak_gflops": peak, "tokens_per_s": ceiling, "speedup": ceiling / base["tokens_per_s"]}


def markdown(report: dict) -> str:
    m = report["machine"]
    cpu = m["cpu"]
    lines = [f"CPU {cpu['model']} ({', '.join(cpu['features'] or ['features unknown'])}), precision "
             f"{m['precision']}, torch {m['torch']}, {m['threads']} threads, "
             f"load average {m['load_avg_1min']:.1f} at start (contended if above the core count {m['cores']})"]
    for part in report["parts"]:
        lines += ["", f"**{part['part']}** ({part['shape_name']}: {part['shape']}; {part['data']}; "
                  f"{part['steps']} timed steps, median of {part['repeats']})", "",
                  "| variant | tokens/s | speedup | tokens/CPU-s | speedup (CPU time) | user s | sys s "
                  "| peak RSS MB | memory ratio | GFLOP/s | of peak |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in part["rows"]:
            share = f"{r['gflops']:,.0f} | {r['share_of_peak']:.0%}" if "gflops" in r else "- | -"
            lines.append(f"| {r['variant']} | {r['tokens_per_s']:,.0f} | {r['speedup']:.2f}x | "
                         f"{r['tokens_per_cpu_s']:,.0f} | {r['cpu_speedup']:.2f}x | {r['user_s']:.1f} | "
                         f"{r['sys_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['memory_ratio']:.2f} | {share} |")
        if "ceiling" in part:
            c = part["ceiling"]
            lines += ["", f"Ceiling: at the matmul peak measured in this run ({c['peak_gflops']:,.0f} GFLOP/s) a step "
                          f"made of its matrix multiplies alone would train {c['tokens_per_s']:,.0f} tokens/s, "
                          f"**{c['speedup']:.2f}x** the {part['rows'][0]['variant']} variant."]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=[*PARTS, "all"], default="all")
    p.add_argument("--quick", action="store_true", help="small batches, 3 timed steps, 1 repeat")
    p.add_argument("--repeats", type=int, default=0, help="rounds of all variants (default 2; --quick 1)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per worker (default 4; --quick 3)")
    p.add_argument("--variants", help="comma-separated subset of the part's variants (the first is the baseline)")
    p.add_argument("--data", choices=["random", "preset"], default="random",
                   help="random tokens, or the batches `lmlab train` draws from the part's preset data "
                        f"({', '.join(f'{k}: {v}' for k, v in PRESET_DATA.items())}; needs $LMLAB_DATA)")
    p.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the bf16 matmul peak before and after, for GFLOP/s shares and the ceiling")
    p.add_argument("--out", help="write the report as JSON here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(worker(spec["shape"], spec["over"], spec["steps"], spec.get("preset"))))
        return 0
    repeats = args.repeats or (1 if args.quick else 2)
    steps = args.steps or (3 if args.quick else 4)
    parts = list(PARTS) if args.part == "all" else [args.part]
    if args.data == "preset" and any(part not in PRESET_DATA for part in parts):
        p.error(f"--data preset needs --part {' or '.join(PRESET_DATA)}")
    report = {"machine": machine(), "parts": []}
    peaks = [measure_peak()] if args.peak else []
    for part in parts:
        report["parts"].append(run_part(part, args.quick, repeats, steps, args.variants, args.data == "preset"))
    if peaks:
        peaks.append(measure_peak())
        report["peak_gflops_before_after"] = peaks
        for part in report["parts"]:
            add_ceiling(part, max(peaks))  # the higher of the two: what the CPU can do when the host is quiet
    print(markdown(report))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
