"""`lmlab demo`: the whole flow in one command on the built-in corpus.

Build -> sample from the untrained model -> train -> sample again -> evaluate -> report.
"""

from __future__ import annotations

import math

import torch

from lmlab.config import apply_overrides
from lmlab.generate import Sampling, generate, never_sampled
from lmlab.presets import get_preset
from lmlab.report import write_report
from lmlab.io import atomic_write_text
from lmlab.train.job import new_job
from lmlab.train.loop import run_job
from lmlab.analysis import analyze_run, format_table

PROMPT = "The "
SAMPLE_TOKENS = 300


def sample(job, label: str) -> str:
    idx = torch.tensor([job.tokenizer.encode(PROMPT)], device=job.device)  # (1, T)
    out = generate(job.model, idx, SAMPLE_TOKENS, Sampling(temperature=0.8), seed=0,
                   vocab_size=job.tokenizer.vocab_size, never=never_sampled(job.tokenizer))
    text = job.tokenizer.decode(out[0].tolist())
    atomic_write_text(job.run.samples / f"{label}.txt", text + "\n")
    return text


def look_inside(run_dir) -> None:
    """The attention table of the trained model (what `lmlab analyze` writes), so the page shows it."""
    print("\n--- attention per layer (lmlab analyze: 64 validation windows) ---")
    print(format_table(analyze_run(run_dir, windows=64)["attention"]))


def run_demo(run_dir: str = "runs/demo", overrides: dict[str, str] | None = None) -> dict:
    cfg = apply_overrides(get_preset("demo"), overrides or {})
    job = new_job(cfg, run_dir, overwrite=True)
    tokens = job.data.stats["splits"]["tokens"]
    print(f"corpus: built-in (Python's bundled docs), {tokens['train']:,} train / "
          f"{tokens['val']:,} val characters, vocabulary {job.tokenizer.vocab_size}")
    print(job.model.summary())
    print(f"device {job.device}, precision {job.precision.name}, {cfg.train.max_steps} steps of "
          f"{job.tokens_per_step:,} tokens\n")
    print("--- sample before training ---")
    print(sample(job, "before"))
    print()
    result = run_job(job)
    print("\n--- sample after training ---")
    print(sample(job, "after"))
    m = result.metrics
    print(f"\nval loss {m['loss']:.4f} (ln V = {math.log(job.tokenizer.vocab_size):.2f} at start), "
          f"perplexity {m['perplexity']:.2f}, accuracy {m['accuracy']:.3f}, bits/char {m['bits_per_char']:.3f}, "
          f"bits/byte {m['bits_per_byte']:.3f}")
    print(f"{result.tokens_per_s:,.0f} training tokens/s over {result.train_time:.0f} s")
    look_inside(job.run.root)
    page = write_report(job.run.root)
    print(f"run directory {job.run.root}: config.toml, metrics.jsonl, checkpoints/, samples/, analysis/, "
          f"report.md, loss.png")
    print(f"\nreport page (open it in a browser): {page}")
    return m
