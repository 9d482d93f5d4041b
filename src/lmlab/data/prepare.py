"""Prepare: sources -> documents -> train/val/test -> tokenizer -> token ids -> layout, cached.

    prepared = prepare(cfg)              # reads, splits, trains the tokenizer, encodes (or reuses)
    prepared.splits["val"]["tinystories"] # a Stream (pack) or Rows (pad / chunk)
    prepared.train_batches(32, 256, seed) # the seeded training mixture
    prepared.stats                        # the statistics `lmlab prepare` prints

Splits are split.py's, layouts layout.py's, mixture weights mixture.py's, the token cache
cache.py's; this module sequences them, encodes and applies the caps.

Caps. `max_docs` keeps a source's first documents; `max_tokens` then keeps its first documents
up to that many tokens (a source that was cut keeps that share of each part). Tokenizers that
learn (char, bpe) learn from the training split before the token caps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from lmlab.data.cache import DamagedEntry, entry_for, load_entry, write_entry
from lmlab.data.layout import LAYOUTS, Rows, Stream, token_dtype
from lmlab.data.mixture import mixture_probs
from lmlab.data.prepared import Prepared
from lmlab.data.sources import Where, read_documents, source_facts
from lmlab.data.split import SPLITS, split_documents
from lmlab.errors import UserError
from lmlab.progress import Progress

__all__ = ["Prepared", "prepare"]


def prepare(cfg, tokenizer=None, *, progress: bool = True, force: bool = False) -> Prepared:
    """The run's data, from the cache when an identical preparation exists (see cache.py).
    With `tokenizer` (a resumed or loaded run's), encode with it instead of building one."""
    data, T = cfg.data, cfg.model.context_len
    specs = data.source_list()
    check_eval_sets(data, specs)
    stride = data.stride or max(T // 2, 1)
    LAYOUTS.get(data.layout).check(data, T, stride)
    entry = entry_for(cfg, specs, tokenizer, force)
    damage = None
    if data.cache and not force and (entry / "meta.json").is_file():
        try:
            prepared = load_entry(entry, T, tokenizer)
            check_windows(prepared.splits, T)  # a packed entry serves every context length
            return scoring(prepared, data)
        except DamagedEntry as err:
            damage = str(err)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a half-readable or outdated entry: prepare again and replace it
    prepared = rebuild(cfg, specs, tokenizer, stride, progress, entry, damage)
    if data.cache:
        try:
            write_entry(prepared, entry, data, specs)
        except OSError as err:  # disk full, read-only cache: the data is ready, only the cache is not
            from lmlab.io import warn

            warn(f"could not write the token cache {entry} ({err.strerror or err}); continuing without it")
    return scoring(prepared, data)


def scoring(prepared: Prepared, data) -> Prepared:
    """Which targets the rows' masks score: data.score_pads (a known mistake, reproduced on purpose)
    also scores padding. Not part of the cached arrays, so one cache entry serves both."""
    for parts in prepared.splits.values():
        for part in parts.values():
            if isinstance(part, Rows):
                part.score_pads = data.score_pads
    return prepared


def rebuild(cfg, specs, tokenizer, stride: int, progress: bool, entry: Path, damage: str | None) -> Prepared:
    """Build; after a damaged entry, say so once it is replaced (one line either way: a warning when
    the sources could be read again, else the refusal naming the entry)."""
    if damage is None:
        return build(cfg, specs, tokenizer, stride, progress)
    try:
        prepared = build(cfg, specs, tokenizer, stride, progress)
    except UserError as err:
        raise UserError(f"the token cache entry {entry} is damaged ({damage}) and its sources cannot be read "
                        f"again: {err}") from None
    from lmlab.io import warn

    warn(f"the token cache entry {entry} was damaged ({damage}); prepared it again from the sources")
    return prepared


def check_windows(splits: dict, T: int) -> None:
    for name, part in splits["train"].items():
        if isinstance(part, Stream) and len(part.tokens) <= T + 1:
            raise UserError(f"source {name!r} has {len(part.tokens)} training tokens, fewer than "
                            f"model.context_len={T} + 2; use more data or a shorter context")


def check_eval_sets(data, specs) -> None:
    from lmlab.data.config import EVAL_ONLY

    if data.allow_eval_sets:
        return
    for i, s in enumerate(specs):
        text = " ".join((s.label, s.path, s.dataset)).lower()
        hit = next((name for name in EVAL_ONLY if name in text), None)
        if hit and s.weight > 0 and s.split in ("auto", "train"):
            raise UserError(f"{Where(s, data, i)} looks like the {hit} benchmark; training on it leaks into its "
                            f"evaluation. Give it split = \"val\" or weight = 0 to evaluate on it, or set "
                            f"data.allow_eval_sets = true")


def build(cfg, specs, tokenizer, stride: int, progress: bool) -> Prepared:
    from lmlab.tokenizer import build_tokenizer

    data, T = cfg.data, cfg.model.context_len
    t0 = time.perf_counter()
    sources = []
    for i, src in enumerate(specs):
        docs = read_documents(src, data, i)
        texts, labels, was_cut = split_documents(docs, src, data, src.label)
        sources.append((src, texts, labels, was_cut, len(docs)))
    if tokenizer is None:
        train_text = "\n".join(t for src, texts, labels, _, _ in sources if src.weight > 0
                               for t, label in zip(texts, labels) if label == "train")
        if not train_text:
            raise UserError("no source has training documents (check data.sources[*].split and weight)")
        tk = cfg.tokenizer
        path = tk.path if not tk.path or Path(tk.path).expanduser().exists() else str(data.resolve(tk.path))
        tokenizer = build_tokenizer(tk.kind, train_text, path, vocab_size=tk.vocab_size,
                                    min_frequency=tk.min_frequency)
    dtype = token_dtype(tokenizer.vocab_size)
    eos, layout = tokenizer.eos_id, LAYOUTS.get(data.layout)
    splits: dict[str, dict] = {s: {} for s in SPLITS}
    source_stats, layout_counts, lengths_by_source = [], [], {}
    bar = EncodeBar(sum(len(t) for _, texts, _, _, _ in sources for t in texts), progress)
    for src, texts, labels, was_cut, n_docs in sources:
        flat, lengths = encode(tokenizer, texts, bar)
        keep = cap_tokens(lengths, labels, was_cut, src.max_tokens, data)
        labels_a = np.asarray(labels, dtype=object)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept_docs = n_docs if was_cut or not src.max_tokens else int((keep > 0).sum())
        words = kept_words(texts, lengths, keep)
        doc_lengths, split_words = [], {}
        for split in SPLITS:
            sel = [j for j in range(len(texts)) if labels_a[j] == split and keep[j] > 0]
            if not sel:
                continue
            split_words[f"{split}_words"] = int(round(words[sel].sum()))
            ids = np.concatenate([flat[offsets[j]:offsets[j] + keep[j]] for j in sel])
            lens = np.asarray([keep[j] for j in sel], dtype=np.int64)
            doc_lengths.append(lens)
            part, counts = layout.build(ids, lens, eos, T, stride, dtype)
            splits[split][src.label] = part
            if counts is not None:
                layout_counts.append(counts)
        all_lengths = np.concatenate(doc_lengths) if doc_lengths else np.zeros(0, np.int64)
        if was_cut:  # the pieces of one document are one sample
            all_lengths = np.asarray([all_lengths.sum()], dtype=np.int64) if n_docs == 1 else all_lengths
        lengths_by_source[src.label] = all_lengths
        source_stats.append({**_source_stats(src, splits, kept_docs, all_lengths), **split_words})
    bar.close()
    for split in ("train", "val"):
        if not splits[split]:
            raise UserError(f"the {split} split is empty: no source contributes documents to it "
                            f"(check data.sources[*].split, weight and the fractions)")
    check_windows(splits, T)
    weights = {s.label: s.weight for s in specs}
    probs = mixture_probs(splits["train"], weights, data.weight_by, T)
    from lmlab.data.stats import corpus_stats

    stats = corpus_stats(cfg, tokenizer, splits, source_stats, layout_counts, probs, stride,
                         time.perf_counter() - t0)
    return Prepared(tokenizer, splits, probs, stats, None, lengths_by_source)


def encode(tokenizer, texts: list[str], bar: "EncodeBar") -> tuple[np.ndarray, np.ndarray]:
    """Encode documents in batches of about 4 MB (each batch in parallel in the backend)."""
    flats, lens, batch, size = [], [], [], 0
    for text in texts + [None]:
        if text is not None:
            batch.append(text)
            size += len(text)
        if batch and (text is None or size >= 4_000_000):
            f, n = tokenizer.encode_batch(batch)
            flats.append(f)
            lens.append(n)
            bar.advance(size)
            batch, size = [], 0
    if not flats:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(flats), np.concatenate(lens)


def kept_words(texts: list[str], lengths: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Whitespace-separated words of each text, scaled by the share of its tokens the caps keep (the
    sanity checks state a perplexity per word with them)."""
    words = np.asarray([len(t.split()) for t in texts], dtype=np.float64)
    return words * np.divide(keep, lengths, out=np.ones(len(texts)), where=lengths > 0)


def cap_tokens(lengths: np.ndarray, labels: list[str], was_cut: bool, max_tokens: int, data) -> np.ndarray:
    """Tokens to keep of each text under the source's `max_tokens`."""
    keep = lengths.copy()
    if not max_tokens:
        return keep
    if was_cut:  # each split keeps its share of the cap
        share = {"train": 1 - data.val_fraction - data.test_fraction, "val": data.val_fraction,
                 "test": data.test_fraction}
        for j, label in enumerate(labels):
            keep[j] = min(keep[j], int(max_tokens * share[label]))
        return keep
    total = np.cumsum(lengths)
    keep[total > max_tokens] = 0
    if keep.sum() == 0 and len(keep):  # the first document alone is over the cap: keep its beginning
        keep[0] = max_tokens
    return keep


def _source_stats(src, splits, kept_docs: int, lengths: np.ndarray) -> dict:
    out = {"name": src.label, "kind": src.kind, "weight": src.weight, "split": src.split,
           "samples": kept_docs, "tokens": int(lengths.sum())}
    from lmlab.data.stats import length_summary

    out.update(length_summary(lengths))
    for split in SPLITS:
        part = splits[split].get(src.label)
        out[f"{split}_tokens"] = part.real_tokens if part is not None else 0
    out.update(source_facts(src))  # e.g. a synthetic source's entropy rate
    return out


class EncodeBar:
    """Encoding progress on stderr: MB done, MB/s and ETA (only for corpora worth waiting on)."""

    def __init__(self, total_chars: int, enabled: bool):
        enabled = enabled and total_chars > 8_000_000
        self.bar = Progress(total_chars, desc="encoding", unit="char", unit_scale=True, enabled=enabled)

    def advance(self, chars: int) -> None:
        self.bar.update(chars)

    def close(self) -> None:
        self.bar.close()
