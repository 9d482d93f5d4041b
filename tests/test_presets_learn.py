"""Seed presets learn: at a small CPU budget its validation loss gets clearly below the
unigram entropy of its training tokens (what a model that ignores context reaches). A preset that
cannot beat the unigram — as Mini GPT's sinusoidal positions once could not (see
lmlab.model.components.position.SinusoidalPosition) — would make every study of it confident nonsense.

The budget is shrunk through overrides only: 60,000 tokens per source, a context of at most 32,
a batch of 16, 100-800 steps (SEED_PRESETS) after a 10-step warmup at a learning rate of at least
3e-3. Presets wider than 128 or deeper than 2 are cut to 2 layers x 128 (heads kept when they
divide, head size otherwise); big vocabularies are swapped for small ones (see CHAR). Every switch
(norm and its position, positions, FFN, attention kind and key/value heads, init, tying, input kind,
dropout, recurrence) is the preset's own. Pico's underfit/overfit/prenorm/wiki presets and the ladder's side rows
(07_mqa/gqa, 08_ffn2x/rmsnorm/flash, 05_*, 03_gelu) share their switches with presets tested here."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from lmlab.config import RunConfig
from lmlab.presets import PRESETS
from lmlab.train import train

# Where a seed's vocabulary is big (GPT-2's 50,257 ids for LLmini and Pico-LLM, cl100k's 100,277
# from ladder stage 07 on), the test swaps in a small vocabulary: the output layer over 50k-100k ids
# dominates a CPU step, and a model needs far more than 200 steps just to learn the unigram of such
# a vocabulary (llmini_c on GPT-2 ids: val 7.09 vs unigram 7.08 after 200 steps and 62 s of CPU;
# 6.31, 0.77 below, after 600 steps and 148 s). Every switch of the architecture stays the
# preset's own; the vocabulary's size is what is not tested.
CHAR = {"tokenizer": {"kind": "char", "path": ""}, "model": {"vocab_size": 0}}  # ~70-100 ids
BPE_512 = {"tokenizer": {"kind": "bpe", "path": "", "vocab_size": 512}, "model": {"vocab_size": 0}}

# Post-norm without warmup is known to diverge at high learning rates (Xiong et al. 2020): at the
# test's floor of 3e-3 pico_postnorm ends above its unigram (val 3.35 vs 3.21), at its own 3e-4 it
# reaches 2.42, as does the same model pre-norm or untied at 3e-3; so it keeps the seed's lr. Since
# pico trains on TinyStories alone (not mixed with counting), the cut 16-head model needs 200 steps:
# val 2.94 at 120 (0.11 below its unigram 3.05), 2.58 at 200, 2.42 at 300.
POSTNORM = {**CHAR, "train": {"lr": 3e-4}}

# name -> (steps, extra overrides); steps are the fewest that clear the margin by about 0.3 nats
# (measured). Stages 02-05 of the ladder (no residuals or norms before 05, PyTorch's default init,
# context 8) learn slowly but steadily: at 200 steps ladder_04 is still above its unigram (3.34 vs
# 3.20), at 800 0.31 below.
SEED_PRESETS = {
    # Mini GPT's three sizes keep their 8 heads and 2x FFN at widths 64 / 96 / 128 (the default cut
    # would make all three 2 x 128); they are the regression test for the sinusoidal-scale fix.
    "minigpt_small": (200, {"model": {"d_model": 64, "d_mlp": 128}}),
    "minigpt_medium": (150, {"model": {"d_model": 96, "d_mlp": 192}}),
    "minigpt_large": (100, {}),
    "ladder_01": (200, {}), "ladder_02": (400, {}), "ladder_02_bigram": (3000, {}),
    "ladder_02_average": (2000, {}), "ladder_03": (400, {}),
    "ladder_04": (800, {}), "ladder_05": (400, {}), "ladder_06": (100, {}),
    "ladder_07": (100, BPE_512), "ladder_08": (100, BPE_512), "ladder_09": (150, BPE_512),
    "llm_lite": (120, {}),
    # LLmini's three scales keep their head count and order of width: 2 layers of 6/5/4 heads of 16.
    "llmini_a": (100, {**CHAR, "model": {"vocab_size": 0, "n_head": 6, "d_model": 96}}),
    "llmini_b": (100, {**CHAR, "model": {"vocab_size": 0, "n_head": 5, "d_model": 80}}),
    "llmini_c": (100, {**CHAR, "model": {"vocab_size": 0, "n_head": 4, "d_model": 64}}),
    "pico_kgram_onehot": (200, CHAR), "pico_kgram_embedding": (200, CHAR), "pico_kgram": (200, CHAR),
    "pico_lstm": (200, CHAR), "pico_transformer": (100, CHAR), "pico_postnorm": (200, POSTNORM),
}
MARGIN = 0.15  # nats below the unigram entropy that count as "clearly" learned something
# The lecture's averaging step (ladder_02_average: the mean of the last <= 8 embeddings, no
# positions, no residual, so the current character is 1/8 of its input) is weak by design: it
# levels off 0.19 nats below its unigram at 2000 steps, at lr 3e-3 and 1e-2 alike. A broken bag of
# words would sit at the unigram, so 0.1 still tells. The neural bigram's V x V table starts at
# PyTorch's N(0, 1), 5.1 nats, hence its 3000 steps (0.21 below at 1500).
MARGINS = {"ladder_02_average": 0.1}


# The seeds' other rows, each with the tested preset closest to it: what they differ in (post-norm,
# GQA/MQA, RMSNorm, a 2x FFN, fused attention, GELU, width) is a switch some tested preset learns
# with; after the cut to 2 x 128 pico_underfit/overfit are pico_transformer with 16 heads.
COVERED_BY = {
    "ladder_01_bigram": "ladder_02_bigram",  # counted, nothing to train
    "ladder_01_wavenet": "ladder_01", "ladder_02_attention": "ladder_02", "ladder_03_gelu": "ladder_03",
    "ladder_05_residuals": "ladder_05", "ladder_05_projections": "ladder_05", "ladder_05_postln": "pico_postnorm",
    "ladder_05_preln": "ladder_05", "ladder_07_mqa": "ladder_07", "ladder_07_gqa": "ladder_08",
    "ladder_08_ffn2x": "ladder_07", "ladder_08_rmsnorm": "ladder_09", "ladder_08_flash": "ladder_08",
    "pico_underfit": "pico_transformer", "pico_overfit": "pico_transformer",
    "pico_prenorm": "pico_transformer", "pico_wiki": "pico_transformer",  # the 8 x 1024 model, cut to 2 x 128
    # the same models on counting sequences (the k-gram sanity presets test that corpus)
    "pico_kgram_counting": "pico_kgram_embedding", "pico_lstm_counting": "pico_lstm",
    "pico_transformer_counting": "pico_transformer",
}
SEED_NAME = re.compile(r"(ladder_|llmini_.$|llm_lite|minigpt_|pico_)")  # not the llmini_mix corpus


def test_every_seed_preset_is_covered():
    """A seed preset added later must join SEED_PRESETS (or name its twin here), not slip by."""
    seeds = {name for name in PRESETS if SEED_NAME.match(name)}
    assert seeds - set(SEED_PRESETS) - set(COVERED_BY) == set()
    assert set(SEED_PRESETS) | set(COVERED_BY) <= seeds
    assert set(COVERED_BY.values()) <= set(SEED_PRESETS)


def small_budget(name: str, steps: int = 200, extra: dict | None = None) -> RunConfig:
    cfg = PRESETS[name]()
    d = cfg.to_dict()
    if not d["data"].get("sources"):  # the single-source shorthand, as a table we can cap
        d["data"]["sources"] = [{"kind": d["data"].pop("source"), "path": d["data"].pop("path", "")}]
    for src in d["data"]["sources"]:
        src["max_tokens"] = 60_000
        if src.get("kind") == "synthetic":
            src["n_docs"] = min(src.get("n_docs", 2000), 400)
    m = d["model"]
    m["context_len"] = min(m["context_len"], 32)
    if d["data"].get("stride"):  # chunk layouts overlap windows by stride; keep it within the context
        d["data"]["stride"] = min(d["data"]["stride"], m["context_len"] // 2)
    if m.get("n_layer", 1) > 2 or m.get("d_model", 0) > 128:
        m["n_layer"] = min(m["n_layer"], 2)
        if m["d_model"] > 128:
            heads = m.get("n_head", 1)
            m["n_head"] = heads if 128 % heads == 0 and 128 // heads >= 8 else 4
            kv = m.get("n_kv_head", 0)
            if kv:
                m["n_kv_head"] = kv if m["n_head"] % kv == 0 else 1
            for key in ("d_mlp", "d_hidden"):
                if m.get(key):
                    m[key] = max(m[key] * 128 // m["d_model"], 16)
            m["d_model"] = 128
    d["train"].update(max_steps=steps, batch_size=16, grad_accum=1, warmup_steps=10, decay_steps=0,
                      lr=max(d["train"]["lr"], 3e-3), epochs=0, max_tokens=0, max_time=0.0,
                      precision="fp32", progress=False, checkpoint_every=0, patience=0)
    d["eval"].update(every=steps, max_tokens=4096, batch_size=16)
    for section, values in (extra or {}).items():
        d[section].update(values)
    return RunConfig.from_dict(d)


def unigram_entropy(tokens: np.ndarray) -> float:
    counts = np.bincount(tokens)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SEED_PRESETS))
def test_seed_preset_beats_unigram(name, tmp_path, shared_data):
    steps, extra = SEED_PRESETS[name]
    result = train(small_budget(name, steps, extra), tmp_path / name)
    from lmlab.data.prepare import prepare

    cfg = RunConfig.from_dict(__import__("tomllib").loads((tmp_path / name / "config.toml").read_text()))
    h = unigram_entropy(prepare(cfg, progress=False).train_tokens().numpy())
    assert math.isfinite(result.best_val_loss)
    margin = MARGINS.get(name, MARGIN)
    assert result.best_val_loss < h - margin, f"{name}: val {result.best_val_loss:.3f} vs unigram {h:.3f}"
