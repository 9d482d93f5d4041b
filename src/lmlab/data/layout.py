"""Layouts: how one source's documents become model rows of `context_len + 1` tokens.

pack   documents joined by <|endoftext|> into one stream; rows are windows cut anywhere in it.
       No padding, every token trains (the default, and nanoGPT's way).
pad    one document per row, `<|endoftext|>` appended, right-padded; longer documents are cut at
       the window. Padding is excluded from the loss by a mask, and from attention by causality
       (a real token never attends to the pads after it).
chunk  like pad, but a document longer than the window is split into overlapping windows that
       start every `stride` tokens; in each window after the first, only the tokens past the
       overlap are scored, so every token is scored once and the overlap serves as context.

A layout is held by a part: `Stream` (pack) or `Rows` (pad, chunk). Both sample training rows
from a seeded generator and yield evaluation batches `(x, y, mask)`; `mask` is None for a stream.
Each layout is a registered class (LAYOUTS, `data.layout`) that builds its parts, checks its
settings, loads its parts from the cache and describes itself in the corpus statistics; nothing
else branches on the layout's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from lmlab.errors import UserError
from lmlab.registry import Registry

Batch = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]
LAYOUTS: Registry = Registry("data.layout")


def token_dtype(vocab_size: int):
    """uint16 below 65,536 ids, else uint32: half or a quarter of int64's bytes on disk and in memory."""
    return np.uint16 if vocab_size <= 65536 else np.uint32


