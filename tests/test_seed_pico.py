"""The `pico` study (seeds/pico-llm.md): it plans at both sizes with claims, instruments and seed
tables that name what it has; its pre- and post-norm variants differ in norm placement alone;
its own instruments (counting, top_p, kv_cache, memorized) measure what they say on tiny runs."""

from __future__ import annotations

import dataclasses

import pytest

from lmlab.study.expand import plan, variants
from lmlab.study.findings import check_findings
from lmlab.study.seeds import get_study
from lmlab.study.seeds.pico_instruments import copied_share, count_score, ngrams, on_greedy

SIZES = ("cpu", "full")


def runs_by_variant(size: str) -> dict:
    return {r.variant.slug: r.cfg for r in plan(get_study("pico", size)) if r.seed == 0}


@pytest.mark.parametrize("size", SIZES)
def test_pico_plans_and_its_claims_name_what_it_has(size):
    study = get_study("pico", size)
    found = check_findings(study, [v.slug for v in variants(study)])
    assert len(found.claims) >= 15 and len(study.seeds) >= 3
    ids = {c.id for c in found.claims}
    assert {"onehot_learns_slower", "postnorm_beats_prenorm", "position_embeddings_help",
            "bigger_embed_is_better", "overfit_gap_wider"} <= ids
    assert all(c.seed.startswith("pico-llm.md") for c in found.claims)
    assert all(t.source.startswith("pico-llm.md") for t in found.seed_tables)


@pytest.mark.parametrize("size", SIZES)
def test_variants_differ_only_in_what_they_compare(size):
    cfg = runs_by_variant(size)
    pre, post = cfg["prenorm"], cfg["postnorm"]
    assert (pre.model.norm_position, post.model.norm_position) == ("pre", "post")
    assert dataclasses.replace(pre.model, norm_position="post") == post.model
    assert (pre.train, pre.data) == (post.train, post.data)
    assert dataclasses.replace(cfg["kgram_onehot"].model, input="embedding") == cfg["kgram_embedding"].model
    assert dataclasses.replace(cfg["transformer"].model, position="none") == cfg["transformer_nopos"].model
    assert cfg["embed_small"].model.d_model * 2 == cfg["embed_large"].model.d_model
    for name in ("lstm_counting", "kgram_onehot", "kgram_counting", "transformer_counting"):
        assert {s.generator for s in cfg[name].data.sources} == {"counting"}
        assert {s.kind for s in cfg[name].data.sources} == {"synthetic"}
    assert {s.split for s in cfg["transformer_counting"].data.sources} == {"train", "val"}
    under, over = cfg["underfit"], cfg["overfit"]  # the seed's under- and over-fitting differ in steps alone
    assert over.train.max_steps > 10 * under.train.max_steps
    assert (under.model, under.data) == (over.model, over.data)
    assert dataclasses.replace(under.train, max_steps=over.train.max_steps) == over.train


def test_counting_scores_each_position():
    assert count_score(7, 3, 4, " 10 11 12 13 14") == 4
    assert count_score(7, 3, 4, " 10 11 21 13") == 3  # one wrong number; the rest still count
    assert count_score(98, 2, 3, " 100 101") == 2  # a missing number scores 0
    assert count_score(0, 3, 2, "") == 0


def test_greedy_path_and_copied_share():
    assert on_greedy([1, 2, 3, 9], [1, 2, 3, 4]) == 0.75
    assert on_greedy([5, 2, 3, 4], [1, 2, 3, 4]) == 0.0
    train = ngrams("the cat sat on the mat and the dog ran".split(), 3)
    assert copied_share("the cat sat on the mat", train, 3) == 1.0
    assert copied_share("a cat sat on the rug", train, 3) == pytest.approx(2 / 4)
    assert copied_share("two words", train, 3) == 0.0


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A transformer, an LSTM and a k-gram MLP trained for 15 steps on counting (about 5 s)."""
    from lmlab.presets import get_preset
    from lmlab.train import train

    out = tmp_path_factory.mktemp("pico")
    small = {"n_layer": 1, "d_model": 16, "n_head": 2, "context_len": 32}
    runs = {}
    for name, preset, model in (("transformer", "pico_transformer_counting", small),
                                ("lstm", "pico_lstm_counting", {"d_model": 16}),
                                ("kgram", "pico_kgram_embedding", {"d_model": 16, "d_mlp": 16})):
        cfg = get_preset(preset)
        sources = [dataclasses.replace(s, n_docs=60) for s in cfg.data.sources]
        cfg = cfg.replace(tokenizer={"kind": "byte"}, model={**model, "vocab_size": 0},
                          data={"sources": [s.to_dict() for s in sources]},
                          train={"max_steps": 15, "progress": False, "precision": "fp32", "lr": 3e-3},
                          eval={"every": 15, "max_tokens": 512})
        runs[name] = train(cfg, out / name).run_dir
    return runs


def test_pico_instruments_on_tiny_runs(tiny_runs, tmp_path):
    from lmlab.study.instruments import INSTRUMENTS, NotApplicable, load_kinds

    load_kinds()
    run = lambda kind, which, **p: INSTRUMENTS.get(kind).run(  # noqa: E731
        tiny_runs[which], tmp_path / kind / which, {**INSTRUMENTS.get(kind).params, **p})
    kv = run("kv_cache", "transformer", max_new_tokens=40)["metrics"]
    assert kv["same_text"] == 1.0 and kv["speedup"] > 0
    assert run("kv_cache", "lstm")["metrics"]["same_text"] == 1.0  # the recurrent state is its cache
    with pytest.raises(NotApplicable):
        run("kv_cache", "kgram")
    with pytest.raises(NotApplicable):
        run("attention_map", "lstm", prompt="0 1 2")
    counting = run("counting", "transformer", starts=[5, 40], numbers=4)
    assert 0 <= counting["metrics"]["accuracy"] <= 1 and counting["text"].count("/4") == 2
    top = run("top_p", "kgram", prompts=["1 2 3"], top_ps=[0.2, 1.0], samples=2, max_new_tokens=12)["metrics"]
    assert set(top) == {"on_greedy_p20", "on_greedy_p100", "distinct_2_p20", "distinct_2_p100", "distinct_2_greedy"}
    assert all(0 <= v <= 1 for v in top.values())
    mem = run("memorized", "transformer", prompts=["3 4 5"], n=2, samples=2, max_new_tokens=30)["metrics"]
    assert 0 <= mem["copied"] <= 1 and mem["excess"] == pytest.approx(mem["copied"] - mem["copied_val"])
