"""Find and read a task's items: local files (found the way corpora are) or Hugging Face datasets.

Local files live under `<root>/eval/<folder>/` where root is `--tasks-dir`'s parent convention:
`--tasks-dir DIR` holds the task folders itself; otherwise `data.root` / `$LMLAB_DATA` / the current
directory + `eval/`. A row that does not fit the task's schema fails with the file, line and field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lmlab.errors import UserError, need
from lmlab.io import read_text
from lmlab.eval.tasks.specs import TASKS, Item, TaskSpec


def parse_task_names(text: str) -> list[str]:
    """"hellaswag,arc_easy" -> specs' names, refusing unknown ones with the list of valid names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"--tasks is empty; valid tasks: {', '.join(TASKS.names())}")
    for n in names:
        if n not in TASKS:
            raise UserError(f"--tasks: unknown task {n!r}; valid tasks: {', '.join(TASKS.names())}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class TaskSelection:
    """Which items are scored: the tasks by name, the first `limit` items of each (None = all), read
    from local files (under `tasks_dir`, else `data_root`/$LMLAB_DATA + eval/) or from the Hub (`hf`)."""

    names: list[str]
    limit: int | None = None
    tasks_dir: str | Path | None = None
    data_root: str = ""
    hf: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be a positive number of items per task (got {self.limit}); "
                            f"omit it for all items")

    def load(self) -> dict[str, tuple[TaskSpec, list[Item], str]]:
        """{task: (spec, items, where they came from)}; every file is read before any is scored, so a
        bad one fails first."""
        root, loaded = tasks_root(self.tasks_dir, self.data_root), {}
        for name in self.names:
            spec = TASKS.get(name)
            if self.hf:
                loaded[name] = (spec, load_hf_items(spec, self.limit or 0), f"hf:{spec.hf[0]}")
            else:
                items, path = load_items(spec, root, self.limit or 0)
                loaded[name] = (spec, items, str(path))
        return loaded


def tasks_root(tasks_dir: str | Path | None, data_root: str = "") -> Path:
    """The folder holding one sub-folder per task."""
    if tasks_dir:
        return Path(tasks_dir).expanduser()
    root = data_root or os.environ.get("LMLAB_DATA", "")
    return (Path(root).expanduser() if root else Path(".")) / "eval"


def task_file(spec: TaskSpec, root: Path) -> Path:
    """The first of the task's known file names that exists in root/<folder>/ (or root/ itself)."""
    tried = []
    for folder in (root / spec.folder, root):
        for name in spec.files:
            path = folder / name
            tried.append(str(path))
            if path.is_file():
                return path
    raise UserError(f"task {spec.name}: no file found (tried {', '.join(tried[:len(spec.files)])}); "
                    f"pass --tasks-dir DIR (holding {spec.folder}/), set $LMLAB_DATA, or use --hf")


def load_items(spec: TaskSpec, root: Path, limit: int = 0) -> tuple[list[Item], Path]:
    """The first `limit` items (all when 0) of the task's local file."""
    path = task_file(spec, root)
    if path.suffix == ".txt":
        return read_hellaswag_text(path, limit), path
    return read_jsonl(path, spec.row, spec.required, limit, spec.name), path


def read_jsonl(path: Path, row, required: tuple[str, ...], limit: int, name: str) -> list[Item]:
    items = []
    # split at newlines only: JSON strings may hold U+2028 and others that str.splitlines breaks at
    for lineno, line in enumerate(read_text(path, f"task {name}").split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        items.append(to_item(record, row, required, f"{path}:{lineno}", name))
        if limit and len(items) >= limit:
            break
    if not items:
        raise UserError(f"{path}: no rows")
    return items


def to_item(record, row, required: tuple[str, ...], where: str, name: str) -> Item:
    """One row -> Item, or a UserError naming where the row is and which field is missing or wrong."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in required if k not in record]
    if missing:
        raise UserError(f"{where}: missing field {missing[0]!r} ({name} rows need {', '.join(required)})")
    try:
        item = row(record)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise UserError(f"{where}: row does not fit the {name} schema ({type(err).__name__}: {err})") from None
    if not item.choices or not all(isinstance(c, str) for c in [*item.choices, *(item.contexts or [])]):
        raise UserError(f"{where}: choices must be a non-empty list of strings")  # Hugging Face rows too
    if not 0 <= item.gold < item.n_options:
        raise UserError(f"{where}: gold={item.gold} is out of range for {item.n_options} choices")
    return item


def read_hellaswag_text(path: Path, limit: int = 0) -> list[Item]:
    """klosax's 6-lines-per-item text: "<label>: <context>", gold index, 4 endings (already cleaned)."""
    lines = read_text(path, "task hellaswag").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 6:
        raise UserError(f"{path}: {len(lines)} lines is not a multiple of 6 (context, label, 4 endings per item)")
    items = []
    for start in range(0, len(lines), 6):
        ctx, label, *endings = lines[start:start + 6]
        if not label.strip().isdigit() or not 0 <= int(label) < 4:
            raise UserError(f"{path}:{start + 2}: label {label!r} is not 0-3")
        items.append(Item(ctx, endings, int(label)))
        if limit and len(items) >= limit:
            break
    return items


def load_hf_items(spec: TaskSpec, limit: int = 0, data_files: str | None = None) -> list[Item]:
    """Items from Hugging Face datasets: the hub dataset by name (needs network once, then the HF cache),
    or `data_files` (a local json/jsonl in the hub dataset's schema, read by datasets' json builder)."""
    datasets = need("datasets", "loading tasks from Hugging Face (--hf)")
    if spec.hf is None:
        raise UserError(f"task {spec.name} has no Hugging Face dataset")
    path, config, split = spec.hf
    try:
        if data_files:
            ds = datasets.load_dataset("json", data_files={split: str(data_files)}, split=split)
        else:
            ds = datasets.load_dataset(path, config, split=split)
    except Exception as err:  # network, missing dataset: one line, not a traceback
        raise UserError(f"task {spec.name}: could not load Hugging Face dataset {path} "
                        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    where = data_files or f"{path}[{split}]"
    return [to_item(r, spec.hf_row, spec.hf_required, f"{where} row {i}", spec.name) for i, r in enumerate(ds)]