def _long(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def _spread(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


class Stream:
    """The pack layout: one token stream."""

    layout = "pack"

    def __init__(self, tokens: np.ndarray, docs: int = 1):
        self.tokens, self.docs = tokens, docs

    @property
    def real_tokens(self) -> int:
        return len(self.tokens)

    @property
    def size(self) -> int:
        """Tokens this part trains on in one pass."""
        return len(self.tokens)

    def real_ids(self) -> np.ndarray:
        """Every token of the part, padding left out."""
        return self.tokens

    def max_id(self) -> int:
        return int(self.tokens.max()) if len(self.tokens) else -1

    def tokens_per_unit(self, T: int) -> float:
        return float(T)

    def docs_per_unit(self, T: int) -> float:
        return T * self.docs / max(len(self.tokens), 1)

    def units(self, T: int) -> int:
        return max(len(self.tokens) - T, 0)

    def draw(self, gen: torch.Generator, n: int, T: int) -> np.ndarray:
        """n random window starts (what `take` turns into rows)."""
        high = len(self.tokens) - T - 1
        return torch.randint(0, high + 1, (n,), generator=gen).numpy()

    def take(self, starts: np.ndarray, T: int) -> Batch:
        windows = _long(self.tokens[starts[:, None] + np.arange(T + 1)])  # (n, T+1)
        return windows[:, :-1], windows[:, 1:], None

    def sample(self, gen: torch.Generator, n: int, T: int) -> Batch:
        return self.take(self.draw(gen, n, T), T)

    def save(self, stem: Path) -> None:
        np.save(f"{stem}.tokens.npy", self.tokens)

    @classmethod
    def load(cls, stem: Path, info: dict) -> "Stream":
        return cls(np.load(f"{stem}.tokens.npy", mmap_mode="r"), info["docs"])

    def eval_batches(self, batch_size: int, T: int, max_tokens: int = 0) -> Iterator[Batch]:
        """Non-overlapping windows; each token after the first is scored once. With max_tokens,
        windows spread evenly over the whole split (not just its beginning)."""
        usable = len(self.tokens) - 1
        if usable < 1:
            return
        T = min(T, usable)
        n = usable // T
        pick = _spread(n, max(max_tokens // T, 1)) if max_tokens else np.arange(n)
        offsets = np.arange(T + 1)
        for i in range(0, len(pick), batch_size):
            windows = _long(self.tokens[pick[i:i + batch_size, None] * T + offsets])
            yield windows[:, :-1], windows[:, 1:], None


class Rows:
    """The pad and chunk layouts: rows of T+1 tokens with the real length and first scored target.

    `score_pads` (data.score_pads, set by `prepare`) also scores the padding targets: a known mistake,
    kept only to reproduce it (the loss then rewards predicting pad after pad)."""

    score_pads = False

    def __init__(self, rows: np.ndarray, n_real: np.ndarray, score_from: np.ndarray, docs: int, layout: str):
        self.rows, self.n_real, self.score_from, self.docs, self.layout = rows, n_real, score_from, docs, layout

    @property
    def real_tokens(self) -> int:
        return int(self.n_real.sum())

    @property
    def scored(self) -> int:
        return int(np.clip(self.n_real.astype(np.int64) - 1 - self.score_from, 0, None).sum())

    @property
    def size(self) -> int:
        return self.scored

    def real_ids(self) -> np.ndarray:
        return self.rows[np.arange(self.rows.shape[1])[None, :] < self.n_real[:, None]]

    def max_id(self) -> int:
        return int(self.rows.max()) if self.rows.size else -1  # pads are eos or 0, in the vocabulary

    def tokens_per_unit(self, T: int) -> float:
        return self.scored / max(len(self.rows), 1)

    def docs_per_unit(self, T: int) -> float:
        return self.docs / max(len(self.rows), 1)

    def units(self, T: int) -> int:
        return len(self.rows)

    def save(self, stem: Path) -> None:
        np.save(f"{stem}.rows.npy", self.rows)
        np.save(f"{stem}.n_real.npy", self.n_real)
        np.save(f"{stem}.score_from.npy", self.score_from)

    @classmethod
    def load(cls, stem: Path, info: dict) -> "Rows":
        return cls(np.load(f"{stem}.rows.npy", mmap_mode="r"), np.load(f"{stem}.n_real.npy"),
                   np.load(f"{stem}.score_from.npy"), info["docs"], info["layout"])

    def _batch(self, idx: np.ndarray) -> Batch:
        rows = _long(self.rows[idx])
        j = torch.arange(rows.shape[1] - 1)
        mask = j >= _long(self.score_from[idx])[:, None]
        if not self.score_pads:
            mask &= j < _long(self.n_real[idx])[:, None] - 1  # the targets past the real tokens are padding
        return rows[:, :-1], rows[:, 1:], mask

    def draw(self, gen: torch.Generator, n: int, T: int) -> np.ndarray:
        return torch.randint(0, len(self.rows), (n,), generator=gen).numpy()

    def take(self, idx: np.ndarray, T: int) -> Batch:
        return self._batch(idx)

    def sample(self, gen: torch.Generator, n: int, T: int) -> Batch:
        return self.take(self.draw(gen, n, T), T)

    def eval_batches(self, batch_size: int, T: int, max_tokens: int = 0) -> Iterator[Batch]:
        per_row = max(self.tokens_per_unit(T), 1.0)
        pick = _spread(len(self.rows), max(int(max_tokens / per_row), 1)) if max_tokens else np.arange(len(self.rows))
        for i in range(0, len(pick), batch_size):
            yield self._batch(pick[i:i + batch_size])


def pack(flat: np.ndarray, lengths: np.ndarray, eos_id: int | None, dtype) -> Stream:
    """Documents joined with <|endoftext|> between them (one document: its tokens unchanged)."""
    if eos_id is None or len(lengths) <= 1:
        return Stream(flat.astype(dtype), len(lengths))
    ends = np.cumsum(lengths)
    out = np.insert(flat, ends[:-1], eos_id)  # an id after every document but the last
    return Stream(out.astype(dtype), len(lengths))


def rows_layout(flat: np.ndarray, lengths: np.ndarray, eos_id: int | None, T: int, stride: int,
                layout: str, dtype) -> tuple[Rows, dict]:
    """pad / chunk rows; returns the part and layout counts (rows, padded, chunked, truncated)."""
    width = T + 1
    pad_id = eos_id if eos_id is not None else 0
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    row_doc, row_off, row_len, row_from = [], [], [], []
    chunked = truncated = 0
    for d, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        total = n + (eos_id is not None)  # the document plus its end-of-text
        if total <= width or not LAYOUTS.get(layout).chunks:
            row_doc.append(d), row_off.append(0), row_len.append(min(total, width)), row_from.append(0)
            truncated += total > width
            continue
        chunked += 1
        off = 0
        while True:
            row_doc.append(d), row_off.append(off), row_len.append(min(width, total - off))
            row_from.append(0 if off == 0 else width - 1 - stride)
            if off + width >= total:
                break
            off += stride
    n_rows = len(row_doc)
    rows = np.full((n_rows, width), pad_id, dtype=dtype)
    doc_with_eos = np.insert(flat, np.cumsum(lengths), pad_id) if eos_id is not None else flat
    shift = np.arange(len(lengths)) if eos_id is not None else np.zeros(len(lengths), dtype=np.int64)
    base = starts + shift  # where each document starts in doc_with_eos
    row_len_a = np.asarray(row_len, dtype=np.int64)
    for r in range(n_rows):  # one slice copy per row
        a = base[row_doc[r]] + row_off[r]
        rows[r, :row_len_a[r]] = doc_with_eos[a:a + row_len_a[r]]
    part = Rows(rows, row_len_a.astype(np.int32), np.asarray(row_from, dtype=np.int32), len(lengths), layout)
    counts = {"rows": n_rows, "padded_rows": int((row_len_a < width).sum()), "chunked_docs": chunked,
              "truncated_docs": truncated}
    return part, counts


# --- the layouts, one registered class each ----------------------------------------------------

def thousands(x: float) -> str:
    """1234567 -> "1,234,567" (tables)."""
    return f"{x:,.0f}"


def register_layout(name: str, doc: str):
    """Register one instance of the decorated Layout class under `name`."""
    def add(cls: type) -> type:
        LAYOUTS.register(name, doc)(cls())
        return cls

    return add


class Layout:
    """How documents become rows; subclasses are registered under their `data.layout` name."""

    name = ""
    part_class: type = Stream
    uses_context = True  # the arrays depend on model.context_len (so the cache key does)
    chunks = False  # a long document is split into overlapping windows rather than cut

    def check(self, data, T: int, stride: int) -> None:
        """Fail on settings this layout cannot honour."""

    def build(self, ids: np.ndarray, lens: np.ndarray, eos_id: int | None, T: int, stride: int,
              dtype) -> tuple[Stream | Rows, dict | None]:
        """A part from documents' tokens (flat) and lengths, plus the layout's counts (or None)."""
        raise NotImplementedError

    def stats(self, splits: dict, counts: list[dict], T: int, stride: int) -> dict:
        """The layout's numbers for the corpus statistics (rows, padding, utilization)."""
        raise NotImplementedError

    def table_rows(self, lay: dict) -> list[str]:
        """Markdown table rows describing `stats()`'s numbers."""
        raise NotImplementedError

    def load(self, stem: Path, info: dict) -> Stream | Rows:
        return self.part_class.load(stem, info)


@register_layout("pack", "documents joined by <|endoftext|> into one stream, cut into windows anywhere")
class Pack(Layout):
    name = "pack"
    uses_context = False

    def check(self, data, T, stride):
        if data.score_pads:
            raise UserError("data.score_pads=true needs padding to score: use data.layout=\"pad\" (or \"chunk\"); "
                            "the pack layout has none")

    def build(self, ids, lens, eos_id, T, stride, dtype):
        return pack(ids, lens, eos_id, dtype), None

    def stats(self, splits, counts, T, stride):
        train_tokens = sum(p.real_tokens for p in splits["train"].values())
        return {"layout": self.name, "context_len": T, "rows": train_tokens // T, "padded_rows": 0,
                "chunked_docs": 0, "truncated_docs": 0, "utilization": 1.0}

    def table_rows(self, lay):
        return [f"| Training windows per epoch | {thousands(lay['rows'])} |"]


@register_layout("pad", "one document per row, right-padded (masked out of the loss); longer ones cut")
class Pad(Layout):
    name = "pad"
    part_class = Rows

    def build(self, ids, lens, eos_id, T, stride, dtype):
        return rows_layout(ids, lens, eos_id, T, stride, self.name, dtype)

    def stats(self, splits, counts, T, stride):
        lay = {"layout": self.name, "context_len": T}
        for key in ("rows", "padded_rows", "chunked_docs", "truncated_docs"):
            lay[key] = sum(c[key] for c in counts)
        real = sum(p.real_tokens for parts in splits.values() for p in parts.values())
        slots = sum(len(p.rows) for parts in splits.values() for p in parts.values()) * (T + 1)
        lay["utilization"] = real / max(slots, 1)
        return lay

    def table_rows(self, lay):
        rows_n = max(lay["rows"], 1)
        lines = [f"| Total rows | {thousands(lay['rows'])} |",
                 f"| Padded (short texts) | {thousands(lay['padded_rows'])} ({100 * lay['padded_rows'] / rows_n:.1f}%) |",
                 f"| Chunked (long texts) | {thousands(lay['chunked_docs'])} documents |"]
        if lay["truncated_docs"]:
            lines.append(f"| Cut at the window (pad) | {thousands(lay['truncated_docs'])} documents |")
        return lines


@register_layout("chunk", "like pad, but long documents split into overlapping windows every data.stride")
class Chunk(Pad):
    name = "chunk"
    chunks = True

    def check(self, data, T, stride):
        if stride > T:
            raise UserError(f"data.stride={data.stride} is larger than model.context_len={T}; windows would skip "
                            f"tokens (use at most {T})")

    def stats(self, splits, counts, T, stride):
        lay = super().stats(splits, counts, T, stride)
        return {"layout": lay.pop("layout"), "context_len": lay.pop("context_len"), "stride": stride, **lay}

    def table_rows(self, lay):
        return [f"| Stride | {lay['stride']} |"] + super().table_rows(lay)
