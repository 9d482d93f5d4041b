"""GPU checks, run by bench/gpu_check.sh on a machine with CUDA (not collected by the CPU suite,
which lives in tests/). Without a GPU they fail; they never skip."""

from __future__ import annotations

import math
import os

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _cuda(tmp_path, monkeypatch):
    assert torch.cuda.is_available(), "these checks need a CUDA GPU"
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))


def _tiny(**train):
    from lmlab.presets import get_preset

    return get_preset("tiny").replace(train={"device": "cuda", "max_steps": 20, **train}, eval={"every": 20})


def test_bf16_training_on_cuda_with_mfu(tmp_path):
    from lmlab.runs import RunDir
    from lmlab.train import train

    result = train(_tiny(precision="bf16"), tmp_path / "run")
    losses = [r["loss"] for r in RunDir(tmp_path / "run").read_metrics("train")]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert math.isfinite(result.metrics["loss"])
    assert torch.backends.cuda.matmul.allow_tf32  # lmlab turns TF32 on for CUDA runs


def test_fp16_with_grad_scaler(tmp_path):
    from lmlab.train import train

    assert math.isfinite(train(_tiny(precision="fp16"), tmp_path / "run").metrics["loss"])


def test_cuda_logits_match_cpu_in_fp32():
    from lmlab.model import ModelConfig, build_model

    torch.backends.cuda.matmul.allow_tf32 = False
    model = build_model(ModelConfig(n_layer=2, n_head=2, d_model=32, context_len=16, attention="sdpa"), 50)
    x = torch.randint(0, 50, (2, 16))
    cpu, _ = model(x)
    gpu, _ = model.cuda()(x.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)


def test_compile_agrees_with_eager_on_cuda():
    from lmlab.data import random_windows
    from lmlab.model import ModelConfig, build_model
    from lmlab.device import Precision
    from lmlab.train.step import train_step

    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=64, context_len=32, attention="sdpa")
    models = [build_model(cfg, 64).cuda() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    compiled = torch.compile(models[1])
    batches = random_windows(torch.randint(0, 64, (5000,)), 8, 32, seed=1).split(1)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True) for m in models]
    dev = torch.device("cuda")
    for step in range(3):
        a = train_step(models[0], opts[0], batches, step, Precision("bf16", dev), dev, grad_clip=1.0)
        b = train_step(compiled, opts[1], batches, step, Precision("bf16", dev), dev, grad_clip=1.0)
        assert b.loss == pytest.approx(a.loss, rel=2e-2)  # bf16: kernels fuse and round differently


def test_pinned_non_blocking_copy():
    from lmlab.train.step import to_device

    x = torch.arange(10)
    y = to_device(x, torch.device("cuda"))
    assert y.is_cuda and torch.equal(y.cpu(), x)


def test_a_gpu_run_evaluates_and_generates_on_cpu(tmp_path):
    from lmlab.cli import main
    from lmlab.train import train

    train(_tiny(precision="bf16"), tmp_path / "run")
    assert main(["eval", str(tmp_path / "run"), "--device", "cpu", "--json"]) == 0
    assert main(["generate", str(tmp_path / "run"), "--device", "cpu", "--max-new-tokens", "5"]) == 0


def test_device_peak_is_known_or_says_unknown():
    from lmlab.model import ModelConfig, build_model
    from lmlab.train.mfu import meter_for

    meter = meter_for(build_model(ModelConfig(), 50), torch.device("cuda"), "bf16")
    assert meter.peak is not None or "not in lmlab's peak table" in meter.source
    print(torch.cuda.get_device_name(0), meter.describe(), os.environ.get("CUDA_VISIBLE_DEVICES"))
