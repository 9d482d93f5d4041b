"""Byte-level tokenizer: the 256 UTF-8 byte values plus `<|endoftext|>` (id 256).

Needs no training and has no unknown input; decoding replaces broken UTF-8 with U+FFFD.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlab.tokenizer.base import TOKENIZERS, no_vocab_size


@TOKENIZERS.register("byte", "the 256 UTF-8 byte values plus <|endoftext|>")
class ByteTokenizer:
    kind = "byte"
    bos_id = None
    pad_id = None
    eos_id = 256
    vocab_size = 257
    is_char_level = False

    @classmethod
    def from_corpus(cls, text: str, path: str = "", vocab_size: int = 0, min_frequency: int = 2) -> "ByteTokenizer":
        no_vocab_size(cls.kind, vocab_size)
        return cls()

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        raw = [t.encode("utf-8") for t in texts]
        lengths = np.fromiter((len(b) for b in raw), dtype=np.int64, count=len(raw))
        return np.frombuffer(b"".join(raw), dtype=np.uint8).astype(np.int64), lengths

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in map(int, ids) if i < 256).decode("utf-8", errors="replace")

    def token_byte_lengths(self) -> np.ndarray:
        return np.array([1] * 256 + [0], dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "ByteTokenizer":
        return cls()
