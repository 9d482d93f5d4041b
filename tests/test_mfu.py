"""MFU: the peak table's lookup by device name, the arithmetic, the measured CPU peak and its
cache, MFU in metrics.jsonl; torch.compile agrees with eager."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lmlab.cli import main
from lmlab.config import load_config
from lmlab.cpu import cpu_info
from lmlab.presets import get_preset
from lmlab.runs import RunDir
from lmlab.train import train
from lmlab.device import cpu_has_bf16
from lmlab.train.mfu import MfuMeter, bench_peak, cpu_key, cpu_peak, gpu_peak, meter_for, peak_cache


@pytest.mark.parametrize("name, precision, tflops", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4),
    ("NVIDIA H100 PCIe", "bf16", 756.0),
    ("NVIDIA H200", "bf16", 989.4),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("NVIDIA A100-SXM4-40GB", "tf32", 156.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("Tesla T4", "fp16", 65.0),
    ("NVIDIA GeForce RTX 4090", "bf16", 165.2),
    ("AMD Instinct MI300X", "bf16", 1307.4),
    ("NVIDIA A10", "fp32", 31.2),
])
def test_gpu_peaks_are_found_by_name(name, precision, tflops):
    assert gpu_peak(name, precision) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("name, precision", [
    ("Tesla T4", "bf16"),  # no bf16 tensor cores: unknown, not the fp16 figure
    ("NVIDIA A10G", "bf16"),  # not the A10: not in the table
    ("NVIDIA L40", "bf16"),  # not the L4
    ("NVIDIA Some Future GPU", "bf16"),
])
def test_unlisted_devices_are_unknown_never_guessed(name, precision):
    assert gpu_peak(name, precision) is None


def test_mfu_is_flops_per_token_times_tokens_per_s_over_the_peak_of_all_devices():
    meter = MfuMeter(flops_per_token=6_000_000, peak=1e12, devices=2)
    assert meter.mfu(50_000) == pytest.approx(6e6 * 5e4 / 2e12)  # 15%
    assert MfuMeter(6_000_000, None).mfu(50_000) is None
    assert "unknown" in MfuMeter(1, None, source="x").describe()
    # 4M of the 6M FLOPs are the head's, spent only on the 25% of positions with a loss: 3M per position
    head = MfuMeter(flops_per_token=6_000_000, peak=1e12, devices=2, scored_only=4_000_000)
    assert head.mfu(50_000, scored_share=0.25) == pytest.approx(3e6 * 5e4 / 2e12)
    assert head.mfu(50_000) == meter.mfu(50_000)


def test_only_the_chunked_head_skips_masked_positions():
    from lmlab.model import ModelConfig, build_model

    cfg = ModelConfig(n_layer=1, n_head=2, d_model=16, context_len=8, vocab_size=3000)
    assert build_model(cfg).scored_only_flops() == 6 * 3000 * 16  # logical vocabulary, pad rows left out
    unfused = dataclasses.replace(cfg, fused_loss=False)
    assert build_model(unfused).scored_only_flops() == 0  # full logits for every position


def test_bench_peak_measures_and_caches_the_cpu_peak(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    assert cpu_peak("fp32") is None
    assert main(["bench-peak", "--seconds", "0.2", "--size", "128", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # a 128^3 matmul does 2 * 128^3 flops; any real CPU does it at well over 0.1 GFLOP/s
    assert result["fp32"] > 1e8 and result["key"] == cpu_key()
    assert result["cpu"] == cpu_info().to_dict() and result["cpu"]["model"] in result["key"]
    assert ("bf16" in result) is cpu_has_bf16()  # an emulated bf16 peak is no run's ceiling
    assert cpu_peak("fp32") == result["fp32"]
    assert json.loads(peak_cache().read_text())[cpu_key()]["size"] == 128
    assert main(["bench-peak", "--seconds", "0.2", "--size", "128"]) == 0
    assert f"CPU: {cpu_info().describe()}" in capsys.readouterr().out
    assert main(["bench-peak", "--seconds", "0"]) == 2


def test_the_first_training_measures_the_peak_and_later_ones_read_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    cfg = get_preset("tiny").replace(train={"max_steps": 3}, eval={"every": 3})
    for name in ("first", "second"):  # no `lmlab bench-peak` before the first run: it measures once, the second reads
        train(cfg, tmp_path / name)
        assert json.loads(peak_cache().read_text())[cpu_key()]["by"] == "the first training on this CPU"
        model_flops = json.loads((tmp_path / name / "model.json").read_text())["flops_per_token_train"]
        for r in RunDir(tmp_path / name).read_metrics("train"):
            assert r["mfu"] == pytest.approx(model_flops * r["tokens_per_s"] / cpu_peak("fp32"), rel=1e-6)
    bench_peak(seconds=0.2, size=128)  # a longer look replaces it
    assert json.loads(peak_cache().read_text())[cpu_key()]["by"] == "`lmlab bench-peak`"


def test_a_first_use_measurement_leaves_the_run_s_random_draws_alone(tmp_path, monkeypatch):
    from lmlab.train.mfu import first_use_peaks

    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    assert first_use_peaks()["fp32"] > 0
    assert torch.equal(torch.rand(4), expected)


def test_mfu_of_a_padded_layout_counts_the_head_only_where_there_is_a_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    bench_peak(seconds=0.2, size=128)
    cfg = get_preset("tiny").replace(
        data={"sources": [{"kind": "synthetic", "generator": "counting", "n_docs": 300, "length": 6}], "layout": "pad"},
        train={"max_steps": 3}, eval={"every": 3, "max_tokens": 0})
    train(cfg, tmp_path / "run")
    run = RunDir(tmp_path / "run")
    model = load_config(run.config, saved_run=True).model
    head = 6 * model.vocab_size * model.d_model
    flops_per_token = json.loads((run.root / "model.json").read_text())["flops_per_token_train"]
    for r in run.read_metrics("train"):
        assert 0 < r["scored_share"] < 0.5  # documents of ~7 tokens padded to rows of 33
        flops = flops_per_token - head * (1 - r["scored_share"])
        assert r["mfu"] == pytest.approx(flops * r["tokens_per_s"] / cpu_peak("fp32"), rel=1e-6)


def test_meter_for_cpu_reads_the_precision_it_trains_in(tmp_path, monkeypatch):
    from lmlab.model import ModelConfig, build_model

    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    model = build_model(ModelConfig(n_layer=1, n_head=2, d_model=16, context_len=8), 30)
    peak_cache().write_text(json.dumps({cpu_key(): {"fp32": 5e10}}))
    meter = meter_for(model, torch.device("cpu"), "fp32", devices=2)
    assert meter.peak == 5e10 and meter.devices == 2 and meter.flops_per_token == model.flops_per_token()
    assert meter_for(model, torch.device("cpu"), "bf16").peak is None  # bf16 was not measured
    assert f"fp32 on {cpu_info().describe()}" in meter.describe()  # the CPU and precision of the number


@pytest.mark.slow
def test_compile_agrees_with_eager():
    """train.compile (inductor on CPU) gives eager's losses and weights within float tolerance, in one
    graph (no break) and without dynamo's warnings (it warns about functools caches it traces through)."""
    import warnings

    from torch._dynamo.utils import counters

    from lmlab.data import random_windows
    from lmlab.model import ModelConfig, build_model
    from lmlab.device import Precision
    from lmlab.train.step import train_step

    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=1, n_head=2, d_model=32, context_len=16)
    models = [build_model(cfg, 40) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    compiled = torch.compile(models[1])
    batches = random_windows(torch.randint(0, 40, (2000,)), 8, 16, seed=1).split(1)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in models]
    cpu = torch.device("cpu")
    counters.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            eager = train_step(models[0], opts[0], batches, step, Precision("fp32", cpu), cpu, grad_clip=1.0)
            comp = train_step(compiled, opts[1], batches, step, Precision("fp32", cpu), cpu, grad_clip=1.0)
            assert comp.loss == pytest.approx(eager.loss, rel=1e-5, abs=1e-5)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert not [w for w in caught if "dynamo" in str(w.message).lower()], [str(w.message)[:200] for w in caught]
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # measured 2e-5; an Adam step moves 1e-2


def test_gpt2_124m_preset_is_gpt2_small_shaped():
    """transformers' GPT2LMHeadModel(GPT2Config()) has 124,439,808 parameters; so does the preset."""
    from lmlab.model import build_model

    cfg = get_preset("gpt2_124m")
    model = build_model(cfg.model, cfg.model.vocab_size)
    assert model.num_params() == 124_439_808
    assert cfg.train.batch_size * cfg.train.grad_accum * cfg.model.context_len == 65_536
