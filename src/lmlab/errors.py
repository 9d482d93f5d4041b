"""Exceptions that the CLI turns into one-line messages instead of tracebacks."""

import errno


class LmlabError(Exception):
    """An expected failure with a message meant for the user. `exit_code` is what the CLI returns."""

    exit_code = 1


class UserError(LmlabError):
    """A user mistake (bad preset, field, value, path): one line naming it and what would be valid."""

    exit_code = 2


class TrainingDiverged(LmlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


class StorageError(LmlabError):
    """A write failed (disk full, file-size limit, read-only folder); what was saved before is intact."""

    exit_code = 1


class Interrupted(LmlabError):
    """SIGTERM or SIGINT stopped training after saving `last`; `lmlab train --resume` continues it."""

    exit_code = 130
    label = "stopped"


FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def os_error_message(err: OSError) -> str:
    """One line for an OSError that reached the CLI: a full disk says so and names what was being
    written; anything else names the path and the system's reason."""
    path = err.filename or "a file"
    if err.errno in FULL:
        return f"{FULL[err.errno]} writing {path}; free some space and run the command again"
    return f"{path}: {err.strerror or err}"


# The optional packages and the extra of pyproject.toml that installs each: the core runs without them.
EXTRAS = {"matplotlib": "plot", "transformers": "hf", "datasets": "hf", "pyarrow": "parquet", "lm_eval": "eval",
          "sacrebleu": "eval", "ray": "ray", "tensorboard": "track", "wandb": "track"}


def need(module: str, what: str):
    """`module`, imported; absent, one line naming the extra that installs it (`what` is the verb or
    setting that wanted it). A package that is there but fails on an import of its own says that."""
    import importlib

    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name and err.name.split(".")[0] != top:
            raise UserError(f"{what} needs {top}, which is installed but does not import ({err})") from None
        raise UserError(f"{what} needs {top}, which is not installed: pip install 'lmlab[{EXTRAS[top]}]'") from None


def has(module: str) -> bool:
    """Whether an optional package imports (for output that is left out without it, not refused)."""
    try:
        need(module, "")
    except UserError:
        return False
    return True
