"""Character-level tokenizer: one id per Unicode character seen in the training split.

Unknown characters (in validation text or prompts) map to `<unk>`, which decodes to U+FFFD
and counts as one byte for bits per byte. `<|endoftext|>` separates documents.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlab.tokenizer.base import TOKENIZERS, no_vocab_size

UNK, EOS = "<unk>", "<|endoftext|>"


@TOKENIZERS.register("char", "one id per character of the training split, plus <unk> and <|endoftext|>")
class CharTokenizer:
    kind = "char"
    bos_id = None
    pad_id = None
    is_char_level = True

    def __init__(self, chars: str):
        self.chars = "".join(sorted(set(chars)))
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)  # sorted
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars)
        self.eos_id = len(self.chars) + 1
        self.vocab_size = len(self.chars) + 2

    @classmethod
    def from_corpus(cls, text: str, path: str = "", vocab_size: int = 0, min_frequency: int = 2) -> "CharTokenizer":
        no_vocab_size(cls.kind, vocab_size)
        return cls(text)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        pos = np.searchsorted(self._codes, codes).clip(max=max(len(self._codes) - 1, 0))
        known = self._codes[pos] == codes if len(self._codes) else np.zeros(len(codes), bool)
        return np.where(known, pos, self.unk_id).astype(np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        return self.encode_array("".join(texts)), lengths  # one id per character

    def decode(self, ids: list[int]) -> str:
        table = self.chars
        return "".join(table[i] if i < len(table) else ("\ufffd" if i == self.unk_id else "")
                       for i in map(int, ids))

    def token_byte_lengths(self) -> np.ndarray:
        lengths = [len(c.encode("utf-8")) for c in self.chars] + [1, 0]  # <unk> ~ 1 byte
        return np.array(lengths, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "CharTokenizer":
        return cls(values["chars"])
