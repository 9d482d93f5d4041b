"""Reopen a trained run: config, tokenizer and model rebuilt from the run directory alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lmlab.checkpoint import load_weights, read_meta
from lmlab.config import RunConfig, load_config
from lmlab.errors import UserError
from lmlab.model import LanguageModel, build_model
from lmlab.runs import RunDir
from lmlab.tokenizer import load_tokenizer
from lmlab.train.precision import Precision, resolve_device, resolve_precision


@dataclass
class LoadedRun:
    run: RunDir
    cfg: RunConfig
    model: LanguageModel
    tokenizer: object
    device: torch.device
    meta: dict

    def encode_prompt(self, text: str) -> torch.Tensor:
        ids = self.tokenizer.encode(text)
        if not ids:  # an empty prompt starts a new document
            ids = [self.tokenizer.eos_id if self.tokenizer.eos_id is not None else 0]
        return torch.tensor([ids], dtype=torch.long, device=self.device)  # (1, T)

    def precision(self) -> Precision:
        return Precision(resolve_precision(self.cfg.train.precision, self.device), self.device)


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str = "auto") -> LoadedRun:
    if checkpoint not in ("last", "best"):
        raise UserError(f"--checkpoint={checkpoint!r} is not valid; expected last or best")
    run = RunDir.open(run_dir)
    if not run.has_checkpoint(checkpoint):
        raise UserError(f"run directory {run.root} has no '{checkpoint}' checkpoint; try --checkpoint last")
    cfg = load_config(run.config)
    tokenizer = load_tokenizer(run.tokenizer)
    dev = resolve_device(device)
    model = build_model(cfg.model, tokenizer.vocab_size)
    load_weights(run.checkpoint(checkpoint), model)
    model.to(dev).eval()
    return LoadedRun(run, cfg, model, tokenizer, dev, read_meta(run.checkpoint(checkpoint)))
