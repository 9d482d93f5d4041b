"""The nanoGPT benchmark's parsers and analysis on recorded outputs (bench/fixtures/), no training:
step times exclude evaluation iterations, wall clocks are summed the way the bench documents, and
the comparison finds who reaches a loss first."""

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
FIXTURES = BENCH / "fixtures"
sys.path.insert(0, str(BENCH))

from nanogpt_bench.analysis import add_utilization, aggregate, compare_pair, markdown  # noqa: E402
from nanogpt_bench.config import (CONFIGS, DEFAULT_SPEEDRUN_PRESET, NANOGPT_RECIPE, lmlab_common_flags,  # noqa: E402
                                  lmlab_hparam_flags)
from nanogpt_bench.parse import ITER_RE, parse_lmlab, parse_nanogpt, read_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def nanogpt_lines():
    lines = []
    for line in (FIXTURES / "nanogpt_stdout_sample.txt").read_text().splitlines():
        m = re.match(r"^\[\s*([\d.]+)\] (.*)$", line)
        if m:
            lines.append((float(m.group(1)), m.group(2)))
    return lines


def test_nanogpt_stdout_parses(nanogpt_lines):
    ng = parse_nanogpt(nanogpt_lines, warmup=2)
    assert [e["step"] for e in ng["evals"]] == [0, 10, 20]
    assert ng["timed_steps"] == 17  # iters 2..20 minus the eval iters 10, 20
    dts = {int(m.group(1)): float(m.group(3)) / 1000 for _, t in nanogpt_lines if (m := ITER_RE.match(t))}
    want = statistics.median(dt for n, dt in dts.items() if n >= 2 and n not in (10, 20))
    assert ng["median_step_s"] == pytest.approx(want, abs=1e-12)
    last = ng["evals"][-1]
    assert last["val_loss"] == pytest.approx(3.5745, abs=1e-9)
    # wall at the step-20 eval = the step times of iters 0..19 (the eval itself not included)
    assert last["wall_s"] == pytest.approx(sum(ng["step_times_s"][:20]), abs=1e-9) and last["eval_s"] > 0.3


def test_lmlab_metrics_parse_with_and_without_train_time():
    records = read_jsonl(FIXTURES / "lmlab_metrics_sample.jsonl")
    lm = parse_lmlab(records, warmup=2)
    assert lm["timing_key"] == "train_time_s"
    assert [e["step"] for e in lm["evals"]] == [0, 10, 20]
    assert lm["median_step_s"] == pytest.approx(0.020, abs=1e-6)
    assert lm["tokens_per_step"] == 768
    assert lm["evals"][1]["wall_s"] == pytest.approx(0.58, abs=1e-9)  # the train record of step 10
    # elapsed_s only (no train_time_s): the evaluation intervals must be skipped
    lm2 = parse_lmlab([{k: v for k, v in r.items() if k != "train_time_s"} for r in records], warmup=2)
    assert lm2["timing_key"] == "elapsed_s" and lm2["median_step_s"] == pytest.approx(0.020, abs=1e-6)


def test_comparison_and_aggregate(nanogpt_lines):
    ng = parse_nanogpt(nanogpt_lines, warmup=2)
    lm = parse_lmlab(read_jsonl(FIXTURES / "lmlab_metrics_sample.jsonl"), warmup=2)
    cmp_ = compare_pair(ng, lm)
    assert [r["step"] for r in cmp_["val_at_equal_steps"]] == [0, 10, 20]
    assert cmp_["reach_wall_s"]["nanogpt"]["step"] == 20 and cmp_["reach_wall_s"]["lmlab"]["step"] == 10
    runs = [dict(impl="nanogpt", repeat=0, ok=True, ms_per_step=ng["median_step_s"] * 1e3,
                 tokens_per_s=768 / ng["median_step_s"], process_s=3.0, **ng),
            dict(impl="lmlab", repeat=0, ok=True, ms_per_step=lm["median_step_s"] * 1e3,
                 tokens_per_s=768 / lm["median_step_s"], process_s=2.0, comparison=cmp_, **lm)]
    results = {"bench": {"config": "fixtures", "steps": 20, "repeats": 1, "threads": None},
               "runs": runs, "aggregate": aggregate(runs)}
    ratio = results["aggregate"]["speedrun_ratio_wall"]  # one pair: its own ratio decides
    assert aggregate(runs, ratio + 0.01)["speedrun_pass"] is True
    assert aggregate(runs, ratio - 0.01)["speedrun_pass"] is False
    assert "nanoGPT" in markdown(results) or "nanogpt" in markdown(results)
    json.dumps(results)


