#!/usr/bin/env python
"""Tokenizer speed and compression: encoding throughput of every kind, and BPE training time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_tokenizers.py --out bench/results/tokenizers.json

On the TinyStories 2 MiB sample: MB/s of `encode_array` (the corpus path: text -> int64 ids) for
char, byte, bpe (3000 tokens, trained on the same text), gpt2 and cl100k_base (tiktoken), plus the
peer GPT-2 in Hugging Face `tokenizers` (same ids, tested), and bytes per token; then the time the
Rust BpeTrainer takes to learn 3000 tokens from the whole sample. Runs alternate between kinds,
the median of --repeats is reported. --threads caps the Rust thread pool of `tokenizers` (tiktoken
encodes one text on one thread anyway); the default 1 compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def build_all(text: str, data: Path) -> dict:
    from lmlab.tokenizer import TOKENIZERS

    files = data / "tokenizers"
    return {
        "char": TOKENIZERS.get("char").from_corpus(text),
        "byte": TOKENIZERS.get("byte").from_corpus(text),
        "bpe (3000)": TOKENIZERS.get("bpe").from_corpus(text, vocab_size=3000),
        "gpt2 (tiktoken)": TOKENIZERS.get("gpt2").from_corpus("", str(files / "gpt2" / "gpt2.tiktoken")),
        "cl100k_base (tiktoken)": TOKENIZERS.get("cl100k_base").from_corpus(
            "", str(files / "cl100k_base" / "cl100k_base.tiktoken")),
    }


def hf_gpt2(data: Path):
    """The peer: GPT-2 in `tokenizers`, from encoder.json + vocab.bpe, encoded the way kind bpe
    encodes (pieces cut where the pre-tokenizer cuts anyway, one batch call)."""
    import numpy as np
    from tokenizers import Tokenizer, models, pre_tokenizers

    from lmlab.tokenizer.bpe import safe_pieces

    folder = data / "tokenizers" / "gpt2"
    tk = Tokenizer(models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe")))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    def encode_array(text: str):
        encoded = tk.encode_batch_fast(safe_pieces(text), add_special_tokens=False)
        return np.fromiter((i for e in encoded for i in e.ids), dtype=np.int64)
    return encode_array


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the shared/data folder")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="RAYON_NUM_THREADS for `tokenizers`")
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before `tokenizers` starts its pool

    from lmlab.tokenizer.pretrained import bytes_per_token

    text = (args.data / "tinystories" / "tinystories_train_sample_2MiB.txt").read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    toks = build_all(text, args.data)
    encoders = {name: tok.encode_array for name, tok in toks.items()}
    encoders["gpt2 (HF tokenizers, peer)"] = hf_gpt2(args.data)
    times: dict[str, list[float]] = {name: [] for name in encoders}
    n_ids = {}
    for _ in range(args.repeats):
        for name, encode in encoders.items():
            seconds, ids = timed(lambda encode=encode: encode(text))
            times[name].append(seconds)
            n_ids[name] = len(ids)
    train = [timed(lambda: toks["bpe (3000)"].from_corpus(text, vocab_size=3000))[0] for _ in range(args.repeats)]

    rows = [{"tokenizer": name, "vocab": getattr(toks.get(name), "vocab_size", 50257),
             "mb_per_s": mb / statistics.median(times[name]), "tokens": n_ids[name],
             "bytes_per_token": mb * 1e6 / n_ids[name]} for name in encoders]
    assert abs(rows[2]["bytes_per_token"] - bytes_per_token(toks["bpe (3000)"], text)) < 1e-9
    print(f"TinyStories sample: {mb:.2f} MB; {args.threads} thread(s); median of {args.repeats}\n")
    print("| tokenizer | vocab | encode MB/s | tokens | bytes/token |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['tokenizer']} | {r['vocab']:,} | {r['mb_per_s']:.2f} | {r['tokens']:,} "
              f"| {r['bytes_per_token']:.3f} |")
    print(f"\nBPE training, 3000 tokens on {mb:.2f} MB: {statistics.median(train):.2f} s (median; "
          f"runs {', '.join(f'{t:.2f}' for t in train)})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "bpe_train_s": train, "threads": args.threads, "mb": mb}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
