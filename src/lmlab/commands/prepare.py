"""`lmlab prepare`: read, split, tokenize and cache a config's data; print its statistics."""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.commands import EPILOG, add_config_args, resolve_config


def add_parser(verbs) -> None:
    p = verbs.add_parser("prepare", help="read, split, tokenize and cache a config's data; print its statistics",
                         epilog=EPILOG)
    add_config_args(p, "prepare")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--out", metavar="DIR", help="also write stats.json, stats.csv and lengths.png here")
    p.add_argument("--force", action="store_true", help="prepare again even if the cache holds it")
    p.set_defaults(fn=cmd_prepare, takes_overrides=True)


def cmd_prepare(args, overrides) -> int:
    from lmlab.data.prepare import prepare
    from lmlab.data.stats import format_table, write_stats

    cfg = resolve_config(args.config, args.data, overrides)
    prepared = prepare(cfg, force=args.force)
    out = Path(args.out) if args.out else prepared.directory
    written = write_stats(prepared, out) if out else []
    if args.json:
        print(json.dumps(prepared.stats, indent=1))
        return 0
    print(format_table(prepared.stats))
    where = prepared.directory or "not cached (data.cache = false)"
    print(f"\ntoken cache: {where}{' (reused)' if prepared.stats.get('cached') else ''}")
    for path in written:
        print(f"wrote {path}")
    return 0
