"""Self-describing, safe checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is a directory:
    model.safetensors   model weights (tied weights stored once)
    state.safetensors   optimizer moments, grad-scaler state, RNG states
    meta.json           config, step, metrics, data position, optimizer hyperparameters
It is written to a temporary directory and swapped in with renames, so `last` is always a
complete checkpoint, even when the process is killed mid-write. Nothing is unpickled.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from lmlab.errors import UserError
from lmlab.runs import atomic_write_text

FORMAT = 1


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | dict | None,
                    meta: dict[str, Any], extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(_unwrap(model), str(tmp / "model.safetensors"))
    tensors, opt_meta = optimizer_tensors(optimizer) if optimizer is not None else ({}, None)
    tensors.update(extra_tensors or {})
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
    body = {"format": FORMAT, "saved_at": time.time(), "optimizer": opt_meta, **meta}
    atomic_write_text(tmp / "meta.json", json.dumps(body, indent=1))
    _swap_in(tmp, path)


def _swap_in(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(path: Path) -> Path | None:
    """The complete checkpoint at `path`, or the previous one if a kill interrupted the swap."""
    for candidate in (Path(path), Path(path).with_name(f".{Path(path).name}.old")):
        if (candidate / "meta.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    return None


def read_meta(path: Path) -> dict[str, Any]:
    found = find_checkpoint(path)
    if found is None:
        raise UserError(f"no checkpoint at {path}")
    return json.loads((found / "meta.json").read_text(encoding="utf-8"))


def load_weights(path: Path, model: torch.nn.Module) -> None:
    found = find_checkpoint(path)
    if found is None:
        raise UserError(f"no checkpoint at {path}")
    missing, unexpected = load_model(_unwrap(model), str(found / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise UserError(f"checkpoint {found} does not fit the model built from its config "
                        f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def load_state_tensors(path: Path) -> dict[str, torch.Tensor]:
    found = find_checkpoint(path)
    return load_file(str(found / "state.safetensors")) if found else {}


def optimizer_tensors(optimizer: torch.optim.Optimizer | dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer (or its state_dict): tensors to `opt.{param}.{name}`, the rest to JSON."""
    state = optimizer if isinstance(optimizer, dict) else optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"opt.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state_dict(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    """The saved optimizer back as a torch state_dict (parameters numbered in param_group order)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    optimizer.load_state_dict(optimizer_state_dict(tensors, meta))


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module behind torch.compile / DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)
