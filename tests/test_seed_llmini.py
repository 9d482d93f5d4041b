"""LLmini's study (lmlab.study.seeds.llmini): it plans at both sizes with every claim, instrument
and seed table naming what the study has; A, B and C train identically; its two instruments read
the corpus statistics and the attention table right; its claims say what the seed says."""

from __future__ import annotations

import json

import pytest

from lmlab.study.claims import claim_from_dict, evaluate
from lmlab.study.expand import plan, variants
from lmlab.study.findings import check_findings
from lmlab.study.instruments import INSTRUMENTS, NotApplicable, load_kinds
from lmlab.study.seeds import get_study
from lmlab.study.seeds import llmini as L

SHAPE = ("d_model", "n_head", "n_layer")


def _without_shape(cfg) -> dict:
    d = cfg.to_dict()
    d["name"] = ""
    d["model"] = {k: v for k, v in d["model"].items() if k not in SHAPE}
    return d


@pytest.mark.parametrize("size", ["cpu", "full"])
def test_plans_at_both_sizes_with_identical_training_for_a_b_c(size):
    study = get_study("llmini", size)
    slugs = [v.slug for v in variants(study)]
    assert slugs == ["A", "B", "C", "C_pad", "C_pack"]
    found = check_findings(study, slugs)  # every claim, instrument and table names what the study has
    assert len(found.claims) == len(L.claims()) and len(found.seed_tables) == 10
    assert len(study.seeds) >= 3 and study.budget == {"train.epochs": 3}
    cfg = {r.variant.slug: r.cfg for r in plan(study) if r.seed == study.seeds[0]}
    assert _without_shape(cfg["A"]) == _without_shape(cfg["B"]) == _without_shape(cfg["C"])
    assert len({c.model.d_model // c.model.n_head for c in cfg.values()}) == 1  # d_head fixed, as the seed's
    assert cfg["A"].model.n_layer > cfg["B"].model.n_layer > cfg["C"].model.n_layer >= 3  # first / middle / last
    assert [cfg[v].data.layout for v in ("C", "C_pad", "C_pack")] == ["chunk", "pad", "pack"]
    assert cfg["C_pack"].model == cfg["C_pad"].model == cfg["C"].model
    assert len({(c.train.warmup_steps, c.train.lr, c.train.epochs) for c in cfg.values()}) == 1  # one schedule
    assert get_study("llmini_scale", size).to_dict() == study.to_dict()  # the earlier name still works


def _stats(tmp_path, layout: str) -> dict:
    from lmlab.data.prepare import prepare
    from lmlab.data.stats import write_stats
    from lmlab.presets.registry import get_preset

    source = {"kind": "text", "name": "c", "path": str(tmp_path / "c.txt"), "docs": "line"}
    cfg = get_preset("tiny").replace(data={"sources": [source], "layout": layout, "stride": 32},
                                     model={"context_len": 64})
    prepared = prepare(cfg, progress=False)
    write_stats(prepared, tmp_path / "run" / "data", plot=False)
    return prepared.stats


def test_data_stats_reads_the_runs_statistics_as_the_seeds_table(tmp_path):
    load_kinds()
    lines = [("a short line " * (1 + i % 3)).strip() for i in range(40)] + ["a long text " * 60]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    tool = INSTRUMENTS.get("data_stats")
    with pytest.raises(NotApplicable, match="no data/stats.json"):
        tool.run(tmp_path / "run", tmp_path / "out", {"preset": "", "sources": ""})
    stats = _stats(tmp_path, "chunk")
    got = tool.run(tmp_path / "run", tmp_path / "out", {"preset": "", "sources": "c"})
    m, lay = got["metrics"], stats["layout"]
    assert m["rows"] == lay["rows"] > m["padded_rows"] > 0 and m["chunked_docs"] >= 1
    assert m["padded_share"] == pytest.approx(lay["padded_rows"] / lay["rows"])
    assert 0 < m["utilization"] < 1 and m["padding_overhead"] == pytest.approx(1 - m["utilization"])
    assert m["c.samples"] == m["samples"] and m["c.pct_tokens"] == pytest.approx(100.0)
    assert set(m) == set(INSTRUMENTS.get("data_stats").metrics({"sources": "c"}))  # what it declares at plan
    assert "| Token utilization |" in got["text"]
    _stats(tmp_path, "pack")
    packed = tool.run(tmp_path / "run", tmp_path / "out", {"preset": "", "sources": ""})["metrics"]
    assert packed["utilization"] == 1.0 and packed["padded_rows"] == 0


def test_layer_range_spans_the_per_layer_means_of_the_analyze_table(tmp_path):
    load_kinds()
    tool = INSTRUMENTS.get("layer_range")
    with pytest.raises(NotApplicable, match="analyze instrument 'attention'"):
        tool.run(tmp_path, tmp_path / "run" / "layers", {"source": "attention"})
    layers = [{"layer": i, "entropy": e, "sparsity": s} for i, (e, s) in enumerate([(4.3, 0.5), (3.1, 0.8),
                                                                                    (3.9, 0.6)])]
    stats = {"layers": layers, "per_head": {"entropy": [[4.0, 4.6], [3.0, 3.2], [3.8, 4.0]]}}
    (tmp_path / "run" / "attention").mkdir(parents=True)
    (tmp_path / "run" / "attention" / "attention.json").write_text(json.dumps(stats))
    m = tool.run(tmp_path, tmp_path / "run" / "layers", {"source": "attention"})["metrics"]
    assert (m["sparsity_layer_min"], m["sparsity_layer_max"], m["sparsity_peak_layer"]) == (0.5, 0.8, 2)
    assert m["sparsity_layer_range"] == pytest.approx(0.3) and m["entropy_low_layer"] == 2
    assert m["heads_x_layers"] == 6


def _claim(claim_id: str):
    return claim_from_dict(next(c for c in L.claims() if c["id"] == claim_id), "test")


def test_claims_read_the_seed_the_right_way_round():
    seeds = range(3)
    negative = _claim("entropy_sparsity_negative_A")  # "r about -0.9": its interval inside [-1, 0]
    r = {0: -0.85, 1: -0.8, 2: -0.9}
    assert evaluate(negative, {("A", "attention.entropy_sparsity_r"): r}).verdict == "holds"
    assert evaluate(negative, {("A", "attention.entropy_sparsity_r"): {s: -v for s, v in r.items()}}).verdict \
        == "does not hold"
    every_epoch = _claim("bigger_lower_val_loss")  # val loss A < B < C at every epoch
    loss = {(m, f"epoch{e}.val_loss"): {s: 5.0 - e / 4 + i / 3 + (s * 7 + i * 3) % 5 / 100 for s in seeds}
            for i, m in enumerate("ABC") for e in (1, 2, 3)}
    assert evaluate(every_epoch, loss).verdict == "holds"
    loss[("C", "epoch2.val_loss")] = {s: 1.0 + s * s / 50 for s in seeds}  # one epoch out of order
    assert evaluate(every_epoch, loss).verdict == "does not hold"
    gap = _claim("gap_grows_with_size")  # the last epoch's gap A > B > C
    gaps = {(m, "epoch3.gap"): {s: g + (s * 5 + i) % 3 / 1000 for s in seeds}
            for i, (m, g) in enumerate(zip("ABC", (0.003, -0.019, -0.041)))}
    assert evaluate(gap, gaps).verdict == "holds"


def test_cpu_schedule_constants_match_its_data(shared_data):
    """CPU_STEPS (warmup and evaluation cadence) is C's 3 epochs, and packed rows at CPU_PACK_BATCH a
    step give about as many steps: the schedule no variant is starved by."""
    from lmlab.data.epochs import EpochBatches
    from lmlab.data.prepare import prepare

    study = get_study("llmini", "cpu")
    cfg = {r.variant.slug: r.cfg for r in plan(study) if r.seed == study.seeds[0]}
    steps = {}
    for name in ("C", "C_pack"):
        c = cfg[name]
        data = prepare(c, progress=False)
        parts = [data.splits["train"][n] for n in data.splits["train"] if data.probs.get(n, 0) > 0]
        steps[name] = EpochBatches(parts, c.train.batch_size, c.model.context_len, 0).steps_per_epoch
    assert steps["C"] * L.EPOCHS == L.CPU_STEPS
    assert abs(steps["C_pack"] - steps["C"]) <= 0.1 * steps["C"]
