"""Text sources: each turns its `data` config into one string (the corpus issue adds more)."""

from __future__ import annotations

import sys
from pathlib import Path

from lmlab.errors import UserError
from lmlab.registry import Registry

SOURCES: Registry = Registry("data.source")


@SOURCES.register("builtin", "Python's bundled Language Reference topics (pydoc_data); no download")
def builtin_source(cfg) -> str:
    from lmlab.data.builtin import builtin_text

    return builtin_text()


@SOURCES.register("text", "a UTF-8 text file given by data.path (or --data PATH)")
def text_source(cfg) -> str:
    if not cfg.path:
        raise UserError("data.source='text' needs a file: give --data PATH (or --data.path=PATH)")
    return read_text_file(cfg.path)


def read_text_file(path_str: str) -> str:
    """Read a text file; fail on a missing, empty or binary file; replace invalid UTF-8 and say how often."""
    path = Path(path_str).expanduser()
    if not path.exists():
        raise UserError(f"data file {path} does not exist")
    if not path.is_file():
        raise UserError(f"data path {path} is not a file (data.source='text' reads one text file)")
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"data file {path} is empty")
    if b"\x00" in raw[:65536]:
        raise UserError(f"data file {path} looks binary (it contains NUL bytes); give a text file")
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
    if bad:
        print(f"lmlab: warning: {path}: {bad} invalid UTF-8 sequence(s) replaced by U+FFFD", file=sys.stderr)
    return text
