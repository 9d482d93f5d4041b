"""The verbs of `lmlab`, one module each: a parser builder `add_parser(verbs)` and the plain
function `cmd_x(args, overrides) -> int` it dispatches to.

How a verb is built (and how a package contributes its own, e.g. `lmlab/study/commands.py`):

    def add_parser(verbs) -> None:                # verbs: argparse's subparsers action
        p = verbs.add_parser("study", help="...", epilog=EPILOG)
        add_config_args(p)                        # PRESET|CONFIG.toml and --data, when it takes a config
        p.add_argument("--force", action="store_true", help="...")
        p.set_defaults(fn=cmd_study, takes_overrides=True)   # omit takes_overrides to refuse --SECTION.FIELD

then ONE line in `lmlab/cli.py`'s VERBS list names the builder. Command functions import what
they need inside (so `lmlab --help` stays fast), print what the user asked for with formatting
that lives beside the data's owner, and raise UserError for bad input. `resolve_config` (from
lmlab.presets, shared with studies and the launcher) turns PRESET|CONFIG.toml, --data and the
overrides into a RunConfig.
"""

from __future__ import annotations

from pathlib import Path

from lmlab.errors import UserError  # noqa: F401
from lmlab.presets.resolve import resolve_config  # noqa: F401  (the verbs' one way to a RunConfig)

EPILOG = ("Any config field can be set as --SECTION.FIELD=VALUE (sections: data, tokenizer, model, train, eval), "
          "e.g. --model.n_layer=6 --train.lr=3e-4. `lmlab presets --fields` lists every field.")


def add_config_args(p, what: str = "train on") -> None:
    """The positional PRESET|CONFIG.toml (default demo) and --data PATH."""
    p.add_argument("config", nargs="?", metavar="PRESET|CONFIG.toml", help="a preset name (see `lmlab presets`) "
                   "or a TOML config file; default: demo")
    add_data_arg(p, what)


def add_data_arg(p, what: str = "train on") -> None:
    """--data PATH, read by `resolve_config` (train, prepare, and every run of a sweep or study)."""
    p.add_argument("--data", metavar="PATH", help=f"{what} this text file or directory instead of the config's "
                   "sources (sets data.source=text, data.path)")
