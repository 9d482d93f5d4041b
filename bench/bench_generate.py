#!/usr/bin/env python
"""Generation and training speed per architecture, and generation side by side with
Hugging Face transformers' `generate` on the same GPT-2 weights.

    .venv/bin/python bench/bench_generate.py                 # both parts
    .venv/bin/python bench/bench_generate.py --part hf       # lmlab vs transformers only
    .venv/bin/python bench/bench_generate.py --part zoo      # every architecture at one size

Part `hf`: a GPT-2-shaped model (6 layers x 384, 6 heads, context 256, learned positions,
LayerNorm, tanh GELU, tied) with random weights is exported to GPT2LMHeadModel; both
generate 240 tokens greedily from a 16-token prompt at batch 1, with and without a KV cache,
for a character vocabulary (65) and GPT-2's (50,257). Runs alternate (HF, lmlab, HF, ...)
and the median of --repeats is reported; the generated tokens must be identical.
Part `zoo`: training tokens/s (fp32 and the default precision) and cached generation tokens/s
of each architecture at 4 layers x 128, context 128, vocabulary 65.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

from lmlab.cpu import cpu_info
from lmlab.generate import GREEDY, generate
from lmlab.interop import to_hf_model
from lmlab.model import ModelConfig, build_model
from lmlab.quantize import quantize_int8
from lmlab.device import Precision, resolve_precision

GPT2_SHAPE = ModelConfig(n_layer=6, n_head=6, d_model=384, context_len=256, mlp="gelu_tanh", attention="sdpa")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@torch.no_grad()
def part_hf(repeats: int, new_tokens: int) -> list[dict]:
    rows = []
    for vocab in (65, 50257):
        torch.manual_seed(0)
        ours = build_model(dataclasses.replace(GPT2_SHAPE, vocab_size=vocab)).eval()
        theirs = to_hf_model(ours)
        prompt = torch.randint(0, vocab, (1, 16))
        for cache in (True, False):
            hf_run = lambda: theirs.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                             do_sample=False, use_cache=cache, pad_token_id=0)
            lm_run = lambda: generate(ours, prompt, new_tokens, GREEDY, use_cache=cache)
            assert torch.equal(hf_run(), lm_run()), "greedy tokens differ between lmlab and transformers"
            hf_t, lm_t = [], []
            for _ in range(repeats):
                hf_t.append(timed(hf_run))
                lm_t.append(timed(lm_run))
            hf_s, lm_s = statistics.median(hf_t), statistics.median(lm_t)
            row = {"vocab": vocab, "kv_cache": cache, "hf_s": hf_s, "lmlab_s": lm_s,
                   "hf_tok_s": new_tokens / hf_s, "lmlab_tok_s": new_tokens / lm_s, "ratio": hf_s / lm_s}
            line = (f"vocab {vocab:>6} cache {str(cache):<5}  transformers {new_tokens / hf_s:8.1f} tok/s   "
                    f"lmlab {new_tokens / lm_s:8.1f} tok/s ({hf_s / lm_s:4.2f}x)")
            if cache:  # lmlab's fastest CPU decoding: weight-only int8 (see lmlab/quantize.py)
                q = quantize_int8(ours)
                q_run = lambda: generate(q, prompt, new_tokens, GREEDY)
                q_out = q_run()
                q_s = statistics.median(timed(q_run) for _ in range(repeats))
                agree = (q_out == hf_run()).float().mean().item()
                row.update(int8_s=q_s, int8_tok_s=new_tokens / q_s, int8_ratio=hf_s / q_s, int8_token_agreement=agree)
                line += f"   lmlab int8 {new_tokens / q_s:8.1f} tok/s ({hf_s / q_s:4.2f}x, {agree:.0%} same tokens)"
            rows.append(row)
            print(line, flush=True)
    return rows


ZOO = {
    "transformer (GPT-2 style)": {},
    "transformer (LLaMA style)": {"position": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False,
                                  "tie_embeddings": False, "n_kv_head": 2},
    "transformer (ALiBi, post-norm)": {"position": "alibi", "norm_position": "post"},
    "bigram": {"arch": "bigram"},
    "mlp (k=3)": {"arch": "mlp"},
    "wavenet": {"arch": "wavenet", "n_layer": 3},
    "bow": {"arch": "bow"},
    "lstm": {"arch": "lstm", "n_layer": 2},
    "gru": {"arch": "gru", "n_layer": 2},
}


def train_tokens_per_s(model, precision: str, batch: int, steps: int = 12) -> float:
    cfg = model.config
    prec = Precision(resolve_precision(precision, torch.device("cpu")), torch.device("cpu"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.context_len))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with prec.autocast():
            _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return batch * cfg.context_len / statistics.median(times[2:])


def part_zoo(new_tokens: int) -> list[dict]:
    base = ModelConfig(n_layer=4, n_head=4, d_model=128, context_len=128, vocab_size=65)
    rows = []
    for name, change in ZOO.items():
        torch.manual_seed(0)
        model = build_model(dataclasses.replace(base, **change))
        fp32 = train_tokens_per_s(model, "fp32", 16)
        auto = train_tokens_per_s(model, "auto", 16)
        model.eval()
        prompt = torch.randint(0, 65, (1, 8))
        gen_t = statistics.median(timed(lambda: generate(model, prompt, new_tokens, GREEDY)) for _ in range(3))
        rows.append({"arch": name, "params": model.num_params(), "train_tok_s_fp32": fp32,
                     "train_tok_s_auto": auto, "gen_tok_s": new_tokens / gen_t})
        print(f"{name:<32} {model.num_params() / 1e6:6.3f}M  train fp32 {fp32:9,.0f} tok/s  auto {auto:9,.0f} tok/s"
              f"  generate {new_tokens / gen_t:8.1f} tok/s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("all", "hf", "zoo"), default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=240)
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_info().to_dict(),
               "auto_precision": resolve_precision("auto", torch.device("cpu"))}  # train_tok_s_auto ran in this
    if args.part in ("all", "hf"):
        results["hf"] = part_hf(args.repeats, args.new_tokens)
    if args.part in ("all", "zoo"):
        results["zoo"] = part_zoo(min(args.new_tokens, 100))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
