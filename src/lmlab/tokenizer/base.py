"""The Tokenizer contract every vocabulary honours, and how a run saves and reloads one.

A tokenizer turns text into ids and back, knows its special ids, and knows the UTF-8 byte
length of each token so that losses convert to bits per byte, a metric that compares runs
with different vocabularies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lmlab.errors import UserError
from lmlab.registry import Registry

TOKENIZERS: Registry = Registry("tokenizer.kind")
FILE_NAME = "tokenizer.json"


@runtime_checkable
class Tokenizer(Protocol):
    kind: str
    vocab_size: int
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def encode_array(self, text: str) -> np.ndarray:
        """The ids of a long text as an integer array (fast path for corpora)."""
        ...

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Many documents at once (in parallel where the backend can): their ids concatenated,
        and each document's number of ids."""
        ...

    def token_byte_lengths(self) -> np.ndarray:
        """UTF-8 bytes each id stands for (0 for special tokens); shape (vocab_size,)."""
        ...

    def to_json(self) -> dict[str, Any]: ...


def build_tokenizer(kind: str, train_text: str, path: str = "", **options: Any) -> Tokenizer:
    """Make the tokenizer named by `tokenizer.kind`: fitted to the training text if it learns,
    read from `path` if it is a pretrained file. `options`: vocab_size, min_frequency."""
    return TOKENIZERS.get(kind).from_corpus(train_text, path=path, **options)


def no_vocab_size(kind: str, vocab_size: int) -> None:
    """Kinds whose vocabulary is fixed by their definition refuse a requested size."""
    if vocab_size:
        raise UserError(f"tokenizer.vocab_size={vocab_size} does not apply to tokenizer.kind={kind!r} "
                        f"(its vocabulary is fixed); use 0 or tokenizer.kind='bpe'")


def save_tokenizer(tok: Tokenizer, directory: str | Path) -> None:
    from lmlab.io import atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / FILE_NAME, json.dumps({"kind": tok.kind, **tok.to_json()}))


def load_tokenizer(directory: str | Path) -> Tokenizer:
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        raise UserError(f"{path} does not exist: not a saved tokenizer")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict) or "kind" not in values:
            raise ValueError("no 'kind' field")
        kind = values.pop("kind")
        if kind not in TOKENIZERS.names():
            raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(TOKENIZERS.names())}")
        return TOKENIZERS.get(kind).from_json(values)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        detail = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise UserError(f"{path} is not a valid lmlab tokenizer file ({detail}); it is damaged or of another "
                        f"kind") from None


def concat_ids(id_lists) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids (one per document) as (all ids concatenated, per-document lengths)."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths
