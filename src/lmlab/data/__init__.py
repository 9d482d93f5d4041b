"""Data: sources -> documents -> splits -> tokenizer -> token arrays (cached) -> layout -> batches.

Names load on first use (lmlab.lazy): `lmlab.data.config`, which every config reads, pulls in
neither torch nor the batch machinery. The function `prepare` is imported from its module
(`from lmlab.data.prepare import prepare`): a lazy name cannot share a submodule's name."""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {
    "MixtureBatches": "batches", "eval_windows": "batches", "random_windows": "batches", "DataConfig":
    "config", "SourceConfig": "config", "Rows": "layout", "Stream": "layout", "Prepared": "prepare",
    "SOURCES": "sources"
})
