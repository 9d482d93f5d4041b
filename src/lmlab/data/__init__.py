"""Data: sources -> documents -> splits -> tokenizer -> token arrays (cached) -> layout -> batches."""

from lmlab.data.batches import MixtureBatches, eval_windows, random_windows
from lmlab.data.config import DataConfig, SourceConfig
from lmlab.data.layout import Rows, Stream
from lmlab.data.prepare import Prepared, prepare
from lmlab.data.sources import SOURCES

__all__ = ["MixtureBatches", "random_windows", "eval_windows", "DataConfig", "SourceConfig", "Rows", "Stream",
           "Prepared", "prepare", "SOURCES"]
