"""Sources: each kind turns one `[[data.sources]]` table into a list of documents (strings).

A reader stops after `max_docs` documents, so a capped source never reads more than it keeps
(that matters for streamed HuggingFace datasets). Failures are `UserError`s naming the source
(`data.sources[i] (name)`), the file and the field.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import sys
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from lmlab.data.documents import DOC_MODES
from lmlab.errors import UserError, need
from lmlab.registry import Registry

SOURCES: Registry = Registry("data.source")


class Where:
    """A source and its position in the config, for error messages and path resolution."""

    def __init__(self, src, data, index: int):
        self.src, self.data, self.index = src, data, index

    def __str__(self) -> str:
        return f"data.sources[{self.index}] ({self.src.label})" if self.data.sources else f"data.source={self.src.kind!r}"

    def fail(self, message: str) -> UserError:
        return UserError(f"{self}: {message}")

    def files(self) -> list[Path]:
        """`path` as files: one file, every file under a directory, or a glob's matches, sorted."""
        if not self.src.path:
            raise self.fail(f"kind={self.src.kind!r} needs a path (a file, directory or glob)")
        resolved = self.data.resolve(self.src.path)
        if glob.has_magic(str(resolved)):
            found = sorted(Path(p) for p in glob.glob(str(resolved), recursive=True) if Path(p).is_file())
            if not found:
                raise self.fail(f"no files match {resolved}")
            return found
        if resolved.is_dir():
            found = sorted(p for p in resolved.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(resolved).parts))
            if not found:
                raise self.fail(f"directory {resolved} holds no files")
            return found
        if not resolved.exists():
            hint = "" if Path(self.src.path).is_absolute() else \
                f" (relative paths are looked up under data.root or $LMLAB_DATA; now {self.data.resolve('.')})"
            raise self.fail(f"{resolved} does not exist{hint}")
        return [resolved]


def check_files(data) -> None:
    """Every file-reading source's path names existing files (a cheap check before work starts that
    would otherwise meet a missing file only when a worker or rank prepares the data)."""
    for i, src in enumerate(data.source_list()):
        if src.path and not hasattr(SOURCES.get(src.kind), "content_identity"):
            Where(src, data, i).files()


def check_readable(data) -> None:
    """`check_files`, and each file-reading source's first document read as training reads it, so a
    binary, empty or wrongly encoded corpus is refused once, up front (a study would otherwise fail
    in every run). Cheap: a source stops at its first document, which for a text source means its
    first file decoded in full."""
    check_files(data)
    for i, src in enumerate(data.source_list()):
        if src.path and not hasattr(SOURCES.get(src.kind), "content_identity"):
            next(iter(SOURCES.get(src.kind)(Where(src, data, i))), None)  # reading it is the check


def read_documents(src, data, index: int = 0) -> list[str]:
    """The documents of one source, at most `max_docs`, empty ones dropped."""
    where = Where(src, data, index)
    docs = (d for d in SOURCES.get(src.kind)(where) if d.strip())
    docs = list(islice(docs, src.max_docs) if src.max_docs else docs)
    if not docs:
        raise where.fail("no documents (the source is empty)")
    return docs


def fingerprint(src, data) -> dict:
    """What identifies a source's content for the token cache: its settings, plus what its kind
    says of the content (a reader's optional `content_identity(src, data)`; by default the size
    and modification time of its files: content hashes would cost a full read on every run)."""
    identity = getattr(SOURCES.get(src.kind), "content_identity", files_identity)
    return {"spec": src.to_dict(), **identity(src, data)}


