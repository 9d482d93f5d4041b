"""`lmlab export` / `lmlab import`: run directories to and from Hugging Face model folders.

An exported folder holds config.json, model.safetensors and a tokenizer that
`AutoModelForCausalLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)` load
offline, with the same ids and logits as lmlab. An imported run holds the model as its
`last` checkpoint (step 0, no optimizer state), so eval, generate and analysis work on it, and
`lmlab train --resume DIR` fine-tunes it with the settings in its config.toml.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from lmlab.config import RunConfig
from lmlab.errors import UserError, need
from lmlab.io import foreign_entries, listed, topmost_missing

EXPORT_MARKER = ".lmlab-export"
# What exports written before markers listed their files hold (transformers' save_pretrained names).
EXPORT_LAYOUT = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "last", fmt: str = "hf",
               force: bool = False) -> Path:
    """Write the run as an HF folder. The folder is built beside `out` and renamed into place, so
    it is whole or absent; an existing non-empty `out` is replaced only if it is an lmlab export
    (marker) and `force` is set: a user's folder is never mixed into or overwritten."""
    from lmlab.interop.models import to_hf_model
    from lmlab.interop.tokenizers import to_hf_tokenizer
    from lmlab.io import honour_umask, remove_owned, write_marker
    from lmlab.load import load_run

    if fmt != "hf":
        raise UserError(f"--format={fmt!r} is not supported; valid: hf")
    need("transformers", "lmlab export")  # before anything is loaded or written
    out = Path(out)
    check_export_target(out, force)
    loaded = load_run(run_dir, checkpoint, device="cpu")
    hf_model = to_hf_model(loaded.model)  # refuses shapes without an HF counterpart, naming the switch
    made = topmost_missing(out.parent)  # parents this export creates, removed again if it fails
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        hf_model.save_pretrained(tmp)
        to_hf_tokenizer(loaded.tokenizer).save_pretrained(tmp)
        write_marker(tmp, EXPORT_MARKER, "export", [p.name for p in tmp.iterdir()])
        honour_umask(tmp)
        if out.exists():
            remove_owned(out, EXPORT_MARKER, EXPORT_LAYOUT, what="export folder")
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(made if made is not None else tmp, ignore_errors=True)
        raise
    return out


def check_export_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder path for the export")
    if out.is_dir() and any(out.iterdir()):
        if not (out / EXPORT_MARKER).is_file():
            raise UserError(f"--out {out} already holds files that are not an lmlab export; lmlab will not "
                            f"overwrite or mix into them: choose an empty or new folder")
        foreign = foreign_entries(out, EXPORT_MARKER, EXPORT_LAYOUT)
        if foreign:
            raise UserError(f"--out {out} holds files the export did not write ({listed(foreign)}); lmlab "
                            f"deletes only its own, even with --force: move them out, or choose another folder")
        if not force:
            raise UserError(f"--out {out} already holds an lmlab export; use --force to replace it, "
                            f"or another folder")
    made = topmost_missing(out.parent)
    existing = out.parent if made is None else made.parent  # the folder the export writes into (or under)
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise UserError(f"--out {out}: cannot write into {existing} (permission denied)")


def check_hf_folder(hf_dir: Path) -> str:
    """The folder's model_type, after checking what a load needs, so a mistake is one line, not
    pages of library output. Only safetensors weights are accepted (a pickle is never loaded)."""
    if not hf_dir.is_dir():
        raise UserError(f"{hf_dir} is {'a file' if hf_dir.exists() else 'missing'}; expected a Hugging Face "
                        f"model folder")
    if not (hf_dir / "config.json").is_file():
        raise UserError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    try:
        config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{hf_dir / 'config.json'} is not valid JSON ({err})") from None
    from lmlab.interop.models import HF_FAMILIES  # with every family registered

    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in HF_FAMILIES:
        raise UserError(f"{hf_dir / 'config.json'} has model_type {kind!r}; lmlab imports "
                        f"{' and '.join(HF_FAMILIES.names())}")
    if not any(hf_dir.glob("*.safetensors")):
        raise UserError(f"{hf_dir} has no *.safetensors weights (lmlab never unpickles pytorch_model.bin); "
                        f"save the model with safe_serialization=True")
    return kind


def read_hf_folder(hf_dir: Path):
    """A transformers model from a checked local folder (safetensors only)."""
    kind = check_hf_folder(hf_dir)
    transformers = need("transformers", "lmlab import")
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    try:
        return AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True, use_safetensors=True)
    except Exception as err:  # transformers raises many kinds for a bad folder; one line names it
        detail = " ".join(str(err).split())[:200]
        raise UserError(f"{hf_dir} could not be loaded as a {kind} model: {detail}") from None


def import_run(hf_dir: str | Path, run_dir: str | Path, overwrite: bool = False) -> Path:
    from lmlab.checkpoint import save_checkpoint
    from lmlab.interop.models import from_hf_model
    from lmlab.runs import RunDir, TrainState
    from lmlab.tokenizer import build_tokenizer, save_tokenizer

    hf_dir = Path(hf_dir)
    if not hf_dir.is_dir():
        raise UserError(f"{hf_dir} is {'a file' if hf_dir.exists() else 'missing'}; expected a Hugging Face "
                        f"model folder")
    if not (hf_dir / "config.json").is_file():
        raise UserError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    if not (hf_dir / "tokenizer.json").is_file():
        raise UserError(f"{hf_dir} has no tokenizer.json (lmlab imports fast tokenizers only)")
    check_hf_folder(hf_dir)
    try:
        tokenizer = build_tokenizer("hf", "", str(hf_dir / "tokenizer.json"))
    except UserError:
        raise
    except Exception as err:  # the tokenizers library's own parse errors
        raise UserError(f"{hf_dir / 'tokenizer.json'} is not a valid tokenizer file ({' '.join(str(err).split())[:120]})") \
            from None
    model = from_hf_model(read_hf_folder(hf_dir))
    cfg = RunConfig(name=hf_dir.name).replace(
        tokenizer={"kind": "hf", "path": str((hf_dir / "tokenizer.json").resolve())},
        model=dataclasses.asdict(model.config), train={"lr": 1e-4, "warmup_steps": 0, "max_steps": 1000})
    run = RunDir.create(run_dir, overwrite)
    try:
        save_tokenizer(tokenizer, run.tokenizer)
        cfg.save(run.config)
    except BaseException:
        run.discard()
        raise
    meta = {"step": 0, "state": TrainState().to_dict(), "metrics": {}, "config": cfg.to_dict(),
            "tokenizer": "hf", "imported_from": str(hf_dir.resolve())}
    try:
        save_checkpoint(run.checkpoint("last"), model, None, meta)
        run.note_checkpoint()
    except BaseException:
        run.discard()
        raise
    run.unlock()
    return run.root
