"""Reopen a trained run: config, tokenizer and model rebuilt from the run directory alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lmlab.checkpoint import load_weights, read_meta, require_last, sha256_file
from lmlab.config import RunConfig, load_config
from lmlab.errors import UserError
from lmlab.model import LanguageModel, build_model
from lmlab.runs import RunDir, check_same_model
from lmlab.tokenizer import load_tokenizer
from lmlab.device import Precision, resolve_device, resolve_precision
from lmlab.tokenizer.base import FILE_NAME


@dataclass
class LoadedRun:
    run: RunDir
    cfg: RunConfig
    model: LanguageModel
    tokenizer: object
    device: torch.device
    meta: dict

    def encode_prompt(self, text: str) -> torch.Tensor:
        """The prompt's ids; characters the tokenizer cannot encode are refused by name, not
        silently replaced by <unk>."""
        check_known(self.tokenizer, text, "the prompt")
        ids = self.tokenizer.encode(text)
        if not ids:  # an empty prompt starts a new document
            ids = [self.tokenizer.eos_id if self.tokenizer.eos_id is not None else 0]
        return torch.tensor([ids], dtype=torch.long, device=self.device)  # (1, T)

    def precision(self) -> Precision:
        return Precision(resolve_precision(self.cfg.train.precision, self.device), self.device)


def check_known(tokenizer, text: str, what: str) -> None:
    """Refuse text with characters the tokenizer would turn into <unk>, naming them."""
    unknown = unknown_chars(tokenizer, text)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise UserError(f"{what} holds {len(unknown)} character(s) this run's {tokenizer.kind} tokenizer "
                        f"does not know: {shown}; leave them out (it knows only its training text's characters)")


def unknown_chars(tokenizer, text: str) -> list[str]:
    """Distinct characters of `text` that `tokenizer` would map to its unknown id."""
    chars = getattr(tokenizer, "chars", None)
    if chars is not None and getattr(tokenizer, "unk_id", None) is not None:
        known = set(chars)
        return list(dict.fromkeys(c for c in text if c not in known))
    return []


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str = "auto") -> LoadedRun:
    """Config, tokenizer and verified weights of a run at checkpoint best, last or a kept step
    number; refuses a damaged checkpoint, a tokenizer that no longer matches the model, and a
    config edited since the checkpoint was saved."""
    dev = resolve_device(device, "--device")
    run = RunDir.open(run_dir, need_checkpoint=False)
    require_last(run)
    checkpoint = run.checkpoint_name(checkpoint)
    if not run.has_checkpoint(checkpoint):
        raise UserError(f"run directory {run.root} has no '{checkpoint}' checkpoint; try --checkpoint last")
    cfg = load_config(run.config, saved_run=True)
    meta = read_meta(run.checkpoint(checkpoint))
    tokenizer = load_tokenizer(run.tokenizer)
    check_tokenizer(run, cfg, tokenizer, meta)
    check_same_model(run, cfg, meta)
    model = build_model(cfg.model, tokenizer.vocab_size)
    load_weights(run.checkpoint(checkpoint), model)
    model.to(dev).eval()
    return LoadedRun(run, cfg, model, tokenizer, dev, meta)


def check_tokenizer(run: RunDir, cfg, tokenizer, meta: dict) -> None:
    """The tokenizer in the run directory must be the one the model was trained with."""
    if cfg.model.vocab_size and tokenizer.vocab_size > cfg.model.vocab_size:
        raise UserError(f"{run.tokenizer} has {tokenizer.vocab_size} tokens but the model has "
                        f"{cfg.model.vocab_size} (model.vocab_size): the tokenizer does not belong to this model")
    expected = meta.get("tokenizer_sha256")
    if expected and sha256_file(run.tokenizer / FILE_NAME) != expected:
        raise UserError(f"{run.tokenizer / FILE_NAME} is not the tokenizer this checkpoint was trained with "
                        f"(its SHA-256 differs from the one in meta.json); restore it")
