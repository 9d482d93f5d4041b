"""Splits: which documents (or which part of each) go to train, val and test.

A source with `split = "auto"` assigns whole documents to val and test by a seeded permutation
of its own (data.seed and the source's name): adding another source changes nothing in it. A
source of fewer than MIN_DOCS_TO_SPLIT documents (one file, the built-in corpus) is cut instead:
the last val_fraction of each document (at a line break) is val, the test_fraction before it is
test. A source with split = "train" / "val" / "test" goes there whole.
"""

from __future__ import annotations

import numpy as np

from lmlab.data.sources import digest
from lmlab.errors import UserError

MIN_DOCS_TO_SPLIT = 20
SPLITS = ("train", "val", "test")


def split_documents(docs: list[str], src, data, name: str) -> tuple[list[str], list[str], bool]:
    """(texts, split of each text, was_cut): whole documents assigned, or each document cut."""
    if src.split != "auto":
        return docs, [src.split] * len(docs), False
    vf, tf = data.val_fraction, data.test_fraction
    if len(docs) < MIN_DOCS_TO_SPLIT:
        texts, labels = [], []
        for doc in docs:
            parts = cut_tail(doc, vf, tf)
            for label, text in zip(SPLITS, parts):
                if text:
                    texts.append(text)
                    labels.append(label)
        return texts, labels, True
    n = len(docs)
    n_val, n_test = max(round(n * vf), 1), round(n * tf)
    rng = np.random.default_rng([data.seed, int(digest(name)[:8], 16)])
    order = rng.permutation(n)
    labels = np.full(n, "train", dtype=object)
    labels[order[:n_val]] = "val"
    labels[order[n_val:n_val + n_test]] = "test"
    return docs, labels.tolist(), False


def cut_tail(text: str, val_fraction: float, test_fraction: float = 0.0) -> tuple[str, str, str]:
    """(train, val, test) pieces of one text: ... train | test | val, cut at line breaks when near."""
    def cut_at(fraction_from_end: float) -> int:
        cut = int(len(text) * (1.0 - fraction_from_end))
        newline = text.rfind("\n", 0, cut)
        return newline + 1 if newline > cut * 0.9 else cut

    val_start = cut_at(val_fraction)
    test_start = cut_at(val_fraction + test_fraction) if test_fraction else val_start
    train, test, val = text[:test_start], text[test_start:val_start], text[val_start:]
    if len(val) < 2 or len(train) < 2:
        raise UserError(f"a document of {len(text)} characters is too short to split into train and val")
    return train, val, test
