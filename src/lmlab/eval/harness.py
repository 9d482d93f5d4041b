"""lm-evaluation-harness adapter: an `lm_eval` model named `lmlab` that scores with any lmlab run.

It works for every lmlab architecture (it only needs the model's forward pass and the run's tokenizer),
including those without a Hugging Face counterpart. lm-eval 0.4.13 finds models only in its own
registry (no entry-point plugins), so its stock `lm_eval` command cannot see this one; instead run

    python -m lmlab.eval.harness --model lmlab --model_args run=RUN_DIR --tasks arc_easy ...
    lmlab lm-eval --model lmlab --model_args run=RUN_DIR --tasks arc_easy ...

which register `lmlab` and then hand every argument to lm-eval's own CLI. From Python, importing this
module registers it: `lm_eval.simple_evaluate(model="lmlab", model_args="run=RUN_DIR", ...)`.
model_args: run (required), checkpoint (last|best|a kept step), device (auto|cpu|cuda|mps), batch_tokens,
max_gen_toks. Scores come from `lmlab.eval.tasks.scoring`, the same code as `lmlab eval --tasks`, so a
continuation longer than the context is scored whole, in windows, on both paths. Unlike `lmlab eval --tasks`,
which skips items with characters a char tokenizer does not know, the adapter scores them with the <unk> id
(lm-eval has no way to drop an item); after each loglikelihood call it warns on stderr how many requests
held <unk> ids, were windowed or had their context cut (totals in `LmlabLM.counts`).
"""

from __future__ import annotations

import os
import sys

import torch

from lmlab.errors import UserError, need

# the adapter is only imported by the commands that need it. lm-eval's own models go into its registry
# first: it imports them only while the registry is empty, so registering "lmlab" alone would hide "hf"
need("lm_eval.models", "lmlab lm-eval (lm-evaluation-harness)")
from lm_eval.api.model import TemplateLM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402

from lmlab.eval.tasks.scoring import Scoring, score_requests
from lmlab.io import warn
from lmlab.generate import limit_vocab, never_sampled
from lmlab.load import load_run


