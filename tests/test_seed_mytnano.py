"""The mytnano study (seeds/step-by-step-mini-gpt.md): it plans at both sizes with every claim and
seed table naming what it measures, the transcribed table is self-consistent, and its own
instruments score a tiny trained run's test split and its two attention paths."""

from __future__ import annotations

import math

import pytest

from lmlab.config import RunConfig
from lmlab.presets import PRESETS
from lmlab.study.expand import plan, variants
from lmlab.study.findings import check_findings
from lmlab.study.instruments import INSTRUMENTS, NotApplicable
from lmlab.study.library import get_study
from lmlab.study.seeds.mytnano_claims import _RESULTS, CLAIMS


@pytest.mark.parametrize("size", ["cpu", "full"])
def test_plans_at_both_sizes_and_every_claim_names_what_it_measures(size):
    study = get_study("mytnano", size)
    names = [v.slug for v in variants(study)]
    findings = check_findings(study, names)  # a claim or seed table naming a missing variant/metric raises
    assert len(findings.claims) == len(CLAIMS) and len(study.seeds) >= 3
    runs = {r.variant.slug: r.cfg for r in plan(study)}
    assert {"01_mlp", "02_attention", "05_postln", "07_mqa", "08_flash", "09_final"} <= set(runs)
    assert runs["01_mlp"].data.sources[0].path == "names/names.txt"  # the baselines' own corpus
    assert runs["02_mha"].data.path == "tinyshakespeare/input.txt"
    assert all(cfg.data.test_fraction > 0 for cfg in runs.values())  # the seed reports test metrics
    assert (runs["08_flash"].model.attention, runs["07_gqa"].model.attention) == ("sdpa", "manual")
    assert runs["09_final"].train.schedule == "cosine" and runs["08_swiglu"].train.schedule == "constant"
    vocab = {cfg.tokenizer.kind for name, cfg in runs.items() if name >= "07"}
    assert vocab == ({"cl100k_base"} if size == "full" else {"bpe"}) and runs["06_char"].tokenizer.kind == "char"
    assert get_study("ladder", size).name == "mytnano"  # the old name still works


def test_cpu_size_gives_every_group_enough_steps_and_the_same_warmup():
    cfgs = {r.variant.slug: r.cfg for r in plan(get_study("mytnano", "cpu"))}
    assert {c.train.warmup_steps for c in cfgs.values()} == {10}  # the same warmup before either schedule
    steps = {name[:2]: c.train.max_steps for name, c in cfgs.items()}
    assert steps["02"] == steps["05"] == 2000 and steps["06"] == steps["09"] == 1000
    assert all(c.train.max_steps == steps[name[:2]] for name, c in cfgs.items())  # equal within a stage


def test_the_seed_table_is_transcribed_consistently():
    """The seed's BPC is its loss / ln 2 on every row but 07_00_0 (whose loss exceeds ln 128):
    a mistyped number breaks the relation."""
    for experiment, _, loss, _, bpc, _ in _RESULTS:
        if isinstance(loss, float) and experiment != "07_00_0_Transformer":
            assert bpc == pytest.approx(loss / math.log(2), abs=2e-3), experiment
    assert [r[0] for r in _RESULTS].count("09_01_myt-tiny") == 1


def _tiny_run(tmp_path, shared_data, test_fraction: float):
    from lmlab.train import train

    cfg = PRESETS["ladder_08_flash"]().replace(
        model={"d_model": 16, "n_layer": 1, "n_head": 2, "n_kv_head": 1, "context_len": 16, "init": "gpt2"},
        data={"test_fraction": test_fraction, "source": "text", "path": "tinyshakespeare/input.txt"},
        tokenizer={"kind": "char", "path": ""}, train={"max_steps": 4, "batch_size": 4, "precision": "fp32",
                                                       "progress": False},
        eval={"every": 4, "max_tokens": 256})
    run_dir = tmp_path / f"run{test_fraction}"
    train(RunConfig.from_dict(cfg.to_dict()), run_dir)
    return run_dir


def test_test_split_and_attention_paths_on_a_tiny_run(tmp_path, shared_data):
    run_dir = _tiny_run(tmp_path, shared_data, 0.1)
    got = INSTRUMENTS.get("test_split").run(run_dir, tmp_path / "t", {"max_tokens": 2048})["metrics"]
    assert 0 <= got["accuracy"] < 1 and got["tokens"] > 1000 and got["loss"] > 0
    assert got["bits_per_token"] == pytest.approx(got["loss"] / math.log(2))
    assert got["bits_per_byte"] == pytest.approx(got["bits_per_token"], rel=1e-3)  # ASCII: one byte a char
    impl = INSTRUMENTS.get("attention_impl").run(run_dir, tmp_path / "i", {"max_tokens": 1024})["metrics"]
    assert impl["abs_diff"] < 1e-4 and impl["max_logit_diff"] < 1e-3
    assert impl["manual_loss"] == pytest.approx(impl["fused_loss"], abs=1e-4)
    with pytest.raises(NotApplicable, match="no test split"):
        INSTRUMENTS.get("test_split").run(_tiny_run(tmp_path, shared_data, 0.0), tmp_path / "n", {"max_tokens": 0})
