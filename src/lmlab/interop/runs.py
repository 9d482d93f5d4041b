"""`lmlab export` / `lmlab import`: run directories to and from Hugging Face model folders.

An exported folder holds config.json, model.safetensors and a tokenizer that
`AutoModelForCausalLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)` load
offline, with the same ids and logits as lmlab. An imported run holds the model as its
`last` checkpoint (step 0, no optimizer state), so eval, generate and analysis work on it, and
`lmlab train --resume DIR` fine-tunes it with the settings in its config.toml.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lmlab.config import RunConfig
from lmlab.errors import UserError


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "last", fmt: str = "hf") -> Path:
    from lmlab.interop.models import to_hf_model
    from lmlab.interop.tokenizers import to_hf_tokenizer
    from lmlab.load import load_run

    if fmt != "hf":
        raise UserError(f"--format={fmt!r} is not supported; valid: hf")
    loaded = load_run(run_dir, checkpoint, device="cpu")
    hf_model = to_hf_model(loaded.model)  # refuses shapes without an HF counterpart, naming the switch
    out = Path(out)
    hf_model.save_pretrained(out)
    to_hf_tokenizer(loaded.tokenizer).save_pretrained(out)
    return out


def import_run(hf_dir: str | Path, run_dir: str | Path, overwrite: bool = False) -> Path:
    from transformers import AutoModelForCausalLM

    from lmlab.checkpoint import save_checkpoint
    from lmlab.interop.models import from_hf_model
    from lmlab.runs import RunDir
    from lmlab.tokenizer import build_tokenizer, save_tokenizer
    from lmlab.train.job import TrainState

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise UserError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    if not (hf_dir / "tokenizer.json").is_file():
        raise UserError(f"{hf_dir} has no tokenizer.json (lmlab imports fast tokenizers only)")
    tokenizer = build_tokenizer("hf", "", str(hf_dir / "tokenizer.json"))
    model = from_hf_model(AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True))
    cfg = RunConfig(name=hf_dir.name).replace(
        tokenizer={"kind": "hf", "path": str((hf_dir / "tokenizer.json").resolve())},
        model=dataclasses.asdict(model.config), train={"lr": 1e-4, "warmup_steps": 0, "max_steps": 1000})
    run = RunDir.create(run_dir, overwrite)
    save_tokenizer(tokenizer, run.tokenizer)
    cfg.save(run.config)
    meta = {"step": 0, "state": TrainState().to_dict(), "metrics": {}, "config": cfg.to_dict(),
            "tokenizer": "hf", "imported_from": str(hf_dir.resolve())}
    save_checkpoint(run.checkpoint("last"), model, None, meta)
    return run.root
