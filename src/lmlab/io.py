"""The ground floor every module may import: atomic writes, JSONL, ownership markers, locks.

Four promises live here, so every writer keeps them the same way:
- a file is replaced whole or not at all (temporary file + fsync + rename), with the
  permissions the user's umask asks for (a colleague can read a shared run);
- a JSONL log with one damaged line keeps every other line (the damaged one is named);
- lmlab only ever deletes a folder it made itself, recognised by a marker file;
- one process at a time writes into a run directory (an flock the kernel drops when the
  process dies, so a crash never leaves it stuck).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from lmlab.errors import UserError

LOCK_NAME = ".lmlab-lock"


def umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half a file.

    mkstemp creates its file -rw------- whatever the umask; the file gets the mode a plain
    open() would have given it before it is renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def honour_umask(directory: Path) -> None:
    """Give every file under `directory` the mode the umask asks for: some writers (safetensors)
    create theirs -rw------- whatever the umask, which locks colleagues out of a shared run."""
    mode = 0o666 & ~umask()
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def topmost_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its ancestors that does not exist yet (None if folder exists):
    what a `mkdir(parents=True)` creates, so a failure can remove exactly that again."""
    missing = None
    for path in (Path(folder), *Path(folder).parents):
        if path.exists():
            break
        missing = path
    return missing


def read_text(path: Path, what: str) -> str:
    """A user's UTF-8 text file; not UTF-8 is one clear error naming the file, byte and line."""
    return decode_text(Path(path).read_bytes(), f"{what} {path}", "utf-8", "UTF-8", "save it as UTF-8")


def decode_text(raw: bytes, where: str, encoding: str, label: str, advice: str) -> str:
    """`raw` decoded; bytes not valid in `encoding` are one error naming `where`, the first bad byte,
    its offset and line, and `advice` (what would read it)."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UserError(f"{where} is not valid {label} (byte 0x{raw[err.start]:02x} at offset {err.start}, "
                        f"line {line}); {advice}") from None


def warn(message: str) -> None:
    print(f"lmlab: warning: {message}", file=sys.stderr)


def iter_jsonl(path: Path, quiet: bool = False) -> Iterator[dict[str, Any]]:
    """Every valid JSON object of a JSONL file. A damaged line (a kill mid-write, an edit) is
    skipped with a warning naming the file and line; the lines after it still count."""
    for _, record in numbered_jsonl(path, quiet):
        yield record


def numbered_jsonl(path: Path, quiet: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """iter_jsonl's objects with their line numbers (for warnings about what a line holds)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                yield number, record
            elif not quiet:
                warn(f"{path} line {number} is not a JSON object; skipped it")


class MetricsLog:
    """Appends one JSON object per line, each handed to the OS at once (a SIGKILL loses no line
    that a checkpoint covers). A record that cannot be written (disk full) raises at once."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, allow_nan=False, default=str) + "\n")
        self._file.flush()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # the buffered tail could not be written (disk full): the caller reports the first error
            pass


# ----------------------------------------------------------------------------- ownership markers

def write_marker(directory: Path, marker: str, kind: str) -> None:
    """Mark `directory` as made by lmlab (`kind`: run, export, study), so --force may empty it later."""
    atomic_write_text(Path(directory) / marker, json.dumps({"format": 1, "kind": kind}) + "\n")


def is_owned(directory: Path, marker: str, legacy: tuple[str, ...] = ()) -> bool:
    """True when lmlab made `directory`: it holds `marker`, or every name in `legacy` (the
    shape of folders written before markers existed)."""
    directory = Path(directory)
    if (directory / marker).is_file():
        return True
    return bool(legacy) and all((directory / name).exists() for name in legacy)


def remove_owned(directory: Path, marker: str, legacy: tuple[str, ...] = (), what: str = "folder") -> None:
    """Empty a folder lmlab made (keeping the folder and its lock file); refuse anything else.

    This is the only way lmlab deletes a user-named folder: `--force` on a directory without
    lmlab's marker refuses with one line and deletes nothing."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a {what}; choose another path")
    if not is_owned(directory, marker, legacy):
        raise UserError(f"{directory} was not made by lmlab (no {marker} marker), so --force will not delete "
                        f"anything in it; choose an empty or new folder")
    for entry in directory.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# ----------------------------------------------------------------------------- locks

class DirLock:
    """An exclusive flock on DIR/.lmlab-lock, held while the file stays open. The kernel drops it
    when the process exits in any way (even SIGKILL), so a crash never leaves it stuck."""

    def __init__(self, directory: Path, what: str = "run directory"):
        self.directory, self.what, self._fd = Path(directory), what, None

    def acquire(self) -> "DirLock":
        path = self.directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._refuse(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def check(self) -> None:
        """Refuse as acquire() would when another process holds the lock; creates and changes nothing
        (a shared probe on the existing lock file, dropped at once)."""
        try:
            fd = os.open(self.directory / LOCK_NAME, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            self._refuse(fd)
        os.close(fd)

    def _refuse(self, fd: int) -> None:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{self.what} {self.directory} is in use by pid {holder} (it holds "
                        f"{self.directory / LOCK_NAME}); wait for it to finish or stop it first") from None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


# ----------------------------------------------------------------------------- fault injection

_FAULT_COUNTS: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A named moment where fault tests strike: with LMLAB_FAULT=NAME@N[:SIGNAL] in the
    environment, the N-th time this process reaches NAME it sends itself SIGNAL (default
    SIGKILL). Points: checkpoint:tensors (weights written, state not yet), checkpoint:swap
    (between the two renames), cache:write (half a token-cache entry written), train:step
    (after each optimizer step). Unset, this is one dictionary lookup."""
    spec = os.environ.get("LMLAB_FAULT")
    if not spec:
        return
    point, _, rest = spec.partition("@")
    if point != name:
        return
    nth, _, sig = rest.partition(":")
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] == int(nth or 1):
        os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))
