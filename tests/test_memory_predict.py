"""The predicted peak memory against the measured one, and the refusal of a run that cannot fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lmlab.errors import UserError
from lmlab.train import memory

WORKER = r"""
import json, sys, torch
from lmlab.config import TrainConfig
from lmlab.model import ModelConfig, build_model
from lmlab.train.memory import predict_run
from lmlab.train.optim import make_optimizer
from lmlab.device import Precision
from lmlab.train.step import train_step
spec = json.loads(sys.argv[1])
batch, prec = spec.pop("batch"), spec.pop("precision")
torch.manual_seed(0)
model = build_model(ModelConfig(**spec))
opt = make_optimizer(model, TrainConfig(batch_size=batch), torch.device("cpu"))
parts, runtime = predict_run(model, batch, 2 if prec == "bf16" else 4)
P, T, V = Precision(prec, torch.device("cpu")), model.config.context_len, model.config.vocab_size
class Batches:
    def micro_batches(self, step):
        x = torch.randint(0, V, (batch, T + 1))
        return [(x[:, :-1], x[:, 1:], None)]
for step in range(2):
    train_step(model, opt, Batches(), step, P, torch.device("cpu"), grad_clip=1.0)
from lmlab.train.memory import peak_memory_mb
peak = peak_memory_mb(torch.device("cpu")) * 2**20  # VmHWM: ru_maxrss would start at the test runner's size
print(json.dumps({"predicted": parts["total"] + runtime, "measured": peak}))
"""


@pytest.mark.parametrize("fused", [True, False])
def test_predicted_peak_within_25_percent_of_measured_rss(fused):
    """An LLmini-shaped model (GPT-2 vocabulary, untied head) at a size a test can train: the whole
    process's peak RSS after two steps against the prediction the start line prints."""
    spec = {"n_layer": 2, "n_head": 2, "d_model": 128, "context_len": 128, "vocab_size": 50257,
            "tie_embeddings": False, "fused_loss": fused, "batch": 8, "precision": "fp32"}
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], capture_output=True, text=True,
                         check=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["predicted"] == pytest.approx(result["measured"], rel=0.25), result


def test_parts_follow_the_head_choice():
    from lmlab.model import ModelConfig, build_model

    cfg = ModelConfig(n_layer=1, n_head=1, d_model=16, context_len=32, vocab_size=50257, tie_embeddings=False)
    fused = memory.predict_peak(build_model(cfg), 64, 4)
    full = memory.predict_peak(build_model(ModelConfig(**{**cfg.to_dict(), "fused_loss": False})), 64, 4)
    assert full["head"] == 64 * 32 * 50304 * 16  # (B*T, V) logits at 16 bytes each
    assert fused["head"] < full["head"] / 3
    assert fused["total"] == sum(v for k, v in fused.items() if k != "total")


def test_run_that_cannot_fit_is_refused_before_it_starts(tmp_path, monkeypatch, tiny_cfg):
    from lmlab.train import train

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)  # a 64 MiB machine
    cfg = tiny_cfg.replace(train={"max_steps": 1, "progress": False})
    with pytest.raises(UserError, match="GiB at its peak"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset, changes", [
    ("tiny", {"n_layer": 5}), ("tiny", {"n_layer": 1, "position": "rope", "grad_checkpoint": True}),
    ("tiny", {"n_layer": 3, "tie_embeddings": False, "fused_loss": False}),
    ("tiny", {"arch": "lstm", "n_layer": 3}), ("tiny", {"arch": "wavenet", "n_layer": 4}),
])
def test_the_prediction_before_building_matches_the_built_models(preset, changes):
    """predict_config builds one and two layers on the meta device and extrapolates the rest."""
    from lmlab.model import build_model
    from lmlab.presets import get_preset

    cfg = get_preset(preset).replace(model=changes)
    built = memory.predict_peak(build_model(cfg.model, 67), cfg.train.batch_size, 4, grad_accum=cfg.train.grad_accum)
    assert memory.predict_config(cfg, 67, 4) == built


def test_a_model_too_large_is_refused_before_it_is_built_or_its_folder_made(tmp_path, monkeypatch, tiny_cfg):
    """The issue's --model.n_layer=100000 printed nothing for minutes while it built, and left a
    half-made run folder; on a 16 GiB machine it is refused at once."""
    import lmlab.train.job as job
    from lmlab.train import train

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 2**30)
    monkeypatch.setattr(job, "build_model", never)
    with pytest.raises(UserError, match="GiB at its peak but 16.0 GiB are available.*model.n_layer"):
        train(tiny_cfg.replace(model={"n_layer": 100_000}), tmp_path / "run")
    with pytest.raises(UserError, match="the model's weights, gradients and optimizer state take .*model.d_model"):
        train(tiny_cfg.replace(model={"d_model": 100_000, "n_head": 1}), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []
