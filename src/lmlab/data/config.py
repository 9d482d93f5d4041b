"""The `[data]` section: which sources, how they are mixed, split and laid out into rows.

A run reads one or more sources, each a `[[data.sources]]` table:

    [data]
    layout = "pack"            # pack | pad | chunk
    weight_by = "tokens"       # tokens | docs | size

    [[data.sources]]
    kind = "text"
    path = "tinystories/tinystories_train_sample_2MiB.txt"
    docs = "delimiter"         # file | line | paragraph | delimiter
    weight = 0.8

    [[data.sources]]
    kind = "synthetic"
    generator = "counting"
    weight = 0.2

With no `sources`, `data.source` / `data.path` name a single one (`--data PATH` sets them).
Relative paths are looked up under `data.root` (default: $LMLAB_DATA, else the current directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.config_base import Section, require, require_choice
from lmlab.data.documents import DOC_MODES
from lmlab.data.sources import SOURCES
from lmlab.data.synthetic import GENERATORS
from lmlab.errors import UserError

SPLITS = ("auto", "train", "val", "test")
GENERIC_STEMS = ("train", "test", "valid", "validation", "val", "dev", "input", "data", "text", "all")
# Benchmarks a user evaluates on; training on them by default would leak answers into scores.
EVAL_ONLY = ("hellaswag", "arc_easy", "arc_challenge", "arc-easy", "arc-challenge", "ai2_arc", "boolq",
             "piqa", "winogrande")


def valid_encoding(name: str) -> bool:
    import codecs

    if name == "utf-8-replace":
        return True
    try:
        codecs.lookup(name)
        return True
    except LookupError:
        return False


@dataclass
class SourceConfig(Section):
    """One source of documents. Fields after `max_tokens` apply to some kinds only (see each comment)."""

    kind: str = "text"  # builtin | text | jsonl | json | csv | parquet | hf | synthetic
    name: str = ""  # label in statistics and per-source metrics; "" = from the path, dataset or generator
    path: str = ""  # text: a file, directory or glob; jsonl/json/csv/parquet: a file or glob; hf: data_files
    weight: float = 1.0  # share of training (see data.weight_by); 0 = evaluation only
    split: str = "auto"  # auto (data.val_fraction / test_fraction) | train | val | test (the whole source)
    max_docs: int = 0  # keep the first N documents; 0 = all
    max_tokens: int = 0  # keep the first documents up to N tokens; 0 = all
    docs: str = "file"  # text: one document per file | line | paragraph (blank-line separated) | delimiter
    delimiter: str = "<|endoftext|>"  # text with docs = "delimiter"
    field: str = "text"  # jsonl/json/csv/parquet/hf: the column holding the text (when no template)
    template: str = ""  # rows -> text, e.g. "{question}\n{answer}"; "" = the `field` column
    columns: str = ""  # csv without a header row: comma-separated column names
    dataset: str = ""  # hf: dataset name on the Hub, or a builder (json, text, csv, parquet) with `path`
    subset: str = ""  # hf: configuration name (e.g. wikitext-2-raw-v1)
    hf_split: str = "train"  # hf: the dataset's split to read
    streaming: bool = False  # hf: stream rows instead of downloading the whole split (use with max_docs)
    revision: str = ""  # hf: a branch, tag or commit
    generator: str = "counting"  # synthetic: counting | markov | copy | induction
    n_docs: int = 2000  # synthetic: documents to generate
    length: int = 64  # synthetic: symbols per document (counting: at most)
    symbols: int = 16  # synthetic: alphabet size (markov, copy, induction); letters a.. then digits
    order: int = 1  # synthetic markov: the chain's order
    alpha: float = 0.5  # synthetic markov: Dirichlet concentration of each transition row (lower = less entropy)
    seed: int = 0  # synthetic: generator seed
    encoding: str = "utf-8"  # text: the files' encoding (a Python codec, e.g. latin-1); utf-8-replace = U+FFFD for bad bytes

    _section = "data.sources"

    def __post_init__(self) -> None:
        require(self.weight >= 0, self, "weight", "a non-negative float")
        require_choice(self, "split", SPLITS)
        require_choice(self, "docs", DOC_MODES.names())
        require_choice(self, "generator", GENERATORS.names())
        require(self.docs != "delimiter" or self.delimiter != "", self, "delimiter", "a non-empty string")
        for name in ("max_docs", "max_tokens"):
            require(getattr(self, name) >= 0, self, name, "0 (no cap) or a positive integer")
        for name in ("n_docs", "length", "order"):
            require(getattr(self, name) >= 1, self, name, "a positive integer")
        require(2 <= self.symbols <= 36, self, "symbols", "an integer in [2, 36] (letters a-z, then digits)")
        require(self.alpha > 0, self, "alpha", "a positive float")
        require(valid_encoding(self.encoding), self, "encoding", "a Python codec name (utf-8, latin-1, cp1252, ...) "
                "or utf-8-replace")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        own = getattr(SOURCES[self.kind], "label", None) if self.kind in SOURCES else None
        named = own(self) if own else None  # a kind may name its documents (a generator, a dataset)
        if named:
            return named
        if self.path:
            path = Path(self.path.rstrip("/*"))
            # "mix/gsm8k/train.jsonl" is gsm8k, not train: split-like file names take their folder's
            if path.stem.lower() in GENERIC_STEMS and path.parent.name:
                return path.parent.name
            return path.stem or self.kind
        return self.kind

    def non_defaults(self) -> dict:
        base = SourceConfig()
        return {k: v for k, v in self.to_dict().items() if k == "kind" or v != getattr(base, k)}


@dataclass
class DataConfig(Section):
    """Where the text comes from, how sources mix, and how it is split and laid out."""

    source: str = "builtin"  # single-source shorthand (when `sources` is empty): builtin | text | ...
    path: str = ""  # the file for the single-source shorthand
    encoding: str = "utf-8"  # the shorthand source's text encoding (see data.sources.N.encoding)
    sources: list[SourceConfig] = field(default_factory=list)  # [[data.sources]] tables; see SourceConfig
    root: str = ""  # relative source paths are resolved here; "" = $LMLAB_DATA, else the current directory
    weight_by: str = "tokens"  # weights are shares of training tokens | of documents | size (x natural size)
    val_fraction: float = 0.1  # of each `auto` source's documents (a one-document source: its last part)
    test_fraction: float = 0.0  # likewise, for the test split
    seed: int = 1234  # which documents go to which split
    layout: str = "pack"  # pack (documents joined by <|endoftext|>, cut into windows) | pad | chunk
    stride: int = 0  # chunk: start of each next window of a long document; 0 = model.context_len // 2
    allow_eval_sets: bool = False  # let benchmark sets (HellaSwag, ARC, BoolQ, PIQA, WinoGrande) train
    score_pads: bool = False  # pad / chunk: ALSO score the padding targets in training and evaluation. WRONG on
    # purpose, for reproducing a known mistake only (LLM-Lite's perplexity 1.17: pad -> pad predictions counted);
    # `lmlab report`'s sanity checks fail every run that sets it
    cache: bool = True  # keep encoded tokens in the cache and reuse them
    cache_dir: str = ""  # "" = $LMLAB_CACHE, else ~/.cache/lmlab

    _section = "data"

    def __post_init__(self) -> None:
        require(0.0 < self.val_fraction < 0.5, self, "val_fraction", "a float in (0, 0.5)")
        require(valid_encoding(self.encoding), self, "encoding", "a Python codec name (utf-8, latin-1, ...) "
                "or utf-8-replace")
        require(0.0 <= self.test_fraction < 0.5, self, "test_fraction", "a float in [0, 0.5)")
        require(self.stride >= 0, self, "stride", "0 (= context_len // 2) or a positive integer")
        if self.test_fraction and self.sources and all(s.split != "auto" for s in self.sources):
            raise UserError(f"data.test_fraction={self.test_fraction} has no effect: every source has its own split "
                            f"({', '.join(f'{s.label}={s.split}' for s in self.sources)}); give a source "
                            f"split = \"test\" (or split = \"auto\" to cut test_fraction of it)")
        if self.sources and sum(s.weight for s in self.sources) <= 0:
            raise UserError("data.sources: the total weight is 0; give at least one source a weight > 0")
        labels = [s.label for s in self.sources]
        dup = next((x for x in labels if labels.count(x) > 1), None)
        if dup is not None:
            raise UserError(f"data.sources: two sources are called {dup!r}; give each a distinct `name`")

    def source_list(self) -> list[SourceConfig]:
        """The sources to read: `sources`, or the single-source shorthand."""
        return list(self.sources) or [SourceConfig(kind=self.source, path=self.path, encoding=self.encoding)]

    def resolve(self, path: str) -> Path:
        """A source path: absolute, or relative to data.root / $LMLAB_DATA / the current directory."""
        p = Path(os.path.expandvars(path)).expanduser()
        if p.is_absolute():
            return p
        root = self.root or os.environ.get("LMLAB_DATA", "")
        return (Path(root).expanduser() / p) if root else p

    def cache_root(self) -> Path:
        return Path(self.cache_dir or os.environ.get("LMLAB_CACHE", "") or "~/.cache/lmlab").expanduser()
