"""The ground floor every module may import: atomic writes, JSONL, ownership markers, locks.

Four promises live here, so every writer keeps them the same way:
- a file is replaced whole or not at all (temporary file + fsync + rename), with the
  permissions the user's umask asks for (a colleague can read a shared run);
- a JSONL log with one damaged line keeps every other line (the damaged one is named);
- lmlab only ever deletes what it wrote itself, in a folder its marker file lists it in;
- one process at a time writes into a run directory (an flock the kernel drops when the
  process dies, so a crash never leaves it stuck).
"""

from __future__ import annotations

import fcntl
import hashlib
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
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not err.filename:
            err.filename = str(path)  # a full disk names the file it was writing
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
#
# A folder lmlab made holds a marker: a JSON record of its kind and the top-level names lmlab
# writes there ("owns"). lmlab removes exactly those names and nothing else, and refuses, naming
# them, when anything else is in the folder: a user's notes beside a run are never deleted.

def write_marker(directory: Path, marker: str, kind: str, owns=(), **fields: Any) -> None:
    """Mark `directory` as made by lmlab (`kind`: run, export, study, analysis), owning `owns`."""
    record = {"format": 2, "kind": kind, "owns": sorted(set(owns)), **fields}
    atomic_write_text(Path(directory) / marker, json.dumps(record) + "\n")


def read_marker(directory: Path, marker: str) -> dict | None:
    """The marker's record; None without a marker. A damaged marker reads as an empty record
    (owning nothing), so a damaged one can never widen what lmlab deletes."""
    path = Path(directory) / marker
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def update_marker(directory: Path, marker: str, **fields: Any) -> None:
    """Set `fields` in an existing marker (atomically); nothing happens without one."""
    record = read_marker(directory, marker)
    if record is not None and any(record.get(k) != v for k, v in fields.items()):
        atomic_write_text(Path(directory) / marker, json.dumps({**record, **fields}) + "\n")


def is_owned(directory: Path, marker: str) -> bool:
    """True when lmlab made `directory` (it holds `marker`)."""
    return (Path(directory) / marker).is_file()


def owned_names(directory: Path, marker: str, layout=()) -> set[str]:
    """The top-level names lmlab owns in `directory`: the marker's list (markers written before
    the list existed own `layout`, the folder kind's fixed names), the marker and the lock."""
    record = read_marker(directory, marker) or {}
    owns = record.get("owns") if record.get("format", 1) >= 2 else layout
    return {*(owns if isinstance(owns, (list, tuple)) else ()), marker, LOCK_NAME}


def foreign_entries(directory: Path, marker: str, layout=()) -> list[str]:
    """Names in `directory` that lmlab did not write (sorted): what it must never delete."""
    owned = owned_names(directory, marker, layout)
    return sorted(p.name for p in Path(directory).iterdir() if p.name not in owned)


def listed(names: list[str], most: int = 5) -> str:
    """'a, b, c' — at most `most` names, then how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def remove_owned(directory: Path, marker: str, layout=(), what: str = "folder") -> None:
    """Remove what lmlab wrote in a folder it made (keeping the folder and its lock file).

    This is the only way lmlab deletes inside a user-named folder. It refuses with one line and
    deletes nothing when the folder has no marker, or holds anything lmlab did not write."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a {what}; choose another path")
    if not is_owned(directory, marker):
        raise UserError(f"{directory} was not made by lmlab (no {marker} marker), so lmlab will not delete "
                        f"anything in it; choose an empty or new folder")
    foreign = foreign_entries(directory, marker, layout)
    if foreign:
        raise UserError(f"{what} {directory} holds files lmlab did not write ({listed(foreign)}); lmlab deletes "
                        f"only its own: move them out, or choose another folder")
    for entry in directory.iterdir():
        if entry.name in (LOCK_NAME, marker):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (directory / marker).unlink()  # last: a removal that fails half-way leaves a folder still marked lmlab's


def check_out_folder(directory: Path, marker: str, flag: str = "--out") -> Path:
    """A folder a verb will write its results into (`--out DIR`) must be new, empty, or marked by
    lmlab before: one holding anything else is refused before any work, so a user's files are never
    overwritten. Checks only; `claim_out_folder` makes and marks it when the results are ready."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{flag} {directory} is a file; give a folder (it is created if missing)")
    if directory.is_dir() and any(directory.iterdir()) and not is_owned(directory, marker):
        raise UserError(f"{flag} {directory} already holds files that lmlab did not write; lmlab will not "
                        f"overwrite them: choose an empty or new folder")
    return directory


def claim_out_folder(directory: Path, marker: str, kind: str, flag: str = "--out") -> Path:
    """`check_out_folder`, then create the folder and mark it as lmlab's (kind: analysis, probe...)."""
    directory = check_out_folder(directory, marker, flag)
    if not is_owned(directory, marker):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_marker(directory, marker, kind)
        except OSError as err:
            raise UserError(f"{flag} {directory}: cannot write there ({err.strerror})") from None
    return directory


# ----------------------------------------------------------------------------- locks

def path_lock_file(directory: Path, create: bool = True) -> Path:
    """The lock file for `directory` that lives outside it (in a per-user folder under the temp
    directory, named by the folder's real path): deleting the folder cannot take this lock with it,
    so a second trainer can never start on a run whose folder was removed under the first."""
    base = Path(tempfile.gettempdir()) / f"lmlab-locks-{os.getuid()}"
    if create:
        base.mkdir(mode=0o700, exist_ok=True)
    key = hashlib.sha256(os.path.realpath(directory).encode()).hexdigest()[:32]
    return base / f"{key}.lock"


class DirLock:
    """Exclusive flocks on DIR/.lmlab-lock (it names the holder's pid beside the run) and on the
    folder's lock outside it (`path_lock_file`), held while the files stay open. The kernel drops
    them when the process exits in any way (even SIGKILL), so a crash never leaves one stuck."""

    def __init__(self, directory: Path, what: str = "run directory"):
        self.directory, self.what, self._fd, self._outside = Path(directory), what, None, -1

    def acquire(self) -> "DirLock":
        outside = self._take(path_lock_file(self.directory))  # first: it survives the folder's removal
        try:
            inside = self._take(self.directory / LOCK_NAME)
        except BaseException:
            os.close(outside)
            raise
        self._fd, self._outside = inside, outside
        return self

    def _take(self, path: Path) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._refuse(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def check(self) -> None:
        """Refuse as acquire() would when another process holds the lock; creates and changes nothing
        (a shared probe on the existing lock files, dropped at once)."""
        for path in (path_lock_file(self.directory, create=False), self.directory / LOCK_NAME):
            try:
                fd = os.open(path, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                continue
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
                os.close(self._outside)

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
