"""`lmlab <verb>`: a thin layer that maps each verb to a plain function.

Settings are never flags of their own: any config field is set as --SECTION.FIELD=VALUE.
A user mistake prints one line and exits 2; a diverged run exits 1; no tracebacks for either.
Each verb is a parser builder plus a command function in `lmlab/commands/` (or in the package
that owns the verb); the VERBS list below is the whole table, and `lmlab.commands` says how to
add one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from lmlab.analysis import commands as analysis_commands
from lmlab.commands import EPILOG, evaluate, generate, interop, prepare, presets, report, resolve_config, train
from lmlab.errors import LmlabError, UserError, os_error_message
from lmlab.study import commands as study_commands
from lmlab.eval.tasks.commands import add_lm_eval_parser
from lmlab.train import commands as train_commands

__all__ = ["VERBS", "build_parser", "main", "resolve_config", "split_overrides", "verb_names"]

# One parser builder per verb, in the order `lmlab --help` lists them. A package adds its verbs
# with one line here: its builder (or an `add_parsers(verbs)` that adds several).
VERBS = [
    train.add_demo_parser,
    train.add_train_parser,
    prepare.add_parser,
    evaluate.add_parser,
    add_lm_eval_parser,  # lmlab lm-eval: lm-evaluation-harness with the `lmlab` model (lmlab/eval/harness.py)
    generate.add_parser,
    presets.add_parser,
    interop.add_export_parser,
    interop.add_import_parser,
    report.add_parser,
    study_commands.add_parsers,  # sweep, study, studies, table
    train_commands.add_parsers,
    analysis_commands.add_parsers,  # analyze, probe, sample
]


class Parser(argparse.ArgumentParser):
    """argparse with the house's one-line errors: a bad flag is a UserError like any other."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def split_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate --section.field[=value] settings from the verb's own arguments."""
    from lmlab.config import SECTIONS

    rest, overrides, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        key = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
        if "." in key and key.split(".", 1)[0] in SECTIONS:
            if "=" in arg:
                overrides[key] = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                overrides[key], i = argv[i + 1], i + 1
            else:
                raise UserError(f"--{key} needs a value: --{key}=VALUE")
        elif "." in key:
            raise UserError(f"--{key}: unknown section {key.split('.', 1)[0]!r}; valid: {', '.join(SECTIONS)}")
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


def build_parser() -> argparse.ArgumentParser:
    from lmlab import __version__

    parser = Parser(prog="lmlab", description="A laboratory for small decoder-only language models.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"lmlab {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for add in VERBS:
        add(verbs)
    return parser


def verb_names() -> list[str]:
    """Every verb the parser knows, in --help order."""
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(actions[0].choices)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        rest, overrides = split_overrides(argv)
        args = parser.parse_args(rest)
        if not getattr(args, "fn", None):
            parser.print_help()
            return 2
        if overrides and not getattr(args, "takes_overrides", False):
            raise UserError(f"lmlab {args.verb} takes no config overrides (got --{next(iter(overrides))})")
        code = args.fn(args, overrides)
        sys.stdout.flush()  # here, so a reader that left early is met inside the try
        return code
    except LmlabError as err:
        print(f"lmlab: {getattr(err, 'label', 'error')}: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # `lmlab presets | head -1`: the reader has what it wanted
        return quiet_exit_on_closed_pipe()
    except OSError as err:  # a path the system refuses (read-only, a file where a folder should be, disk full)
        print(f"lmlab: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmlab: interrupted", file=sys.stderr)
        return 130


def quiet_exit_on_closed_pipe() -> int:
    """Stop without a word, as `yes | head -1` does: stdout goes to /dev/null so the interpreter's
    own flush at exit does not fail again, and the status is a SIGPIPE death's (128 + 13)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured by a test or an embedding program)
        pass
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
