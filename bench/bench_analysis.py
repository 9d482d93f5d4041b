"""Speed of the analyses: `attention_stats` + `head_roles` on an LLmini-A-sized model, and batched
sampling against sequential `generate` calls (a ratio measured in one process, interleaved).

    .venv/bin/python bench/bench_analysis.py [--windows 64] [--samples 32] [--new-tokens 100] [--repeats 2]

Random initialisation is enough: the cost of a forward pass does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lmlab.analysis import Windows, attention_stats, head_roles
from lmlab.generate import Request, Sampling, generate, generate_batch
from lmlab.model import build_model
from lmlab.model.config import ModelConfig

GPT2_VOCAB = 50257


def llmini_a() -> torch.nn.Module:
    cfg = ModelConfig(n_layer=10, n_head=6, d_model=384, context_len=256, vocab_size=GPT2_VOCAB, tie_embeddings=False)
    return build_model(cfg).eval()


def six_by_384() -> torch.nn.Module:
    cfg = ModelConfig(n_layer=6, n_head=6, d_model=384, context_len=256, vocab_size=GPT2_VOCAB)
    return build_model(cfg).eval()


def bench_analyze(n_windows: int) -> dict:
    model = llmini_a()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, GPT2_VOCAB, (n_windows, 256), generator=gen)
    windows = Windows(x, x, torch.full((n_windows,), 257))
    t0 = time.perf_counter()
    attention_stats(model, windows, batch_size=8)
    t1 = time.perf_counter()
    head_roles(model, token_ids=torch.arange(1000, 20000))
    t2 = time.perf_counter()
    return {"windows": n_windows, "attention_stats_s": t1 - t0, "head_roles_s": t2 - t1, "total_s": t2 - t0}


def bench_sampling(n_samples: int, new_tokens: int, repeats: int) -> dict:
    model = six_by_384()
    prompt = list(range(100, 110))
    batched, sequential = [], []
    for _ in range(repeats):  # interleaved: both sides see the same machine load
        t0 = time.perf_counter()
        generate_batch(model, [Request(prompt, Sampling(0.8, 0, 0.95), s) for s in range(n_samples)], new_tokens, GPT2_VOCAB)
        batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in range(n_samples):
            generate(model, torch.tensor([prompt]), new_tokens, Sampling(0.8, 0, 0.95), seed=s, vocab_size=GPT2_VOCAB)
        sequential.append(time.perf_counter() - t0)
    tokens = n_samples * new_tokens
    b, s = min(batched), min(sequential)
    return {"samples": n_samples, "new_tokens": new_tokens, "batched_s": b, "sequential_s": s,
            "batched_tokens_per_s": tokens / b, "sequential_tokens_per_s": tokens / s, "ratio": s / b}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=64)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--part", default="all", choices=("all", "analyze", "sampling"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps({"threads": torch.get_num_threads()}), flush=True)
    if args.part in ("all", "analyze"):  # each part printed as soon as it is done
        print(json.dumps({"analyze": bench_analyze(args.windows)}), flush=True)
    if args.part in ("all", "sampling"):
        print(json.dumps({"sampling": bench_sampling(args.samples, args.new_tokens, args.repeats)}), flush=True)


if __name__ == "__main__":
    main()
