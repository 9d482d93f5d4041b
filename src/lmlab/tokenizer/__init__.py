"""Tokenizers behind one protocol; `tokenizer.kind` picks one from the TOKENIZERS registry."""

from lmlab.tokenizer import bpe, byte, char, hf, pretrained  # noqa: F401  (fill the registry)
from lmlab.tokenizer.base import (
                                  TOKENIZERS,
                                  Tokenizer,
                                  build_tokenizer,
                                  load_tokenizer,
                                  save_tokenizer,
)

__all__ = ["TOKENIZERS", "Tokenizer", "build_tokenizer", "load_tokenizer", "save_tokenizer"]
