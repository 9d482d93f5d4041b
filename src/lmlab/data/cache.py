"""The token cache: prepared token arrays (uint16 or uint32, memory-mapped) in
`<cache>/tokens/<key>/`, the key a hash of the sources (settings, file sizes and times), the
tokenizer and the layout. An entry is written in a temporary directory and renamed into place, so
a crash leaves nothing half-made; a damaged or outdated entry is prepared again.

Each entry stores a SHA-256 of every file it holds (meta.json's "sha256"), checked on every load:
ids edited in place but still in the vocabulary would otherwise train and evaluate silently on
other data. SHA-256 is hardware-accelerated on current CPUs (about 2 GB/s, measured: a 1 GB entry
costs about half a second, next to minutes to encode it again), and needs no new dependency.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from lmlab.data.layout import LAYOUTS
from lmlab.data.prepared import Prepared
from lmlab.data.sources import digest, fingerprint
from lmlab.data.split import SPLITS

CACHE_VERSION = 4  # bump when what an entry holds, or its source labels, change (4: stats gained words per
# split and the held-out overlap, which the sanity checks read)


class DamagedEntry(ValueError):
    """A cache entry whose files do not match the hashes written with it (or hold ids past the vocabulary)."""


def data_identity(data) -> dict:
    """The data settings that change the prepared arrays (not where files or the cache live)."""
    values = data.to_dict()
    for k in ("cache", "cache_dir", "root", "sources", "source", "path", "allow_eval_sets", "score_pads"):
        values.pop(k)
    return values


def entry_for(cfg, specs, tokenizer, force: bool) -> Path:
    """The cache directory of this preparation (it may not exist yet)."""
    data, T = cfg.data, cfg.model.context_len
    base_key = digest({"version": CACHE_VERSION, "data": data_identity(data),
                       "sources": [fingerprint(s, data) for s in specs], "tokenizer": cfg.tokenizer.to_dict(),
                       "context_len": T if LAYOUTS.get(data.layout).uses_context else None})
    root = data.cache_root() / "tokens"
    entry = root / base_key[:20]
    if tokenizer is not None and data.cache and not force:
        given = tokenizer_sha(tokenizer)
        if _entry_tokenizer_sha(entry) != given:
            entry = root / digest([base_key, given])[:20]  # a different tokenizer, its own entry
    return entry


def tokenizer_sha(tokenizer) -> str:
    return digest({"kind": tokenizer.kind, **tokenizer.to_json()})


def _entry_tokenizer_sha(entry: Path) -> str | None:
    try:
        return json.loads((entry / "meta.json").read_text())["tokenizer_sha"]
    except (OSError, ValueError, KeyError):
        return None


def write_entry(prepared: Prepared, entry: Path, data, specs) -> None:
    from lmlab.io import fault_point
    from lmlab.tokenizer import save_tokenizer

    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        parts = []
        for split, by_source in prepared.splits.items():
            for i, (name, part) in enumerate(by_source.items()):
                stem = f"{split}-{i}"
                info = {"split": split, "name": name, "stem": stem, "docs": part.docs, "layout": part.layout}
                part.save(tmp / stem)
                fault_point("cache:write")  # fault tests kill here: half an entry written
                parts.append(info)
        for i, (name, lengths) in enumerate(prepared.lengths.items()):
            np.save(tmp / f"lengths-{i}.npy", lengths)
        save_tokenizer(prepared.tokenizer, tmp)
        # what load_entry reads; not the statistics files, which `lmlab prepare` rewrites in place
        hashes = {f.name: file_sha256(f) for f in sorted(tmp.iterdir())}
        from lmlab.data.stats import write_stats

        write_stats(prepared, tmp, plot=False)  # the histogram is drawn when asked for (prepare, train)
        meta = {"version": CACHE_VERSION, "parts": parts, "probs": prepared.probs,
                "lengths": list(prepared.lengths), "stats": prepared.stats,
                "tokenizer_sha": tokenizer_sha(prepared.tokenizer), "sources": [s.to_dict() for s in specs],
                "sha256": hashes}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks the entry complete
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
        prepared.directory = entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_entry(entry: Path, context_len: int, tokenizer=None) -> Prepared:
    """A cached preparation for a run of `context_len`. A layout that does not depend on the context
    (pack) shares one entry across context lengths, so its window counts are restated for this one."""
    from lmlab.tokenizer import load_tokenizer

    meta = json.loads((entry / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError("old cache version")
    check_hashes(entry, meta.get("sha256"))
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(entry)
    splits: dict[str, dict] = {s: {} for s in SPLITS}
    for info in meta["parts"]:
        stem = entry / info["stem"]
        part = LAYOUTS.get(info["layout"]).load(stem, info)
        if part.max_id() >= tokenizer.vocab_size:  # an IndexError in the embedding otherwise
            raise DamagedEntry(f"{info['stem']} holds id {part.max_id()}, past the vocabulary of "
                               f"{tokenizer.vocab_size}")
        splits[info["split"]][info["name"]] = part
    lengths = {name: np.load(entry / f"lengths-{i}.npy") for i, name in enumerate(meta["lengths"])}
    stats = dict(meta["stats"], cached=True)
    layout = LAYOUTS.get(stats["layout"]["layout"])
    if not layout.uses_context:
        from lmlab.data.stats import layout_numbers

        stats["layout"] = layout_numbers(layout, splits, [], context_len, 0)
    return Prepared(tokenizer, splits, meta["probs"], stats, entry, lengths)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_hashes(entry: Path, hashes) -> None:
    """Every file written with the entry is there, unchanged."""
    if not isinstance(hashes, dict) or not hashes:
        raise DamagedEntry("meta.json has no file hashes")
    for name, expected in sorted(hashes.items()):
        file = entry / name
        if not file.is_file():
            raise DamagedEntry(f"{name} is missing")
        if file_sha256(file) != expected:
            raise DamagedEntry(f"{name} does not match its SHA-256")