def test_useful_flops_are_tokens_per_s_times_flops_per_token_as_a_share_of_the_measured_peak():
    runs = [dict(impl="nanogpt", repeat=0, ok=True, tokens_per_s=1000.0, ms_per_step=1.0, process_s=1.0, evals=[]),
            dict(impl="lmlab", repeat=0, ok=True, tokens_per_s=3000.0, ms_per_step=1.0, process_s=1.0, evals=[],
                 flops_per_token=100e6)]
    results = {"bench": {"config": "6x384", "steps": 1, "repeats": 1, "threads": None,
                         "peak_gflops": {"fp32": 200.0, "bf16": 500.0}}, "runs": runs, "aggregate": aggregate(runs)}
    add_utilization(results)
    util = results["aggregate"]["utilization"]
    assert util["nanogpt"]["gflops"] == pytest.approx(100) and util["lmlab"]["gflops"] == pytest.approx(300)
    assert util["lmlab"]["share_of_bf16_peak"] == pytest.approx(0.6)
    assert util["nanogpt"]["share_of_fp32_peak"] == pytest.approx(0.5)
    assert "lmlab 300 GFLOP/s = 150% of fp32 = 60% of bf16" in markdown(results)
    results["bench"].update(cpu={"model": "AMD EPYC", "features": ["AVX2"], "onednn_max_cpu_isa": "AVX2"},
                            lmlab_precision=["fp32"])
    assert "CPU AMD EPYC (AVX2), ONEDNN_MAX_CPU_ISA=AVX2; lmlab precision fp32" in markdown(results)


def test_lmlab_flags_are_valid_overrides_and_presets_exist():
    """Every flag the bench passes to lmlab is a real config field, and its default preset exists."""
    from lmlab.config import apply_overrides
    from lmlab.presets import PRESETS, get_preset

    assert DEFAULT_SPEEDRUN_PRESET in PRESETS
    hp = {**NANOGPT_RECIPE, **CONFIGS["tiny"]}
    flags = lmlab_common_flags("fp32") + lmlab_hparam_flags(hp)
    overrides = dict(f[2:].split("=", 1) for f in flags)
    cfg = apply_overrides(get_preset("shakespeare_char"), overrides)
    assert cfg.train.precision == "fp32" and cfg.model.d_model == 128 and cfg.train.max_steps == 2000
    text = (BENCH / "bench_nanogpt.py").read_text() + (BENCH / "README.md").read_text()
    for name in re.findall(r"--lmlab-preset (\w+)", text):
        assert name in PRESETS, f"the bench documents a preset that does not exist: {name}"


def test_command_line_help():
    out = subprocess.run([sys.executable, str(BENCH / "bench_nanogpt.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--nanogpt" in out and "--lmlab-precision" in out


def test_speed_bench_ceiling_and_peak_shares_by_hand():
    import bench_speed
    part = {"part": "vocab", "shape_name": "s", "shape": {}, "data": "random tokens", "steps": 2, "repeats": 1,
            "rows": [{"variant": "today", "tokens_per_s": 1000.0, "flops_per_token": 2e8},
                     {"variant": "all", "tokens_per_s": 2500.0, "flops_per_token": 1.9e8}]}
    bench_speed.add_ceiling(part, 400.0)  # GFLOP/s
    assert [r["gflops"] for r in part["rows"]] == pytest.approx([200.0, 475.0])
    assert [r["share_of_peak"] for r in part["rows"]] == pytest.approx([0.5, 1.1875])
    # the ceiling takes the smallest FLOPs per token among the variants: 400e9 / 1.9e8 tokens/s
    assert part["ceiling"]["tokens_per_s"] == pytest.approx(400e9 / 1.9e8)
    assert part["ceiling"]["speedup"] == pytest.approx(400e9 / 1.9e8 / 1000.0)
