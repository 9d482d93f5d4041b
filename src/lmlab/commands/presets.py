"""`lmlab presets`: the named presets, and on request every config field and registered choice."""

from __future__ import annotations


def add_parser(verbs) -> None:
    p = verbs.add_parser("presets", help="list the named presets")
    p.add_argument("--fields", action="store_true", help="also list every config field and its default")
    p.add_argument("--components", action="store_true", help="also list every registered choice (architectures, "
                   "components, activations, inputs, sources, generators, layouts, tokenizer kinds, ...)")
    p.set_defaults(fn=cmd_presets)


def cmd_presets(args, overrides) -> int:
    from lmlab.presets import describe_presets

    for name, doc in describe_presets().items():
        print(f"{name:<20} {doc}")
    if args.fields:
        from lmlab.config import format_fields

        print(format_fields())
    if args.components:
        from lmlab.registry import format_registries

        print(format_registries(skip=("preset",)))  # the presets are listed above
    return 0
