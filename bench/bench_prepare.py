#!/usr/bin/env python
"""Data preparation, end to end: `lmlab.data.prepare` (read, split, encode, lay out, write the
cache) against the script every nanoGPT user runs first (data/*/prepare.py: read the text, one
tiktoken `encode_ordinary` call per split, `np.array(..., uint16).tofile`).

    .venv/bin/python bench/bench_prepare.py [--data ../shared/data] [--repeats 3]

Rows: the TinyStories 2 MiB sample with GPT-2 ids, both ways (same file, same vocabulary); the
same sample with a 3000-token BPE trained here (training included); and the five-source LLmini
mixture in the chunk layout, which nanoGPT's script cannot express. Each run starts from an
empty cache; runs alternate between the two sides and the median is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def nanogpt_style(text_file: Path, ranks_file: Path, out: Path) -> int:
    import numpy as np
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from lmlab.tokenizer.pretrained import VOCABULARIES  # GPT-2's split pattern, as tiktoken defines it

    enc = tiktoken.Encoding("gpt2", pat_str=VOCABULARIES["gpt2"].pattern,
                            mergeable_ranks=load_tiktoken_bpe(str(ranks_file)),
                            special_tokens={"<|endoftext|>": 50256})
    data = text_file.read_text(encoding="utf-8")
    n = len(data)
    train, val = data[: int(n * 0.9)], data[int(n * 0.9):]
    total = 0
    for name, part in (("train", train), ("val", val)):
        ids = np.array(enc.encode_ordinary(part), dtype=np.uint16)
        ids.tofile(out / f"{name}.bin")
        total += len(ids)
    return total


def lmlab_prepare(preset: str, data: Path, cache: Path, **data_changes) -> dict:
    from lmlab.data.prepare import prepare
    from lmlab.presets import get_preset

    cfg = get_preset(preset)
    cfg = cfg.replace(data={"root": str(data), "cache_dir": str(cache), **data_changes},
                      tokenizer={"path": str(data / cfg.tokenizer.path) if cfg.tokenizer.path else ""})
    return prepare(cfg, progress=False).stats


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    stories = args.data / "tinystories" / "tinystories_train_sample_2MiB.txt"
    ranks = args.data / "tokenizers" / "gpt2" / "gpt2.tiktoken"
    mb = stories.stat().st_size / 1e6
    rows = {"lmlab gpt2": [], "nanoGPT gpt2": [], "lmlab bpe3000": [], "lmlab llmini_mix": []}
    tinystories_gpt2 = [{"kind": "text", "name": "tinystories", "path": str(stories), "docs": "delimiter"}]
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            rows["nanoGPT gpt2"].append(timed(lambda: nanogpt_style(stories, ranks, tmp)))
            rows["lmlab gpt2"].append(timed(lambda: lmlab_prepare(
                "tinystories_counting", args.data, tmp / "a", sources=tinystories_gpt2)))
            rows["lmlab bpe3000"].append(timed(lambda: lmlab_prepare("tinystories_bpe3000", args.data, tmp / "b")))
            rows["lmlab llmini_mix"].append(timed(lambda: lmlab_prepare("llmini_mix", args.data, tmp / "c")))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"threads: {os.cpu_count()} cores; TinyStories sample {mb:.2f} MB; median of {args.repeats}")
    print("| job | seconds | MB/s |")
    print("|---|---:|---:|")
    for k, v in med.items():
        rate = "" if "llmini" in k else f"{mb / v:.1f}"  # the mixture is not the TinyStories file
        print(f"| {k} | {v:.2f} | {rate} |")
    print(f"lmlab / nanoGPT time on the same job: {med['lmlab gpt2'] / med['nanoGPT gpt2']:.2f}x")


if __name__ == "__main__":
    main()
