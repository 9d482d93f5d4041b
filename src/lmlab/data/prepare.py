"""Prepare: sources -> documents -> train/val/test -> tokenizer -> token ids -> layout, cached.

    prepared = prepare(cfg)              # reads, splits, trains the tokenizer, encodes (or reuses)
    prepared.splits["val"]["tinystories"] # a Stream (pack) or Rows (pad / chunk)
    prepared.train_batches(32, 256, seed) # the seeded training mixture
    prepared.stats                        # the statistics `lmlab prepare` prints

Splits. A source with `split = "auto"` assigns whole documents to val and test by a seeded
permutation of its own (data.seed and the source's name): adding another source changes
nothing in it. A source of fewer than MIN_DOCS_TO_SPLIT documents (one file, the built-in
corpus) is cut instead: the last val_fraction of each document (at a line break) is val, the
test_fraction before it is test. A source with split = "train" / "val" / "test" goes there whole.

Caps. `max_docs` keeps a source's first documents; `max_tokens` then keeps its first documents
up to that many tokens (a source that was cut keeps that share of each part). Tokenizers that
learn (char, bpe) learn from the training split before the token caps.

Cache. Token arrays (uint16 or uint32, memory-mapped) live in `<cache>/tokens/<key>/`, the key
a hash of the sources (settings, file sizes and times), the tokenizer and the layout. An entry
is written in a temporary directory and renamed into place, so a crash leaves nothing half-made.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lmlab.data.layout import Rows, Stream, pack, rows_layout, token_dtype
from lmlab.data.sources import Where, digest, fingerprint, read_documents
from lmlab.errors import UserError

if TYPE_CHECKING:
    from lmlab.data.batches import MixtureBatches

CACHE_VERSION = 2  # bump when what an entry holds, or its source labels, change
MIN_DOCS_TO_SPLIT = 20
SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    tokenizer: object
    splits: dict[str, dict[str, Stream | Rows]]  # split -> source label -> part (non-empty parts only)
    probs: dict[str, float]  # training: probability that a row comes from each source
    stats: dict
    directory: Path | None = None
    lengths: dict[str, np.ndarray] = field(default_factory=dict)  # source -> document lengths (tokens)

    def train_batches(self, batch_size: int, context_len: int, seed: int) -> "MixtureBatches":
        from lmlab.data.batches import MixtureBatches

        parts = self.splits["train"]
        names = [n for n in parts if self.probs.get(n, 0) > 0]
        return MixtureBatches([parts[n] for n in names], [self.probs[n] for n in names],
                              batch_size, context_len, seed)

    def train_tokens(self) -> torch.Tensor:
        """Every training token (count-based models fit on these), as int64."""
        arrays = [p.real_ids() for n, p in self.splits["train"].items() if self.probs.get(n, 0) > 0]
        return torch.from_numpy(np.concatenate(arrays).astype(np.int64))


def prepare(cfg, tokenizer=None, *, progress: bool = True, force: bool = False) -> Prepared:
    """The run's data, from the cache when an identical preparation exists (see module doc).
    With `tokenizer` (a resumed or loaded run's), encode with it instead of building one."""
    data, T = cfg.data, cfg.model.context_len
    specs = data.source_list()
    check_eval_sets(data, specs)
    stride = data.stride or max(T // 2, 1)
    if data.layout == "chunk" and stride > T:
        raise UserError(f"data.stride={data.stride} is larger than model.context_len={T}; windows would skip "
                        f"tokens (use at most {T})")
    base_key = digest({"version": CACHE_VERSION, "data": data_identity(data),
                       "sources": [fingerprint(s, data) for s in specs], "tokenizer": cfg.tokenizer.to_dict(),
                       "context_len": T if data.layout != "pack" else None})
    root = data.cache_root() / "tokens"
    entry = root / base_key[:20]
    if tokenizer is not None and data.cache and not force:
        given = _sha(tokenizer)
        if _tokenizer_sha(entry) != given:
            entry = root / digest([base_key, given])[:20]  # a different tokenizer, its own entry
    if data.cache and not force and (entry / "meta.json").is_file():
        try:
            return load_entry(entry, tokenizer)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a damaged entry: prepare again and replace it
    prepared = build(cfg, specs, tokenizer, stride, progress)
    if data.cache:
        try:
            write_entry(prepared, entry, data, specs)
        except OSError as err:  # disk full, read-only cache: the data is ready, only the cache is not
            from lmlab.io import warn

            warn(f"could not write the token cache {entry} ({err.strerror or err}); continuing without it")
    return prepared


def data_identity(data) -> dict:
    """The data settings that change the prepared arrays (not where files or the cache live)."""
    values = data.to_dict()
    for k in ("cache", "cache_dir", "root", "sources", "source", "path", "allow_eval_sets"):
        values.pop(k)
    return values


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


# --- building -------------------------------------------------------------------------------


def split_documents(docs: list[str], src, data, name: str) -> tuple[list[str], list[str], bool]:
    """(texts, split of each text, was_cut): whole documents assigned, or each document cut."""
    if src.split != "auto":
        return docs, [src.split] * len(docs), False
    vf, tf = data.val_fraction, data.test_fraction
    if len(docs) < MIN_DOCS_TO_SPLIT:
        texts, labels = [], []
        for doc in docs:
            parts = cut_tail(doc, vf, tf)
            for label, text in zip(SPLITS, parts):
                if text:
                    texts.append(text)
                    labels.append(label)
        return texts, labels, True
    n = len(docs)
    n_val, n_test = max(round(n * vf), 1), round(n * tf)
    rng = np.random.default_rng([data.seed, int(digest(name)[:8], 16)])
    order = rng.permutation(n)
    labels = np.full(n, "train", dtype=object)
    labels[order[:n_val]] = "val"
    labels[order[n_val:n_val + n_test]] = "test"
    return docs, labels.tolist(), False


def cut_tail(text: str, val_fraction: float, test_fraction: float = 0.0) -> tuple[str, str, str]:
    """(train, val, test) pieces of one text: ... train | test | val, cut at line breaks when near."""
    def cut_at(fraction_from_end: float) -> int:
        cut = int(len(text) * (1.0 - fraction_from_end))
        newline = text.rfind("\n", 0, cut)
        return newline + 1 if newline > cut * 0.9 else cut

    val_start = cut_at(val_fraction)
    test_start = cut_at(val_fraction + test_fraction) if test_fraction else val_start
    train, test, val = text[:test_start], text[test_start:val_start], text[val_start:]
    if len(val) < 2 or len(train) < 2:
        raise UserError(f"a document of {len(text)} characters is too short to split into train and val")
    return train, val, test


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
    eos = tokenizer.eos_id
    splits: dict[str, dict] = {s: {} for s in SPLITS}
    source_stats, layout_counts, lengths_by_source = [], [], {}
    bar = EncodeBar(sum(len(t) for _, texts, _, _, _ in sources for t in texts), progress)
    for src, texts, labels, was_cut, n_docs in sources:
        flat, lengths = encode(tokenizer, texts, bar)
        keep = cap_tokens(lengths, labels, was_cut, src.max_tokens, data)
        labels_a = np.asarray(labels, dtype=object)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept_docs = n_docs if was_cut or not src.max_tokens else int((keep > 0).sum())
        doc_lengths = []
        for split in SPLITS:
            sel = [j for j in range(len(texts)) if labels_a[j] == split and keep[j] > 0]
            if not sel:
                continue
            ids = np.concatenate([flat[offsets[j]:offsets[j] + keep[j]] for j in sel])
            lens = np.asarray([keep[j] for j in sel], dtype=np.int64)
            doc_lengths.append(lens)
            if data.layout == "pack":
                splits[split][src.label] = pack(ids, lens, eos, dtype)
            else:
                part, counts = rows_layout(ids, lens, eos, T, stride, data.layout, dtype)
                splits[split][src.label] = part
                layout_counts.append(counts)
        all_lengths = np.concatenate(doc_lengths) if doc_lengths else np.zeros(0, np.int64)
        if was_cut:  # the pieces of one document are one sample
            all_lengths = np.asarray([all_lengths.sum()], dtype=np.int64) if n_docs == 1 else all_lengths
        lengths_by_source[src.label] = all_lengths
        source_stats.append(_source_stats(src, splits, kept_docs, all_lengths))
    bar.close()
    for split in ("train", "val"):
        if not splits[split]:
            raise UserError(f"the {split} split is empty: no source contributes documents to it "
                            f"(check data.sources[*].split, weight and the fractions)")
    for name, part in splits["train"].items():
        if isinstance(part, Stream) and len(part.tokens) <= T + 1:
            raise UserError(f"source {name!r} has {len(part.tokens)} training tokens, fewer than "
                            f"model.context_len={T} + 2; use more data or a shorter context")
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


def mixture_probs(parts: dict, weights: dict[str, float], weight_by: str, T: int) -> dict[str, float]:
    """Probability that a training row comes from each source, so that the expected share of
    training tokens (weight_by=tokens) or documents (docs) is weight / total weight, or, for
    weight_by=size, the source's share of all training tokens times its weight."""
    raw = {}
    for name, part in parts.items():
        w = weights.get(name, 0.0)
        if w <= 0:
            continue
        if weight_by == "tokens":
            raw[name] = w / max(part.tokens_per_unit(T), 1e-9)
        elif weight_by == "docs":
            raw[name] = w / max(part.docs_per_unit(T), 1e-9)
        else:
            raw[name] = w * part.size / max(part.tokens_per_unit(T), 1e-9)
    total = sum(raw.values())
    if total <= 0:
        raise UserError("no source with weight > 0 has training documents; nothing to train on")
    return {k: v / total for k, v in raw.items()}


def _source_stats(src, splits, kept_docs: int, lengths: np.ndarray) -> dict:
    out = {"name": src.label, "kind": src.kind, "weight": src.weight, "split": src.split,
           "samples": kept_docs, "tokens": int(lengths.sum())}
    from lmlab.data.stats import length_summary

    out.update(length_summary(lengths))
    for split in SPLITS:
        part = splits[split].get(src.label)
        out[f"{split}_tokens"] = part.real_tokens if part is not None else 0
    if src.kind == "synthetic" and src.generator == "markov":
        from lmlab.data.synthetic import markov_entropy

        out["entropy_bits_per_symbol"] = markov_entropy(src)
    return out


class EncodeBar:
    """Encoding progress on stderr: MB done, MB/s and ETA (only for corpora worth waiting on)."""

    def __init__(self, total_chars: int, enabled: bool):
        from lmlab.train.progress import Progress

        self.total = max(total_chars, 1)
        self.done = 0
        self.t0 = time.perf_counter()
        self.enabled = enabled and total_chars > 8_000_000
        self.bar = Progress(self.total, enabled=self.enabled)

    def advance(self, chars: int) -> None:
        self.done += chars
        if self.enabled:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update_task(self.done, f"encoding {self.done / 1e6:.1f}/{self.total / 1e6:.1f} M chars "
                                            f"{rate / 1e6:.1f} M chars/s")

    def close(self) -> None:
        if self.enabled:
            self.bar.close()


# --- the cache ------------------------------------------------------------------------------


def _sha(tokenizer) -> str:
    return digest({"kind": tokenizer.kind, **tokenizer.to_json()})


def _tokenizer_sha(entry: Path) -> str | None:
    try:
        return json.loads((entry / "meta.json").read_text())["tokenizer_sha"]
    except (OSError, ValueError, KeyError):
        return None


def write_entry(prepared: Prepared, entry: Path, data, specs) -> None:
    from lmlab.io import fault_point
    from lmlab.tokenizer import save_tokenizer

    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        parts = []
        for split, by_source in prepared.splits.items():
            for i, (name, part) in enumerate(by_source.items()):
                stem = f"{split}-{i}"
                info = {"split": split, "name": name, "stem": stem, "docs": part.docs, "layout": part.layout}
                if isinstance(part, Stream):
                    np.save(tmp / f"{stem}.tokens.npy", part.tokens)
                else:
                    np.save(tmp / f"{stem}.rows.npy", part.rows)
                    np.save(tmp / f"{stem}.n_real.npy", part.n_real)
                    np.save(tmp / f"{stem}.score_from.npy", part.score_from)
                fault_point("cache:write")
                parts.append(info)
        for i, (name, lengths) in enumerate(prepared.lengths.items()):
            np.save(tmp / f"lengths-{i}.npy", lengths)
        save_tokenizer(prepared.tokenizer, tmp)
        from lmlab.data.stats import write_stats

        write_stats(prepared, tmp, plot=False)  # the histogram is drawn when asked for (prepare, train)
        meta = {"version": CACHE_VERSION, "parts": parts, "probs": prepared.probs,
                "lengths": list(prepared.lengths), "stats": prepared.stats,
                "tokenizer_sha": _sha(prepared.tokenizer), "sources": [s.to_dict() for s in specs]}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks the entry complete
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
        prepared.directory = entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_entry(entry: Path, tokenizer=None) -> Prepared:
    from lmlab.tokenizer import load_tokenizer

    meta = json.loads((entry / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError("old cache version")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(entry)
    splits: dict[str, dict] = {s: {} for s in SPLITS}
    for info in meta["parts"]:
        stem = entry / info["stem"]
        if info["layout"] == "pack":
            part = Stream(np.load(f"{stem}.tokens.npy", mmap_mode="r"), info["docs"])
        else:
            part = Rows(np.load(f"{stem}.rows.npy", mmap_mode="r"), np.load(f"{stem}.n_real.npy"),
                        np.load(f"{stem}.score_from.npy"), info["docs"], info["layout"])
        splits[info["split"]][info["name"]] = part
    lengths = {name: np.load(entry / f"lengths-{i}.npy") for i, name in enumerate(meta["lengths"])}
    stats = dict(meta["stats"], cached=True)
    return Prepared(tokenizer, splits, meta["probs"], stats, entry, lengths)