def files_identity(src, data) -> dict:
    if not src.path:
        return {}
    try:
        files = Where(src, data, 0).files()
    except UserError:
        files = []  # the read itself will report it
    return {"files": [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@SOURCES.register("builtin", "Python's bundled Language Reference topics (pydoc_data), one document; no download")
def builtin_source(where: Where) -> list[str]:
    from lmlab.data.builtin import builtin_text

    return [builtin_text()]


builtin_source.content_identity = lambda src, data: {"python": sys.version}  # the text ships with Python


@SOURCES.register("text", "UTF-8 text: a file, directory or glob; documents per file, line, paragraph or delimiter")
def text_source(where: Where) -> Iterator[str]:
    src = where.src
    if not src.path and where.data.sources == []:
        raise UserError("data.source='text' needs a file: give --data PATH (or --data.path=PATH)")
    for file in where.files():
        text = read_text_file(file, src.encoding)
        yield from split_text(text, src)


def split_text(text: str, src) -> Iterator[str]:
    """A file's text as documents, cut as `src.docs` says."""
    return DOC_MODES.get(src.docs)(text, src)


def read_text_file(path_str: str | Path, encoding: str = "utf-8") -> str:
    """Read a text file; fail on a missing, empty or binary file. Text that is not valid in its
    encoding is refused with the offset of the first bad byte and the setting that reads it (a
    Latin-1 corpus silently turned into U+FFFD would train on garbage); `utf-8-replace` replaces
    invalid UTF-8 and says how often."""
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
    if encoding != "utf-8-replace":
        from lmlab.io import decode_text

        return decode_text(raw, f"data file {path}", encoding, encoding,
                           "set the source's encoding, e.g. --data.encoding=latin-1 (or encoding = \"latin-1\" "
                           "in its [[data.sources]]), or utf-8-replace")
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
    if bad:
        print(f"lmlab: warning: {path}: {bad} invalid UTF-8 sequence(s) replaced by U+FFFD", file=sys.stderr)
    return text


# --- tables: one document per row -------------------------------------------------------------


def render_rows(where: Where, rows: Iterable[dict], origin: str) -> Iterator[str]:
    """Each row as text: `template.format(**row)`, or the `field` column."""
    src = where.src
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise where.fail(f"{origin}: row {n} is not an object/record")
        try:
            text = src.template.format_map(row) if src.template else row[src.field]
        except KeyError as err:
            what = f"template key {err.args[0]!r}" if src.template else f"field {src.field!r}"
            raise where.fail(f"{origin}: row {n} has no {what}; its fields: {', '.join(map(str, row))}") from None
        except (ValueError, IndexError) as err:
            raise where.fail(f"template {src.template!r} is not a valid format string ({err})") from None
        yield text if isinstance(text, str) else ("" if text is None else str(text))


def _checked_lines(where: Where, file: Path) -> Iterator[tuple[int, str]]:
    with open(file, encoding="utf-8", errors="replace") as handle:
        for n, line in enumerate(handle, 1):
            if line.strip():
                yield n, line


@SOURCES.register("jsonl", "JSON lines, one document per row from `field` or `template`")
def jsonl_source(where: Where) -> Iterator[str]:
    for file in where.files():
        yield from render_rows(where, _jsonl_rows(where, file), str(file))


def _jsonl_rows(where: Where, file: Path) -> Iterator[dict]:
    for n, line in _checked_lines(where, file):
        try:
            yield json.loads(line)
        except json.JSONDecodeError as err:
            raise where.fail(f"{file}:{n}: not valid JSON ({err.msg})") from None


@SOURCES.register("json", "a JSON array of rows (or an object holding one), one document per row")
def json_source(where: Where) -> Iterator[str]:
    for file in where.files():
        try:
            value = json.loads(file.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as err:
            raise where.fail(f"{file}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise where.fail(f"{file}: expected an array of rows, or an object with exactly one array")
            value = lists[0]
        if not isinstance(value, list):
            raise where.fail(f"{file}: expected an array of rows")
        yield from render_rows(where, value, str(file))


@SOURCES.register("squad", "SQuAD's nested JSON (data/paragraphs/qas), one document per question with the fields "
                           "title, context, question, answer (the first answer)")
def squad_source(where: Where) -> Iterator[str]:
    for file in where.files():
        try:
            articles = json.loads(file.read_text(encoding="utf-8", errors="replace"))["data"]
            rows = [{"title": a.get("title", ""), "context": p["context"], "question": q["question"],
                     "answer": q["answers"][0]["text"] if q.get("answers") else ""}
                    for a in articles for p in a["paragraphs"] for q in p["qas"]]
        except json.JSONDecodeError as err:
            raise where.fail(f"{file}: not valid JSON ({err.msg} at line {err.lineno})") from None
        except (KeyError, TypeError, IndexError) as err:
            raise where.fail(f"{file}: not SQuAD's layout (data[].paragraphs[].context/qas[].question; "
                             f"missing {err})") from None
        yield from render_rows(where, rows, str(file))


@SOURCES.register("csv", "CSV with a header row (or `columns`), one document per row")
def csv_source(where: Where) -> Iterator[str]:
    columns = [c.strip() for c in where.src.columns.split(",")] if where.src.columns else None
    for file in where.files():
        with open(file, encoding="utf-8", errors="replace", newline="") as handle:
            yield from render_rows(where, csv.DictReader(handle, fieldnames=columns), str(file))


@SOURCES.register("parquet", "Parquet files (needs pyarrow), one document per row")
def parquet_source(where: Where) -> Iterator[str]:
    pq = need("pyarrow.parquet", f"{where}: reading parquet")
    for file in where.files():
        try:
            table = pq.ParquetFile(file)
        except Exception as err:  # pyarrow raises its own error types for damaged files
            raise where.fail(f"{file}: not a readable parquet file ({err})") from None
        for batch in table.iter_batches(batch_size=4096):
            yield from render_rows(where, batch.to_pylist(), str(file))


@SOURCES.register("hf", "a HuggingFace dataset (`dataset`, `subset`, `hf_split`; needs `datasets`)")
def hf_source(where: Where) -> Iterator[str]:
    src = where.src
    if not src.dataset:
        raise where.fail("kind='hf' needs `dataset` (a Hub name such as roneneldan/TinyStories, "
                         "or a builder such as json with `path`)")
    datasets = need("datasets", f"{where}: kind='hf'")
    kwargs: dict = {"split": src.hf_split, "streaming": src.streaming}
    if src.path:
        kwargs["data_files"] = [str(f) for f in where.files()]
    if src.revision:
        kwargs["revision"] = src.revision
    try:
        dataset = datasets.load_dataset(src.dataset, src.subset or None, **kwargs)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise where.fail(f"cannot load dataset {src.dataset!r}"
                         f"{f' ({src.subset})' if src.subset else ''} split {src.hf_split!r}: {first}") from None
    yield from render_rows(where, iter(dataset), f"dataset {src.dataset!r}")


@SOURCES.register("synthetic", "generated sequences (see `data.sources.generator` below)")
def synthetic_source(where: Where) -> list[str]:
    from lmlab.data.synthetic import generate

    return generate(where.src)


def _synthetic_facts(src) -> dict:
    """Generated, not natural text (the sanity checks hold natural text to a plausible perplexity),
    and its entropy rate where one is known."""
    from lmlab.data.synthetic import facts

    return {"generated": True, **facts(src)}


synthetic_source.facts = _synthetic_facts
synthetic_source.label = lambda src: src.generator  # a source kind's optional `label(src)`: its short name
hf_source.label = lambda src: (src.dataset.rsplit("/", 1)[-1] + (f"-{src.subset}" if src.subset else "")
                               if src.dataset and not src.path else None)
synthetic_source.content_identity = lambda src, data: {}  # its settings are its content


def source_facts(src) -> dict:
    """Closed-form facts a source kind knows about its documents (a reader's optional `facts(src)`)."""
    facts = getattr(SOURCES.get(src.kind), "facts", None)
    return facts(src) if facts else {}
