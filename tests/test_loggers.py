"""train.loggers: the real TensorBoard and W&B packages write real files, read back with their own readers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.config import apply_overrides, load_config
from lmlab.errors import UserError
from lmlab.train import train
from lmlab.train.loggers import scalars


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, monkeypatch_module):
    """A tiny run with every logger on, no W&B key: it must stay offline."""
    monkeypatch_module.delenv("WANDB_API_KEY", raising=False)
    monkeypatch_module.delenv("WANDB_MODE", raising=False)
    monkeypatch_module.setenv("WANDB_SILENT", "true")
    from lmlab.presets import get_preset

    cfg = apply_overrides(get_preset("tiny"), {"train.max_steps": "6", "eval.every": "3",
                                               "train.loggers": "jsonl,tensorboard,wandb"})
    run = tmp_path_factory.mktemp("loggers") / "run"
    train(cfg, run)
    return run


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_event_file_read_back(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((tracked / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(tracked / "tensorboard"))
    acc.Reload()
    records = jsonl(tracked)
    train_loss = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    val_loss = [(r["step"], r["val_loss"]) for r in records if r["kind"] == "eval"]
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars("train/loss")] == train_loss
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars("eval/val_loss")] == val_loss
    assert {"train/lr", "train/grad_norm", "train/tokens_per_s", "eval/val_bits_per_byte"} <= set(acc.Tags()["scalars"])


def wandb_history(run_file: Path) -> list[dict]:
    """The history records of an offline W&B run file (a LevelDB-style log of protobuf Records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, buf, out = run_file.read_bytes(), 7, 32768, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if length == 0 and kind == 0:
            pos += left - 7
            continue
        buf += data[pos:pos + length]
        pos += length
        if kind in (1, 4):  # FULL or LAST fragment
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            if record.WhichOneof("record_type") == "history":
                out.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return out


def test_wandb_offline_run_holds_the_history(tracked):
    runs = list((tracked / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tracked / "wandb").iterdir())
    history = wandb_history(next(runs[0].glob("run-*.wandb")))
    losses = {h["_step"]: h["train/loss"] for h in history if "train/loss" in h}
    expected = {r["step"]: r["loss"] for r in jsonl(tracked) if r["kind"] == "train"}
    assert losses == pytest.approx(expected, rel=1e-6)
    assert any("eval/val_loss" in h for h in history)


def test_loggers_list_round_trips_through_toml(tracked):
    cfg = load_config(tracked / "config.toml")
    assert cfg.train.loggers == ["jsonl", "tensorboard", "wandb"]
    import tomllib

    assert tomllib.loads((tracked / "config.toml").read_text())["train"]["loggers"] == ["jsonl", "tensorboard", "wandb"]


def test_unknown_logger_lists_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match="train.loggers='mlflow' is not known; valid: jsonl, tensorboard, wandb"):
        from lmlab.presets import get_preset

        apply_overrides(get_preset("tiny"), {"train.loggers": "jsonl,mlflow"})
    assert main(["train", "tiny", "--train.loggers=neptune", "--run-dir", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_scalars_flatten_nested_metrics():
    record = {"kind": "eval", "step": 4, "val_loss": 2.5, "val_by_source": {"a": {"loss": 2.0, "tokens": 10}},
              "note": "x", "ok": True}
    assert scalars(record) == {"eval/val_loss": 2.5, "eval/val_by_source/a/loss": 2.0,
                               "eval/val_by_source/a/tokens": 10.0}
