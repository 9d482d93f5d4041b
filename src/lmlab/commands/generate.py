"""`lmlab generate`: stream a sample from a run."""

from __future__ import annotations

import argparse
import math
import sys

from lmlab.errors import UserError


def add_parser(verbs) -> None:
    p = verbs.add_parser("generate", help="sample text from a run (streamed)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: start a new document)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    add_repetition_args(p)
    p.add_argument("--seed", type=int, default=None, help="same seed, same text")
    p.add_argument("--checkpoint", default="last", help="last (default), best or a step kept by train.keep_checkpoints=log")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token")
    p.add_argument("--quantize", default="none", choices=("none", "int8"), help="none (default) or int8: "
                   "weight-only int8 linear layers, faster on CPU, slightly different logits")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--ablate-heads", metavar="L.H,...", help="zero-ablate these heads (hook_z), e.g. 1.1,1.2")
    p.set_defaults(fn=cmd_generate)


def add_repetition_args(p, applies: str = "") -> None:
    """--repetition-penalty and --no-repeat-ngram, shared by `lmlab generate` and `lmlab sample`:
    transformers' repetition_penalty and no_repeat_ngram_size (lmlab.generate.penalize)."""
    p.add_argument("--repetition-penalty", type=_penalty, default=1.0, metavar="F",
                   help="divide the logit of every token already in the text (prompt included) by F when "
                        "positive, multiply when negative, before temperature/top-k/top-p, as transformers' "
                        f"repetition_penalty; 1 = off (default), e.g. 1.3{applies}")
    p.add_argument("--no-repeat-ngram", type=_ngram, default=0, metavar="N",
                   help="never complete an N-gram already in the text (prompt included), as transformers' "
                        f"no_repeat_ngram_size; 0 = off (default){applies}")


def _penalty(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected a number > 0 (1 = off, e.g. 1.3)")
    return value


def _ngram(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected an integer >= 0 (0 = off, e.g. 3)")
    return value


def cmd_generate(args, overrides) -> int:
    from lmlab.generate import Sampling, generate, never_sampled
    from lmlab.load import load_run

    if args.max_new_tokens < 0:
        raise UserError(f"--max-new-tokens={args.max_new_tokens} is invalid; expected 0 or more")
    if not 0.0 < args.top_p <= 1.0:
        raise UserError(f"--top-p={args.top_p} is invalid; expected a float in (0, 1]")
    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.repetition_penalty, args.no_repeat_ngram)
    loaded = load_run(args.run_dir, args.checkpoint, args.device)
    model = loaded.model
    if args.quantize == "int8":
        from lmlab.quantize import quantize_int8

        model = quantize_int8(model)
    from lmlab.analysis.ablation import ablate_heads_text

    with ablate_heads_text(model, args.ablate_heads):
        stream = TextStream(loaded.tokenizer, sys.stdout)
        sys.stdout.write(args.prompt)
        generate(model, loaded.encode_prompt(args.prompt), args.max_new_tokens, sampling, args.seed,
                 use_cache=not args.no_cache, on_token=stream.push, vocab_size=loaded.tokenizer.vocab_size,
                 never=never_sampled(loaded.tokenizer))
        stream.finish()
    return 0


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
