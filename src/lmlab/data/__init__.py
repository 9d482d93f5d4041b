"""Data: sources -> text -> train/val split -> token arrays -> batches."""

from lmlab.data.batches import RandomWindows, eval_windows
from lmlab.data.corpus import Corpus, TokenSplits, encode_splits, load_corpus, split_text
from lmlab.data.sources import SOURCES

__all__ = ["RandomWindows", "eval_windows", "Corpus", "TokenSplits", "encode_splits",
           "load_corpus", "split_text", "SOURCES"]
