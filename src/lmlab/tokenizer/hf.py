"""Any Hugging Face tokenizer.json as an lmlab tokenizer (kind `hf`). The other direction, lmlab
tokenizers as tokenizer.json files, is `lmlab.interop.tokenizers`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import UserError
from lmlab.tokenizer.alphabet import byte_alphabet
from lmlab.tokenizer.base import TOKENIZERS, concat_ids, no_vocab_size

EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")
BOS_NAMES = ("<s>", "<bos>", "<|begin_of_text|>")


@TOKENIZERS.register("hf", "any Hugging Face tokenizer.json, given by tokenizer.path")
class HFTokenizer:
    kind = "hf"
    is_char_level = False
    pad_id = None

    def __init__(self, json_text: str):
        from tokenizers import Tokenizer

        self.json_text = json_text
        try:
            self.tk = Tokenizer.from_str(json_text)
        except Exception as err:  # the Rust parser raises a bare Exception (a truncated file: "EOF while parsing")
            detail = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            raise ValueError(f"is not a valid Hugging Face tokenizer.json ({detail})") from None
        self.vocab_size = self.tk.get_vocab_size(with_added_tokens=True)
        self.eos_id = self._first_id(EOS_NAMES)
        self.bos_id = self._first_id(BOS_NAMES)

    def _first_id(self, names) -> int | None:
        for name in names:
            found = self.tk.token_to_id(name)
            if found is not None:
                return found
        return None

    @classmethod
    def from_corpus(cls, text: str, path: str = "", vocab_size: int = 0, min_frequency: int = 2) -> "HFTokenizer":
        no_vocab_size(cls.kind, vocab_size)
        if not path:
            raise UserError("tokenizer.kind='hf' needs tokenizer.path=PATH/tokenizer.json")
        file = Path(path).expanduser()
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise UserError(f"tokenizer.path={path!r}: {file} does not exist")
        try:
            return cls(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise UserError(f"tokenizer.path={path!r}: {file} is not UTF-8 text, not a tokenizer.json") from None
        except ValueError as err:
            raise UserError(f"tokenizer.path={path!r}: {file} {err}") from None

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        # The whole text at once: cutting it (at line ends, say) can change what an arbitrary
        # tokenizer.json's pre-tokenizer does at the cuts.
        return np.asarray(self.tk.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batch = getattr(self.tk, "encode_batch_fast", self.tk.encode_batch)  # _fast: no offsets (0.20+)
        return concat_ids([e.ids for e in batch(texts, add_special_tokens=False)])  # parallel, in Rust

    def decode(self, ids: list[int]) -> str:
        return self.tk.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_byte_lengths(self) -> np.ndarray:
        """Byte-level vocabularies: one byte per alphabet character; others: the decoded length."""
        reverse = set(byte_alphabet().values())
        special = {t.content for t in self.tk.get_added_tokens_decoder().values() if t.special}
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token, i in self.tk.get_vocab(with_added_tokens=True).items():
            if token in special:
                continue
            lengths[i] = len(token) if set(token) <= reverse else len(self.tk.decode([i]).encode("utf-8"))
        return lengths

    def to_json(self) -> dict[str, Any]:
        return {"tokenizer_json": self.json_text}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "HFTokenizer":
        return cls(values["tokenizer_json"])
