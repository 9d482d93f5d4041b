"""`lmlab <verb>`: a thin layer that maps each verb to a plain function.

Settings are never flags of their own: any config field is set as --SECTION.FIELD=VALUE.
A user mistake prints one line and exits 2; a diverged run exits 1; no tracebacks for either.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from lmlab.errors import LmlabError, UserError

EPILOG = ("Any config field can be set as --SECTION.FIELD=VALUE (sections: data, tokenizer, model, train, eval), "
          "e.g. --model.n_layer=6 --train.lr=3e-4. `lmlab presets --fields` lists every field.")


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


def resolve_config(spec: str | None, data: str | None, overrides: dict[str, str]):
    """PRESET name or CONFIG.toml, then --data, then dotted overrides."""
    from lmlab.config import apply_overrides, load_config
    from lmlab.presets import get_preset

    if spec and (spec.endswith(".toml") or Path(spec).is_file()):
        cfg = load_config(spec)
    else:
        cfg = get_preset(spec or "demo")
    if data:
        if not Path(data).exists():
            raise UserError(f"--data {data}: no such file or directory")
        cfg = cfg.replace(data={"sources": [], "source": "text", "path": str(Path(data).resolve())})
    return apply_overrides(cfg, overrides)


# ----------------------------------------------------------------------------- verbs

def cmd_train(args, overrides) -> int:
    from lmlab.report import write_report
    from lmlab.train import resume, train

    if args.resume:
        if args.config or args.data or overrides:
            raise UserError("--resume continues a run with its saved config; drop the preset, --data and overrides")
        result = resume(args.resume)
    else:
        cfg = resolve_config(args.config, args.data, overrides)
        run_dir = args.run_dir or f"runs/{cfg.name}"
        result = train(cfg, run_dir, overwrite=args.force)
    write_report(result.run_dir)
    print_result(result)
    return 0


def cmd_demo(args, overrides) -> int:
    from lmlab.demo import run_demo

    run_demo(args.run_dir, overrides)
    return 0


def cmd_eval(args, overrides) -> int:
    from lmlab.eval.run import eval_run

    metrics = eval_run(args.run_dir, args.checkpoint, args.max_tokens, args.device, args.split)
    if args.json:
        print(json.dumps(metrics))
        return 0
    by_source = metrics.pop("by_source", {})
    for key, value in metrics.items():
        print(f"{key:>14}: {value:.4f}" if isinstance(value, float) else f"{key:>14}: {value}")
    for name, values in by_source.items():
        print(f"{name:>14}: loss {values['loss']:.4f}, bits/byte {values['bits_per_byte']:.4f}, "
              f"{values['tokens']:,} tokens")
    return 0


def cmd_prepare(args, overrides) -> int:
    from lmlab.data import prepare
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


def cmd_generate(args, overrides) -> int:
    from lmlab.generate import generate
    from lmlab.load import load_run

    if args.max_new_tokens < 0:
        raise UserError(f"--max-new-tokens={args.max_new_tokens} is invalid; expected 0 or more")
    if not 0.0 < args.top_p <= 1.0:
        raise UserError(f"--top-p={args.top_p} is invalid; expected a float in (0, 1]")
    if args.quantize not in ("none", "int8"):
        raise UserError(f"--quantize={args.quantize!r} is not valid; expected none or int8")
    loaded = load_run(args.run_dir, args.checkpoint, args.device)
    model = loaded.model
    if args.quantize == "int8":
        from lmlab.quantize import quantize_int8

        model = quantize_int8(model)
    stream = TextStream(loaded.tokenizer, sys.stdout)
    sys.stdout.write(args.prompt)
    generate(model, loaded.encode_prompt(args.prompt), args.max_new_tokens, args.temperature,
             args.top_k, args.top_p, args.seed, use_cache=not args.no_cache, on_token=stream.push)
    stream.finish()
    return 0


def cmd_presets(args, overrides) -> int:
    from lmlab.config import field_docs
    from lmlab.presets import describe_presets
    from lmlab.registry import all_registries

    for name, doc in describe_presets().items():
        print(f"{name:<20} {doc}")
    if args.fields:
        for section, rows in field_docs().items():
            print(f"\n[{section}]")
            for name, kind, default in rows:
                if kind == "list":
                    print(f"  --{section}.{name}.N.FIELD  (a list of tables; see [[{section}.{name}]] below)")
                else:
                    print(f"  --{section}.{name}=<{kind}>  (default {default})")
        from lmlab.data.config import SourceConfig

        print("\n[[data.sources]]  (a TOML table per source; on the command line --data.sources.N.FIELD=VALUE)")
        for f, kind in SourceConfig.field_types().items():
            print(f"  {f}=<{kind.__name__}>  (default {getattr(SourceConfig(), f)!r})")
    if args.components:
        for field, registry in sorted(all_registries().items()):
            print(f"\n{field}:")
            for name, doc in registry.describe().items():
                print(f"  {name:<12} {doc}")
    return 0


def cmd_export(args, overrides) -> int:
    from lmlab.interop import export_run

    out = export_run(args.run_dir, args.out, args.checkpoint, args.format)
    print(f"exported {args.run_dir} to {out} (load with transformers' AutoModelForCausalLM / AutoTokenizer)")
    return 0


def cmd_import(args, overrides) -> int:
    from lmlab.interop import import_run

    run = import_run(args.hf_dir, args.run_dir, args.force)
    print(f"imported {args.hf_dir} into {run}: lmlab eval {run}, lmlab generate {run} --prompt ...")
    return 0


def cmd_report(args, overrides) -> int:
    from lmlab.report import write_report
    from lmlab.runs import RunDir

    print(write_report(RunDir.open(args.run_dir, need_checkpoint=False).root))
    return 0


# ----------------------------------------------------------------------------- output helpers

class TextStream:
    """Print tokens as they come, holding back bytes that do not yet form a whole character."""

    def __init__(self, tokenizer, out):
        self.tokenizer, self.out, self.ids, self.shown = tokenizer, out, [], 0

    def push(self, token: int) -> None:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return
        self.out.write(text[self.shown:])
        self.out.flush()
        self.shown = len(text)

    def finish(self) -> None:
        text = self.tokenizer.decode(self.ids)
        self.out.write(text[self.shown:] + "\n")
        self.out.flush()


def print_result(result) -> None:
    m = result.metrics
    line = f"done: {result.steps} steps, {result.tokens_per_s:,.0f} tokens/s"
    if m:
        line += (f"; val loss {m['loss']:.4f}, perplexity {m['perplexity']:.2f}, accuracy {m['accuracy']:.3f}, "
                 f"bits/byte {m['bits_per_byte']:.3f}")
    print(line)
    for name, values in (m or {}).get("by_source", {}).items():
        print(f"  val {name}: loss {values['loss']:.4f}, bits/byte {values['bits_per_byte']:.3f}")
    stats_file = Path(result.run_dir) / "data" / "stats.json"
    if m and stats_file.is_file():
        for src in json.loads(stats_file.read_text()).get("sources", []):
            if "entropy_bits_per_symbol" in src:
                floor = src["entropy_bits_per_symbol"] * math.log(2)
                print(f"entropy rate of {src['name']}: {floor:.4f} nats/symbol, the floor for its loss; "
                      f"val loss is {m['loss'] - floor:+.4f} from it")
    print(f"run directory: {result.run_dir}")


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmlab", description="A laboratory for small decoder-only language models.",
                                     epilog=EPILOG)
    from lmlab import __version__

    parser.add_argument("--version", action="version", version=f"lmlab {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    p = verbs.add_parser("demo", help="train the demo preset on the built-in corpus, sample, evaluate, report",
                         epilog=EPILOG)
    p.add_argument("--run-dir", default="runs/demo", help="where the run goes (overwritten; default runs/demo)")
    p.set_defaults(fn=cmd_demo)

    p = verbs.add_parser("train", help="train a preset or a config file", epilog=EPILOG)
    p.add_argument("config", nargs="?", metavar="PRESET|CONFIG.toml", help="a preset name (see `lmlab presets`) "
                   "or a TOML config file; default: demo")
    p.add_argument("--data", metavar="PATH", help="train on this text file or directory (sets data.source=text, "
                   "data.path; replaces the config's sources)")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default runs/<config name>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint")
    p.set_defaults(fn=cmd_train)

    p = verbs.add_parser("prepare", help="read, split, tokenize and cache a config's data; print its statistics",
                         epilog=EPILOG)
    p.add_argument("config", nargs="?", metavar="PRESET|CONFIG.toml", help="a preset name or a TOML config; "
                   "default: demo")
    p.add_argument("--data", metavar="PATH", help="a text file or directory instead of the config's sources")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--out", metavar="DIR", help="also write stats.json, stats.csv and lengths.png here")
    p.add_argument("--force", action="store_true", help="prepare again even if the cache holds it")
    p.set_defaults(fn=cmd_prepare)

    p = verbs.add_parser("eval", help="evaluate a run on its validation (or test) split")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="val", choices=("val", "test"), help="val (default) or test")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--checkpoint", default="last", help="last (default) or best")
    p.add_argument("--max-tokens", type=int, default=0, help="score at most N tokens (default: the whole split)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(fn=cmd_eval)

    p = verbs.add_parser("generate", help="sample text from a run (streamed)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: start a new document)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same text")
    p.add_argument("--checkpoint", default="last", help="last (default) or best")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token")
    p.add_argument("--quantize", default="none", help="none (default) or int8: weight-only int8 linear layers, "
                   "faster on CPU, slightly different logits")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(fn=cmd_generate)

    p = verbs.add_parser("presets", help="list the named presets")
    p.add_argument("--fields", action="store_true", help="also list every config field and its default")
    p.add_argument("--components", action="store_true", help="also list every registered component")
    p.set_defaults(fn=cmd_presets)

    p = verbs.add_parser("export", help="write a run as a Hugging Face model folder")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", default="hf", help="hf (transformers; GPT-2- or LLaMA-shaped models)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument("--checkpoint", default="last", help="last (default) or best")
    p.set_defaults(fn=cmd_export)

    p = verbs.add_parser("import", help="make a run directory from a local Hugging Face GPT-2 or Llama folder")
    p.add_argument("hf_dir", metavar="HF_DIR")
    p.add_argument("--run-dir", required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.set_defaults(fn=cmd_import)

    p = verbs.add_parser("report", help="(re)write report.md and loss.png of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(fn=cmd_report)

    __import__("lmlab.study.commands").study.commands.add_parsers(verbs)  # sweep, study, studies, table
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        rest, overrides = split_overrides(argv)
        args = parser.parse_args(rest)
        if not getattr(args, "fn", None):
            parser.print_help()
            return 2
        if overrides and not (args.verb in ("train", "demo", "prepare") or getattr(args, "takes_overrides", False)):
            raise UserError(f"lmlab {args.verb} takes no config overrides (got --{next(iter(overrides))})")
        return args.fn(args, overrides)
    except LmlabError as err:
        print(f"lmlab: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("lmlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
