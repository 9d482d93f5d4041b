"""Byte-level BPE learned from the training split (kind `bpe`), trained by `tokenizers`' Rust trainer.

GPT-2's recipe [Radford et al. 2019, sec. 2.2]: GPT-2's regex splits text into words, numbers,
punctuation and whitespace runs; each piece becomes bytes (ByteLevel), and merges of frequent
adjacent pairs are learned within pieces, never across them. Every byte is in the base alphabet,
so no input is unknown. Vocabulary: `<|endoftext|>` (eos, id 0), the 256 bytes, then the merges in
the order learned, `tokenizer.vocab_size` tokens in all (0 = 4096); a pair is merged only if it
occurs at least `tokenizer.min_frequency` times.

As for every lmlab tokenizer, "<|endoftext|>" written in the text is plain text, not eos (see
lmlab.tokenizer.pretrained). The run saves the trained tokenizer.json whole, so it reloads
identically, and `transformers` can read it.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from lmlab.errors import UserError
from lmlab.tokenizer.base import TOKENIZERS
from lmlab.tokenizer.hf import HFTokenizer

EOS = "<|endoftext|>"
SPECIAL_TOKENS = (EOS,)
DEFAULT_VOCAB_SIZE = 4096
PIECE_CHARS = 4096  # text is cut into pieces of about this length to encode and train in batches (fastest)

# A cut between a non-space character and ASCII whitespace never changes GPT-2's pre-tokenization:
# no piece holding a non-space character extends over following whitespace, and a whitespace
# run is split by looking ahead only. (ASCII whitespace only: Python's \s also counts \x1c-\x1f,
# which the Rust regex does not.)
_CUT = re.compile(r"\S(?=[ \t\n\r\x0b\x0c])")


def safe_pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """`text` cut into pieces of about `size` characters that encode to the ids of the whole."""
    pieces, start = [], 0
    while start < len(text):
        cut = _CUT.search(text, start + size)
        end = cut.end() if cut else len(text)
        pieces.append(text[start:end])
        start = end
    return pieces


@TOKENIZERS.register("bpe", "byte-level BPE trained on the training split (tokenizer.vocab_size, "
                            "tokenizer.min_frequency)")
class BPETokenizer(HFTokenizer):
    """A tokenizer.json trained here; encodes and decodes like kind `hf`."""

    kind = "bpe"

    def __init__(self, json_text: str):
        super().__init__(json_text)
        self.tk.encode_special_tokens = True  # special-token text is plain text (not saved in the JSON)

    @classmethod
    def from_corpus(cls, text: str, path: str = "", *, vocab_size: int = 0,
                    min_frequency: int = 2) -> "BPETokenizer":
        size = vocab_size or DEFAULT_VOCAB_SIZE
        smallest = 256 + len(SPECIAL_TOKENS)
        if path:
            raise UserError(f"tokenizer.path={path!r} does not apply to tokenizer.kind='bpe', which learns from "
                            f"the training split; use kind='hf' to load a trained tokenizer.json")
        if size < smallest:
            raise UserError(f"tokenizer.vocab_size={vocab_size} is too small for kind='bpe'; expected 0 "
                            f"(= {DEFAULT_VOCAB_SIZE}) or at least {smallest} (256 bytes + {EOS})")
        if min_frequency < 1:
            raise UserError(f"tokenizer.min_frequency={min_frequency} is invalid; expected a positive integer")
        tok = cls(train_bpe(text, size, min_frequency))
        if tok.vocab_size < size:
            warnings.warn(f"tokenizer.vocab_size={size}: the training split has only {tok.vocab_size - smallest} "
                          f"pairs seen {min_frequency}+ times; the vocabulary has {tok.vocab_size} tokens",
                          stacklevel=2)
        return tok

    def encode_array(self, text: str) -> np.ndarray:
        batch = getattr(self.tk, "encode_batch_fast", self.tk.encode_batch)  # _fast: no offsets (0.20+)
        encoded = batch(safe_pieces(text), add_special_tokens=False)  # in parallel, in Rust
        return np.fromiter((i for e in encoded for i in e.ids), dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Long documents are cut into pieces that encode alike, so one long file also runs in parallel.
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            cut = safe_pieces(text) if len(text) > PIECE_CHARS else [text]
            pieces += cut
            owner += [i] * len(cut)
        flat, piece_lengths = super().encode_batch(pieces)
        lengths = np.bincount(np.asarray(owner, dtype=np.int64), weights=piece_lengths, minlength=len(texts))
        return flat, lengths.astype(np.int64)


def train_bpe(text: str, vocab_size: int, min_frequency: int) -> str:
    """Learn the merges with the Rust BpeTrainer; the tokenizer.json text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)  # GPT-2's regex
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    pieces = safe_pieces(text)
    tk.train_from_iterator(pieces, trainer=trainer, length=len(pieces))
    return tk.to_str()
