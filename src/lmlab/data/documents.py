"""How a text file is cut into documents (`[[data.sources]] docs = ...` of a text source)."""

from __future__ import annotations

from typing import Iterator

from lmlab.registry import Registry

DOC_MODES: Registry = Registry("data.sources.docs", config_field=False)  # validated by SourceConfig


@DOC_MODES.register("file")
def whole_file(text: str, src) -> Iterator[str]:
    """the whole file is one document"""
    yield text


@DOC_MODES.register("line")
def lines(text: str, src) -> Iterator[str]:
    """one document per line"""
    yield from text.splitlines()


@DOC_MODES.register("paragraph")
def paragraphs(text: str, src) -> Iterator[str]:
    """one document per block of non-blank lines"""
    block: list[str] = []
    for line in text.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


@DOC_MODES.register("delimiter")
def delimited(text: str, src) -> Iterator[str]:
    """documents separated by `delimiter` (default <|endoftext|>)"""
    yield from (part.strip("\n") for part in text.split(src.delimiter))
