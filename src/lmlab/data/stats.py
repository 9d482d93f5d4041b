"""Corpus statistics: per source (samples, tokens, words per split, % tokens, average and percentile
lengths, share of training) and for the whole corpus (layout rows, padding, utilization, vocabulary
coverage, held-out windows found in training: overlap.py).

`lmlab prepare` prints them as the seed studies' tables and saves stats.json, stats.csv and a
length histogram (lengths.png).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmlab.data.layout import LAYOUTS, thousands
from lmlab.data.overlap import held_out_overlap
from lmlab.errors import UserError

CSV_FIELDS = ("name", "kind", "weight", "split", "samples", "tokens", "pct_tokens", "avg_tokens", "p50", "p90",
              "p99", "max", "train_tokens", "val_tokens", "test_tokens", "train_share")


def length_summary(lengths: np.ndarray) -> dict:
    if not len(lengths):
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0}
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": int(lengths.max())}


def layout_numbers(layout, splits: dict, counts: list[dict], T: int, stride: int) -> dict:
    """The layout's statistics (rows, padding, utilization) and the padding overhead."""
    numbers = layout.stats(splits, counts, T, stride)
    numbers["padding_overhead"] = 1.0 - numbers["utilization"]
    return numbers


def corpus_stats(cfg, tokenizer, splits: dict, sources: list[dict], layout_counts: list[dict], probs: dict,
                 stride: int, seconds: float) -> dict:
    data, T = cfg.data, cfg.model.context_len
    total_tokens = sum(s["tokens"] for s in sources)
    total_samples = sum(s["samples"] for s in sources)
    train = splits["train"]
    unit = {n: probs[n] * train[n].tokens_per_unit(T) for n in probs}
    unit_total = sum(unit.values()) or 1.0
    for s in sources:
        s["pct_tokens"] = 100.0 * s["tokens"] / max(total_tokens, 1)
        s["avg_tokens"] = s["tokens"] / max(s["samples"], 1)
        s["train_share"] = unit.get(s["name"], 0.0) / unit_total  # expected share of training tokens
    layout = layout_numbers(LAYOUTS.get(data.layout), splits, layout_counts, T, stride)
    counts = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    for part in train.values():
        counts += np.bincount(np.asarray(part.real_ids(), dtype=np.int64), minlength=tokenizer.vocab_size)[:tokenizer.vocab_size]
    byte_len = np.asarray(tokenizer.token_byte_lengths(), dtype=np.int64)
    tok = {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
           "bytes_per_token": float(counts @ byte_len) / max(int(counts.sum()), 1),
           "vocab_coverage": float((counts > 0).sum()) / tokenizer.vocab_size}
    split_tokens = {s: sum(p.real_tokens for p in parts.values()) for s, parts in splits.items()}
    split_docs = {s: sum(p.docs for p in parts.values()) for s, parts in splits.items()}
    split_words = {s: sum(src.get(f"{s}_words", 0) for src in sources) for s in splits}
    return {"sources": sources, "total": {"samples": total_samples, "tokens": total_tokens,
                                          "avg_tokens": total_tokens / max(total_samples, 1)},
            "splits": {"tokens": split_tokens, "docs": split_docs, "words": split_words}, "layout": layout,
            "tokenizer": tok, "weight_by": data.weight_by, "seconds": seconds,
            "overlap": held_out_overlap(splits, probs, tok["bytes_per_token"])}


def format_table(stats: dict) -> str:
    """The seed studies' form: one row per dataset and a total, then the layout's numbers."""
    rows = ["| Dataset | Samples | Tokens | % Tokens | Avg Tok/Sample | p50 | p90 | max | Train share |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in stats["sources"]:
        share = f"{100 * s['train_share']:.1f}%" if s["train_share"] else "eval only"
        rows.append(f"| {s['name']} | {thousands(s['samples'])} | {thousands(s['tokens'])} | {s['pct_tokens']:.1f}% | "
                    f"{s['avg_tokens']:.1f} | {s['p50']:.0f} | {s['p90']:.0f} | {s['max']:,} | {share} |")
    t = stats["total"]
    rows.append(f"| **Total** | **{thousands(t['samples'])}** | **{thousands(t['tokens'])}** | **100%** | "
                f"**{t['avg_tokens']:.1f}** | | | | |")
    lay, tok, sp = stats["layout"], stats["tokenizer"], stats["splits"]["tokens"]
    total = max(sum(sp.values()), 1)
    lines = ["", "| Metric | Value |", "|---|---|", f"| Layout | {lay['layout']} |",
             f"| Context window | {lay['context_len']} tokens |"]
    lines += LAYOUTS.get(lay["layout"]).table_rows(lay)
    split_text = " / ".join(f"{100 * v / total:.1f}%" for v in sp.values() if v)
    lines += [f"| Train / Val{' / Test' if sp.get('test') else ''} tokens | {split_text} "
              f"({' / '.join(thousands(v) for v in sp.values() if v)}) |",
              f"| Token utilization | {100 * lay['utilization']:.1f}% (padding overhead "
              f"{100 * lay['padding_overhead']:.1f}%) |",
              f"| Tokenizer | {tok['kind']} ({tok['vocab_size']:,} ids), {tok['bytes_per_token']:.2f} bytes/token |",
              f"| Vocabulary coverage | {100 * tok['vocab_coverage']:.1f}% |"]
    for s in stats["sources"]:
        if "entropy_bits_per_symbol" in s:
            lines.append(f"| Entropy rate of {s['name']} | {s['entropy_bits_per_symbol']:.4f} bits/symbol "
                         f"({s['entropy_bits_per_symbol'] * np.log(2):.4f} nats) |")
    return "\n".join(rows + lines)


def stats_csv(stats: dict) -> str:
    from lmlab.tables import csv_text

    return csv_text(stats["sources"], CSV_FIELDS, number=lambda v: round(v, 6))


def write_stats(prepared, directory: Path, plot: bool = True) -> list[Path]:
    """stats.json, stats.csv and (with matplotlib, if `plot`) lengths.png in `directory`, atomically each."""
    from lmlab.io import atomic_write_text
    from lmlab.tables import json_text

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file; statistics go into a folder: give a folder path")
    written = [directory / "stats.json", directory / "stats.csv"]
    atomic_write_text(written[0], json_text(prepared.stats))
    atomic_write_text(written[1], stats_csv(prepared.stats))
    png = None
    if plot:
        from lmlab.figures.run import length_histogram

        png = length_histogram(prepared.lengths, prepared.stats["layout"]["context_len"], directory / "lengths.png")
    return written + ([png] if png else [])
