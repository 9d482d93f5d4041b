"""Self-describing, safe checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is a directory:
    model.safetensors   model weights (tied weights stored once)
    state.safetensors   optimizer moments, grad-scaler state, RNG states
    meta.json           config, step, metrics, data position, optimizer hyperparameters
It is written to a temporary directory and swapped in with renames, so `last` is always a
complete checkpoint, even when the process is killed mid-write. Nothing is unpickled.

Checkpoints prove themselves: meta.json records the SHA-256 of each tensor file and every
load verifies it, so flipped bytes, a truncated or swapped file, or a pickle renamed to
.safetensors is refused with one line naming the file. Checkpoints written before hashes
existed (no "sha256" in meta.json) still load, unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from lmlab.errors import UserError
from lmlab.io import atomic_write_text, fault_point, honour_umask

FORMAT = 1
TENSOR_FILES = ("model.safetensors", "state.safetensors")


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | dict | None,
                    meta: dict[str, Any], extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write into a hidden temporary directory, then swap it in; a failure (disk full, a signal)
    removes the temporary directory and leaves the previous checkpoint as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        step = {"step": str(meta["step"])}  # the weights' own record of their step (see `check_step`)
        _io(lambda m, file: save_model(m, file, metadata=step), _unwrap(model), tmp / "model.safetensors")
        fault_point("checkpoint:tensors")
        tensors, opt_meta = optimizer_tensors(optimizer) if optimizer is not None else ({}, None)
        tensors.update(extra_tensors or {})
        _io(save_file, {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / "state.safetensors")
        honour_umask(tmp)  # safetensors creates its files -rw------- whatever the umask
        hashes = {name: sha256_file(tmp / name) for name in TENSOR_FILES}
        body = {"format": FORMAT, "saved_at": time.time(), "optimizer": opt_meta, **meta, "sha256": hashes}
        atomic_write_text(tmp / "meta.json", json.dumps(body, indent=1))
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _io(write, value, file: Path) -> None:
    """Call a safetensors writer; its I/O failures (disk full, file-size limit) become OSError
    naming the file, like every other write, so callers handle them in one place."""
    try:
        write(value, str(file))
    except OSError:
        raise
    except Exception as err:
        code = re.search(r"os error (\d+)", str(err))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(file)) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _swap_in(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.old")
    if old.exists() and not path.exists():  # an earlier swap was killed between its renames: restore first
        old.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    fault_point("checkpoint:swap")
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(path: Path) -> Path | None:
    """The complete checkpoint at `path`, or the previous one if a kill interrupted the swap."""
    for candidate in (Path(path), Path(path).with_name(f".{Path(path).name}.old")):
        if (candidate / "meta.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    return None


def require_last(run) -> None:
    """A run folder with no `last` checkpoint stopped before its first save: there is nothing to
    resume, evaluate or load, and the one way on is to train it again from its own config."""
    if not run.has_checkpoint("last"):
        why = ("no checkpoint (checkpoints/last): its checkpoints were deleted after it saved" if run.ever_checkpointed()
               else "no checkpoint yet (checkpoints/last): it stopped before its first save")
        raise UserError(f"run directory {run.root} has {why}, so there is "
                        f"nothing to resume or load; train it again from the start "
                        f"with `lmlab train {run.root / 'config.toml'} --run-dir {run.root} --force` "
                        f"(or into another --run-dir)")


def read_meta(path: Path) -> dict[str, Any]:
    """meta.json of the checkpoint at `path`, checked: valid JSON, our format, the keys we read."""
    found = find_checkpoint(path)
    if found is None:
        raise UserError(f"no checkpoint at {path}")
    file = found / "meta.json"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{file} is not valid JSON ({err}); the checkpoint is damaged") from None
    if not isinstance(meta, dict):
        raise UserError(f"{file} is not a JSON object; the checkpoint is damaged")
    if meta.get("format") != FORMAT:
        raise UserError(f"{file} has format {meta.get('format')!r}; this lmlab reads checkpoint format {FORMAT}")
    if not isinstance(meta.get("step"), int) or meta["step"] < 0:
        raise UserError(f"{file} has no valid 'step' (got {meta.get('step')!r}); the checkpoint is damaged")
    if not isinstance(meta.get("sha256", {}), dict):
        raise UserError(f"{file}: 'sha256' must map tensor files to hashes; the checkpoint is damaged")
    check_step(found, meta)
    return meta


def check_step(found: Path, meta: dict) -> None:
    """meta.json's step is what eval, generate and resume report and continue from; it must agree with
    the checkpoint's other records of it: the training state's step in meta.json itself, and the step
    model.safetensors was saved at (in its header, beyond reach of an edit to meta.json; checkpoints
    saved before it was recorded have none)."""
    file, step = found / "meta.json", meta["step"]
    state = meta.get("state")
    if isinstance(state, dict) and isinstance(state.get("step"), int) and state["step"] != step:
        raise UserError(f"{file} says step {step} but its training state says step {state['step']}: meta.json "
                        f"was edited or damaged; restore it")
    weights = saved_step(found / "model.safetensors")
    if weights is not None and weights != step:
        raise UserError(f"{file} says step {step} but {found / 'model.safetensors'} was saved at step {weights}: "
                        f"meta.json was edited or damaged; restore it")


def saved_step(file: Path) -> int | None:
    """The step a model.safetensors recorded in its header, or None (none recorded, or unreadable: the
    weights' own check names that when they are loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), "pt") as f:
            return int((f.metadata() or {})["step"])
    except Exception:  # noqa: BLE001 — safetensors raises its own error types for a damaged header
        return None


def verify(found: Path, name: str, meta: dict) -> Path:
    """The tensor file `name` of a checkpoint, refused unless its SHA-256 is the one meta.json recorded."""
    file = found / name
    if not file.is_file():
        raise UserError(f"{file} is missing; the checkpoint is incomplete")
    expected = meta.get("sha256", {}).get(name)
    if expected is not None and sha256_file(file) != expected:
        raise UserError(f"{file} does not match the SHA-256 recorded in {found / 'meta.json'}: the file was "
                        f"changed or damaged after it was saved; refusing to load it")
    return file


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (never unpickled); a damaged file is refused in one line."""
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors raises SafetensorError / OSError / ValueError on damage
        raise UserError(f"{file} is not a readable safetensors file ({str(err).splitlines()[0][:120]})") from None


def load_weights(path: Path, model: torch.nn.Module) -> None:
    found = find_checkpoint(path)
    if found is None:
        raise UserError(f"no checkpoint at {path}")
    meta = read_meta(found)
    file = verify(found, "model.safetensors", meta)
    tensors = _read_tensors(file)
    target = _unwrap(model)
    own = target.state_dict()
    for name, tensor in tensors.items():
        if name in own and own[name].shape != tensor.shape:
            raise UserError(f"{file}: tensor {name} has shape {tuple(tensor.shape)} but the model built from the "
                            f"run's config needs {tuple(own[name].shape)}; the checkpoint does not fit config.toml")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{file}: tensor {name} holds NaN or infinite values; refusing to load it")
    try:
        missing, unexpected = load_model(target, str(file), strict=False)
    except Exception as err:
        raise UserError(f"{file} does not fit the model built from its config ({str(err).splitlines()[0][:160]})") \
            from None
    if missing or unexpected:
        raise UserError(f"checkpoint {found} does not fit the model built from its config "
                        f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def load_state_tensors(path: Path) -> dict[str, torch.Tensor]:
    found = find_checkpoint(path)
    if found is None:
        return {}
    return _read_tensors(verify(found, "state.safetensors", read_meta(found)))


def all_finite(model: torch.nn.Module) -> bool:
    """No NaN or inf in any floating parameter or buffer (a checkpoint must never hold one)."""
    return all(bool(torch.isfinite(t).all()) for t in _unwrap(model).state_dict().values() if t.is_floating_point())


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
