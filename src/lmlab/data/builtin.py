"""The built-in corpus: English prose that every Python installation ships, no network needed.

`pydoc_data.topics` holds the Language Reference topics that `help()` shows (~465k
characters on CPython 3.11): technical English with code examples. The topics are joined
in sorted key order, so the text is identical on every machine with the same Python.
"""

from __future__ import annotations


def builtin_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"
