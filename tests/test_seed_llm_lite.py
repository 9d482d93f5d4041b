"""The llm_lite study (shared/seeds/llm-lite.md): it plans at both sizes with its two stages and
its findings checked, its 1.17 claim is wired to the best configuration's perplexity, and its own
instruments (the retrained best read from selected.json; how local a head attends) give the
numbers hand computation gives."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lmlab.study.claims import claim_from_dict, evaluate
from lmlab.study.expand import plan
from lmlab.study.findings import check_findings
from lmlab.study.instruments import NotApplicable
from lmlab.study.seeds import get_study
from lmlab.study.seeds.llm_lite import CPU, FULL, best, locality, locality_stats, retrained


@pytest.mark.parametrize("size, sc", [("cpu", CPU), ("full", FULL)])
def test_plans_both_stages_at_both_sizes_and_its_findings_name_what_it_measures(size, sc):
    s = get_study("llm_lite", size)
    assert get_study("llm_lite_grid", size) == s  # the old name still works
    runs = plan(s)
    cfg = {r.variant.slug: r.cfg for r in runs}
    check_findings(s, list(cfg))
    top = cfg[best(sc)]
    assert (top.train.lr, top.model.n_layer, top.model.n_head, top.model.d_model) == \
           (sc.lrs[0], sc.layers[2], 4, sc.widths[1])
    stage1 = [c for slug, c in cfg.items() if slug.startswith("s1-")]
    stage2 = [c for slug, c in cfg.items() if not slug.startswith("s1-")]
    assert len(stage2) == 12 and {c.model.d_model for c in stage2} == {sc.widths[1]}
    assert {(c.train.schedule, c.train.batch_size, c.train.warmup_steps) for c in stage1} == \
           {("constant", sc.batches[0], 0)}
    assert {(c.train.schedule, c.train.batch_size) for c in stage2} == {("cosine", sc.batches[1])}
    assert {c.model.d_model for c in stage1} == set(sc.widths) and len(s.seeds) >= 3
    assert s.select == "val_loss" and s.retrain["train.epochs"] == 2 * s.budget["train.epochs"]
    assert all(c.train.patience == 3 and c.tokenizer.kind == "bpe" for c in cfg.values())
    if size == "full":  # the seed's own grid: 2 lr x 3 depths x 2 heads x 3 widths in stage 1
        assert len(stage1) == 36 and (top.train.lr, top.model.n_layer, top.model.d_model) == (1e-3, 6, 128)


def test_the_seeds_perplexity_of_1_17_fails_for_a_wikitext_model_and_would_hold_for_its_own_numbers():
    s = get_study("llm_lite", "cpu")
    claim = claim_from_dict(next(c for c in s.claims if c["id"] == "val_ppl_1_17"), "test")
    key = (best(CPU), "best_val_perplexity")
    assert evaluate(claim, {key: {0: 480.0, 1: 492.0, 2: 471.0}}).verdict == "does not hold"
    assert evaluate(claim, {key: {0: 1.171, 1: 1.172, 2: 1.170}}).verdict == "holds"


def _study_dir(tmp_path, record):
    for slug in ("lr0.002-L3-H4", "s1-lr0.002-L1-H4-d32"):
        (tmp_path / "runs" / f"{slug}-s0").mkdir(parents=True)
    if record is not None:
        (tmp_path / "selected.json").write_text(json.dumps(record))
    return tmp_path / "runs"


def test_retrained_reads_the_selection_and_says_which_variant_it_was(tmp_path):
    record = {"variant": "lr0.002-L3-H4", "selected_by": "val_loss", "search_mean": 5.0, "seed": 0,
              "retrain": {"train.epochs": 10}, "retrain_best_val_loss": 4.5, "test": {"loss": 4.6}}
    runs = _study_dir(tmp_path, record)
    got = retrained(runs / "lr0.002-L3-H4-s0", tmp_path / "f", {})
    assert got["metrics"] == pytest.approx({"selected": 1.0, "test_loss": 4.6, "test_perplexity": math.exp(4.6),
                                            "best_val_loss": 4.5, "val_ratio": 0.9})
    assert "selected lr0.002-L3-H4" in got["text"]
    assert retrained(runs / "s1-lr0.002-L1-H4-d32-s0", tmp_path / "f", {})["metrics"]["selected"] == 0.0


def test_retrained_is_not_applicable_without_a_selection_or_a_test_result(tmp_path):
    with pytest.raises(NotApplicable, match="no selected.json"):
        retrained(_study_dir(tmp_path / "a", None) / "lr0.002-L3-H4-s0", tmp_path, {})
    record = {"variant": "lr0.002-L3-H4", "test": {"error": "the run has no test split"}}
    with pytest.raises(NotApplicable, match="no test split"):
        retrained(_study_dir(tmp_path / "b", record) / "lr0.002-L3-H4-s0", tmp_path, {})


def test_locality_of_a_uniform_head_and_of_a_previous_token_head():
    T = 6
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]  # query q: 1/(q+1) on keys 0..q
    got = locality_stats(uniform.expand(3, T, T))
    qs = range(1, T)
    assert got["prev_token"] == pytest.approx(sum(1 / (q + 1) for q in qs) / (T - 1))
    assert got["distance"] == pytest.approx(sum(q / 2 for q in qs) / (T - 1))
    assert got["entropy"] == pytest.approx(sum(math.log(q + 1) for q in qs) / (T - 1), rel=1e-5)
    previous = torch.zeros(T, T)
    previous[0, 0] = 1
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1
    assert locality_stats(previous[None]) == pytest.approx({"prev_token": 1.0, "distance": 1.0, "entropy": 0.0},
                                                          abs=1e-6)


def test_locality_on_a_trained_run_counts_negative_layers_and_heads_from_the_end(tmp_path):
    from lmlab.presets import get_preset
    from lmlab.train import train

    cfg = get_preset("tiny").replace(model={"n_layer": 2, "n_head": 2, "d_model": 16, "context_len": 16},
                                     train={"max_steps": 4, "progress": False}, eval={"every": 4, "max_tokens": 512})
    run = train(cfg, tmp_path / "run").run_dir
    last = locality(run, tmp_path / "a", {"layer": -1, "head": -1, "windows": 4})["metrics"]
    assert last == locality(run, tmp_path / "b", {"layer": 1, "head": 1, "windows": 4})["metrics"]
    assert 0 <= last["prev_token"] <= 1 and 0 <= last["entropy"] <= math.log(16) and 0 < last["distance"] < 15