@register_model("lmlab")
class LmlabLM(TemplateLM):
    """An lmlab model (from a run directory, or in memory) behind lm-eval's LM interface."""

    def __init__(self, run: str | None = None, checkpoint: str = "last", device: str = "auto",
                 batch_tokens: int = 0, max_gen_toks: int = 256, model=None, tokenizer=None,
                 context_len: int | None = None, **_ignored):
        super().__init__()
        self._autocast = None
        if model is None:
            if not run:
                raise UserError("--model_args needs run=RUN_DIR (an lmlab run directory)")
            if not device or (str(device).startswith("cuda") and not torch.cuda.is_available()):
                device = "auto"  # lm_eval's CLI passes --device cuda:0 by default, even on CPU-only machines
            loaded = load_run(run, checkpoint, str(device))
            model, tokenizer, context_len = loaded.model, loaded.tokenizer, loaded.cfg.model.context_len
            self._device = loaded.device
            self._autocast = loaded.precision().autocast
        else:
            self._device = next(model.parameters()).device
        self.model, self.tokenizer_lmlab = model.eval(), tokenizer
        self.context_len = int(context_len or model.config.context_len)
        self.batch_tokens, self.max_gen_toks = int(batch_tokens), int(max_gen_toks)
        self.counts = {"requests": 0, "continuation_windowed": 0, "truncated": 0, "unknown_ids": 0}

    # --------------------------------------------------------------- tokens
    @property
    def eot_token_id(self) -> int:
        eos = self.tokenizer_lmlab.eos_id
        return int(eos) if eos is not None else 0

    @property
    def max_length(self) -> int:
        return self.context_len

    @property
    def device(self):
        return self._device

    def tok_encode(self, string: str, add_special_tokens=None, **kwargs) -> list[int]:
        return list(self.tokenizer_lmlab.encode(string))

    def tok_decode(self, tokens) -> str:
        return self.tokenizer_lmlab.decode(list(tokens))

    # --------------------------------------------------------------- scoring
    def _score(self, pairs, disable_tqdm: bool = True):
        scoring = Scoring(self.context_len, self.batch_tokens, self._device, self._autocast, not disable_tqdm)
        return score_requests(self.model, pairs, scoring, desc="lmlab")

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """requests: ((context, continuation), context ids, continuation ids) from TemplateLM.loglikelihood."""
        pairs = [(ctx, cont) for _, ctx, cont in requests]
        scored = self._score(pairs, disable_tqdm)
        self._count(pairs, scored)
        results = [(s.logprob, s.greedy) for s in scored]
        for (key, _, _), res in zip(requests, results):
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, res)
        return results

    def _count(self, pairs, scored) -> None:
        """lm-eval's results have no column for these, so they are counted here and said on stderr."""
        unk = getattr(self.tokenizer_lmlab, "unk_id", None)
        new = {"requests": len(pairs), "continuation_windowed": sum(s.windowed for s in scored),
               "truncated": sum(s.truncated for s in scored),
               "unknown_ids": 0 if unk is None else sum(unk in ctx or unk in cont for ctx, cont in pairs)}
        for key, value in new.items():
            self.counts[key] += value
        if any(new[k] for k in ("continuation_windowed", "truncated", "unknown_ids")):
            warn(f"lmlab model, {new['requests']} loglikelihood requests: {new['continuation_windowed']} "
                 f"continuations longer than the {self.context_len}-token context scored whole in windows, "
                 f"{new['truncated']} contexts cut from the left, {new['unknown_ids']} hold <unk> ids (characters "
                 f"the run's tokenizer does not know, scored as <unk>)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Whole-document log-likelihood in disjoint windows of the context length: a continuation after the
        end-of-text token, which score_requests splits into lm-eval's own rolling windows."""
        out = []
        for req in requests:
            (text,) = req.args[:1]
            total = self._score([([self.prefix_token_id], self.tok_encode(text))])[0].logprob
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            out.append(total)
        return out

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy continuation, cut at the first of `until` (default: the end-of-text text) or max_gen_toks;
        never a padded id or <unk>, as in lmlab's own samplers."""
        out = []
        for req in requests:
            context, gen_kwargs = req.args[0], dict(req.args[1] or {})
            until = gen_kwargs.get("until") or [self.tok_decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
            ids = self.tok_encode(context) or [self.prefix_token_id]
            new: list[int] = []
            text = ""
            for _ in range(max_new):
                x = torch.tensor([(ids + new)[-self.context_len:]], device=self._device)  # (1, T)
                logits = limit_vocab(self.model.next_logits(x), self.tokenizer_lmlab.vocab_size,
                                     never_sampled(self.tokenizer_lmlab))
                nxt = int(logits.argmax(-1)[0])
                if nxt == self.eot_token_id:
                    break
                new.append(nxt)
                text = self.tok_decode(new)
                if any(s and s in text for s in until):
                    break
            for s in until:
                if s:
                    text = text.split(s)[0]
            self.cache_hook.add_partial("generate_until", (context, req.args[1]), text)
            out.append(text)
        return out


def main(argv: list[str] | None = None) -> int:
    """lm-eval's own CLI, with `lmlab` registered (this module's import did it)."""
    from lm_eval.__main__ import cli_evaluate

    argv = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as stop:  # argparse's --help / usage errors
        return int(stop.code or 0) if isinstance(stop.code, int) or stop.code is None else 2
    except OSError as err:  # a task's dataset is on the Hub and the Hub cannot be reached (offline, no network)
        if not raised_in(err, DOWNLOADERS):
            raise
        raise UserError(offline_message(err, argv)) from None
    except ValueError as err:  # lm-eval's way to refuse its arguments, e.g. "Tasks not found: nosuchtask"
        if not raised_by_lm_eval(err):
            raise  # a bug in lmlab's adapter or scoring keeps its traceback
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = "; `lmlab lm-eval --tasks list` shows the valid tasks" if "task" in first.lower() else ""
        raise UserError(f"lm-eval: {first}{hint}") from None
    finally:
        sys.argv = saved
    return 0


def raised_by_lm_eval(err: BaseException) -> bool:
    """The exception was raised in lm-eval's own code (its argument checks), not in lmlab's."""
    return raised_in(err, ("lm_eval",))


DOWNLOADERS = ("datasets", "huggingface_hub", "requests", "urllib3", "fsspec")


def raised_in(err: BaseException, packages: tuple[str, ...]) -> bool:
    """The innermost frame of `err` is in one of `packages` (not in lmlab's code)."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and any(f"{os.sep}{p}{os.sep}" in frames[-1].filename for p in packages)


def offline_message(err: OSError, argv: list[str]) -> str:
    """Which task wanted a download, and the two ways to run it: with network once, or a local copy."""
    task = task_in_traceback(err) or _flag(argv, "--tasks") or "a task"
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return (f"lm-eval task {task} needs its dataset downloaded, and that failed ({reason}); run it once with "
            f"network access (the Hugging Face cache keeps it after), or give a local copy with --include_path "
            f"DIR holding a task YAML whose dataset points at local files")


def task_in_traceback(err: BaseException) -> str | None:
    """The name of the lm-eval task whose loading raised `err` (its ConfigurableTask is `self` in a frame)."""
    name, tb = None, err.__traceback__
    while tb is not None:
        task = getattr(getattr(tb.tb_frame.f_locals.get("self"), "config", None), "task", None)
        name = task if isinstance(task, str) else name
        tb = tb.tb_next
    return name


def _flag(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    sys.exit(main())
