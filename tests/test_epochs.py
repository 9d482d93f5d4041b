"""train.epochs / max_tokens / max_time: every row once per epoch in a seeded order, per-epoch
records, exact resume in the middle of an epoch, and stops by tokens and by wall clock."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmlab.data.epochs import EpochBatches
from lmlab.data.layout import Rows, Stream
from lmlab.runs import RunDir
from lmlab.train import resume, train
from interrupt import same_final_weights, train_interrupted


def _stream(n: int, offset: int = 0) -> Stream:
    return Stream(np.arange(offset, offset + n, dtype=np.int64))


def _rows(n: int, T: int, offset: int) -> Rows:
    rows = np.arange(n * (T + 1)).reshape(n, T + 1) + offset
    return Rows(rows, np.full(n, T + 1, np.int32), np.zeros(n, np.int32), n, "pad")


@pytest.mark.parametrize("grad_accum", [1, 3])
def test_every_row_exactly_once_per_epoch_in_a_new_order(grad_accum):
    T, B = 4, 3
    parts = [_stream(4 * 10 + 1), _stream(4 * 7 + 3, offset=10_000)]  # 10 + 7 windows; the tail is dropped
    eb = EpochBatches(parts, B, T, seed=5, grad_accum=grad_accum)
    assert eb.n_rows == 17 and eb.steps_per_epoch == -(-(-(-17 // B)) // grad_accum)
    orders = []
    for epoch in range(3):
        seen = []
        for s in range(epoch * eb.steps_per_epoch, (epoch + 1) * eb.steps_per_epoch):
            for m in range(grad_accum):
                batch = eb.batch(s, m)
                if batch is not None:
                    x, y, mask = batch
                    assert torch.equal(x[:, 1:], y[:, :-1]) and mask is None
                    seen += [int(v) for v in x[:, 0]]
        starts = sorted(seen)
        assert len(seen) == 17 and len(set(seen)) == 17  # every row once
        assert starts == sorted([i * T for i in range(10)] + [10_000 + i * T for i in range(7)])
        orders.append(seen)
    assert orders[0] != orders[1] != orders[2]  # a fresh permutation each epoch
    again = EpochBatches(parts, B, T, seed=5, grad_accum=grad_accum)  # a pure function of (seed, step)
    s = eb.steps_per_epoch + 1
    assert torch.equal(again.batch(s)[0], eb.batch(s)[0])
    assert not torch.equal(EpochBatches(parts, B, T, seed=6).batch(0)[0], eb.batch(0)[0])


def test_rows_layout_epochs_keep_masks():
    eb = EpochBatches([_rows(5, 4, 0), _rows(4, 4, 1000)], 4, 4, seed=1)
    firsts = []
    for s in range(eb.steps_per_epoch):
        x, y, mask = eb.batch(s)
        assert mask.shape == x.shape and bool(mask.all())
        firsts += [int(v) for v in x[:, 0]]
    assert sorted(firsts) == [0, 5, 10, 15, 20, 1000, 1005, 1010, 1015]


def _epoch_cfg(tiny_cfg, **train):
    return tiny_cfg.replace(model={"context_len": 16},
                            data={"sources": [{"kind": "text", "path": "tinyshakespeare/input.txt", "max_tokens": 3000}]},
                            tokenizer={"kind": "char"},
                            train={"epochs": 2, "batch_size": 16, "checkpoint_every": 3, "lr": 3e-3, **train},
                            eval={"every": 1000, "max_tokens": 512})


def test_epochs_log_one_record_each_and_set_the_length(tmp_path, tiny_cfg, shared_data):
    result = train(_epoch_cfg(tiny_cfg), tmp_path / "run")
    epochs = RunDir(tmp_path / "run").read_metrics("epoch")
    assert [r["epoch"] for r in epochs] == [1, 2]
    per_epoch = epochs[0]["step"]
    assert result.steps == 2 * per_epoch and epochs[1]["step"] == result.steps
    train_losses = [r["loss"] for r in RunDir(tmp_path / "run").read_metrics("train")]
    assert epochs[0]["train_loss"] == pytest.approx(np.mean(train_losses[:per_epoch]))
    assert epochs[1]["gap"] == pytest.approx(epochs[1]["val_loss"] - epochs[1]["train_loss"])
    assert epochs[1]["tokens"] == 2 * epochs[0]["tokens"]  # every row once per epoch: the same tokens


def test_resume_in_the_middle_of_an_epoch_is_bit_identical(tmp_path, tiny_cfg, shared_data):
    cfg = _epoch_cfg(tiny_cfg)
    full = train(cfg, tmp_path / "full")
    per_epoch = RunDir(tmp_path / "full").read_metrics("epoch")[0]["step"]
    stop_at = per_epoch + 4  # mid second epoch, one step after the checkpoint at a multiple of 3
    train_interrupted(cfg, tmp_path / "cut", stop_at)
    assert RunDir(tmp_path / "cut").read_metrics("epoch")[-1]["epoch"] == 1
    resumed = resume(tmp_path / "cut")
    assert resumed.steps == full.steps
    assert same_final_weights(tmp_path / "full", tmp_path / "cut")
    ea, eb = (RunDir(tmp_path / d).read_metrics("epoch") for d in ("full", "cut"))
    assert ea == [{**r, "elapsed_s": ea[i]["elapsed_s"]} for i, r in enumerate(eb)]  # train loss mean included


def test_max_tokens_caps_the_run_and_its_schedule(tmp_path, tiny_cfg):
    per_step = 8 * 32
    result = train(tiny_cfg.replace(train={"max_tokens": 10 * per_step + 1}), tmp_path / "run")
    assert result.steps == 11
    assert RunDir(tmp_path / "run").read_metrics("eval")[-1]["step"] == 11


def test_max_time_stops_evaluates_and_saves(tmp_path, tiny_cfg):
    result = train(tiny_cfg.replace(train={"max_steps": 100000, "max_time": 1e-9}), tmp_path / "run")
    assert result.steps == 1
    run = RunDir(tmp_path / "run")
    assert run.read_metrics("eval")[-1]["step"] == 1 and run.has_checkpoint("last")
    assert resume(tmp_path / "run").steps == 1  # a timed-out run stays stopped
