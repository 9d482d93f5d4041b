"""The seed studies' presets (lmlab.presets: one module per seed study): each validates and builds, and the parameter
counts the seeds state come out of the models. Models are built on the meta device: counting
and shape-checking need no memory or initialization time."""

import re

import pytest
import torch

from lmlab.config import RunConfig
from lmlab.model import build_model
from lmlab.presets import PRESETS, SEED_MODULES, describe_presets

SEED_PRESETS = sorted(name for name, fn in PRESETS.items() if fn.__module__ in {m.__name__ for m in SEED_MODULES})
TOKENIZER_VOCAB = {"byte": 257, "char": 65, "gpt2": 50257, "cl100k_base": 100277}  # for presets that take the vocabulary from the tokenizer
DOC_COUNT = re.compile(r"([\d.]+)([kM]) params(?: at V=(\d+))?")


def meta_model(name: str, vocab_size: int | None = None, **changes):
    cfg = PRESETS[name]()
    if changes:
        cfg = cfg.replace(model=changes)
    with torch.device("meta"):
        return build_model(cfg.model, vocab_size or cfg.tokenizer.vocab_size or TOKENIZER_VOCAB[cfg.tokenizer.kind])


def params(name: str, **changes) -> int:
    return meta_model(name, **changes).num_params()


def test_every_seed_study_has_its_presets():
    expected = {"llmini_a", "llmini_b", "llmini_c", "minigpt_small", "minigpt_medium", "minigpt_large",
                "llm_lite", "pico_kgram", "pico_kgram_onehot", "pico_lstm", "pico_transformer",
                *(f"ladder_0{i}" for i in range(2, 10))}
    assert expected <= set(SEED_PRESETS)


@pytest.mark.parametrize("name", SEED_PRESETS)
def test_preset_validates_builds_and_runs(name):
    cfg = PRESETS[name]()
    assert cfg.name == name
    assert RunConfig.from_dict(cfg.to_dict()) == cfg  # every field valid, every registry name known
    model = meta_model(name)
    T = min(8, cfg.model.context_len)
    logits, loss = model(torch.zeros(2, T, dtype=torch.long, device="meta"),
                         torch.zeros(2, T, dtype=torch.long, device="meta"))
    assert loss.shape == () and (logits is None or logits.shape == (2, T, model.config.vocab_size))
    logits, _ = model.eval()(torch.zeros(2, T, dtype=torch.long, device="meta"))
    assert logits.shape == (2, T, model.config.vocab_size)  # the logical vocabulary, padding cut off


@pytest.mark.parametrize("name", SEED_PRESETS)
def test_docstring_is_one_line_with_the_true_count(name):
    line = describe_presets()[name]
    assert line and len(line) <= 110
    found = DOC_COUNT.search(line)
    if found is None:
        assert "0 trainable params" in line
        assert params(name) == 0
        return
    number, unit, vocab = found.groups()
    n = meta_model(name, int(vocab) if vocab else None).num_params()
    shown = f"{n / 1e3:.1f}" if unit == "k" else f"{n / 1e6:.2f}"
    assert shown == number, f"{name}: docstring says {number}{unit}, the model has {n:,}"


@pytest.mark.parametrize("name, stated", [("minigpt_small", "1.05"), ("minigpt_medium", "3.40"),
                                          ("minigpt_large", "7.07")])
def test_minigpt_counts_match_the_seed(name, stated):
    # Total parameters, tied head once, sinusoidal positions not parameters (see lmlab.presets.minigpt).
    assert f"{params(name) / 1e6:.2f}" == stated


def test_minigpt_counting_convention_is_the_only_one_that_fits():
    # Without biases small and large miss the seed's figures, so the seed counted them.
    assert f"{params('minigpt_small', bias=False) / 1e6:.2f}" == "1.04"
    assert f"{params('minigpt_medium', bias=False) / 1e6:.2f}" == "3.39"
    assert f"{params('minigpt_large', bias=False) / 1e6:.2f}" == "7.05"
    # "Weight tying reduces the parameter count by 768k" (3000 x 256).
    assert params("minigpt_medium", tie_embeddings=False) - params("minigpt_medium") == 768_000
    # The diagram's "263k" is one block's attention sublayer, biases included.
    attn = meta_model("minigpt_medium").blocks[0].attn
    assert sum(p.numel() for p in attn.parameters()) == 263_168


def test_llmini_scales():
    cfgs = {s: PRESETS[f"llmini_{s}"]().model for s in "abc"}
    assert all(c.d_head == 64 and c.mlp_width == 4 * c.d_model for c in cfgs.values())
    n = {s: params(f"llmini_{s}") for s in "abc"}
    # "three variants at ~30-60M parameters", ordered A > B > C
    assert 30e6 < n["c"] < n["b"] < n["a"] < 60e6


def test_ladder_adds_one_idea_per_stage():
    m = {name: PRESETS[name]().model for name in SEED_PRESETS if name.startswith("ladder_")}
    assert (m["ladder_02"].n_head, m["ladder_02_attention"].n_head) == (4, 1)
    assert (m["ladder_03"].mlp, m["ladder_04"].n_layer) == ("relu", 4)
    assert (m["ladder_04"].residual, m["ladder_05_residuals"].residual) == (False, True)
    assert (m["ladder_05_postln"].norm_position, m["ladder_05_preln"].norm_position) == ("post", "pre")
    assert (m["ladder_07_mqa"].kv_heads, m["ladder_07_gqa"].kv_heads) == (1, 2)
    final = m["ladder_09"]
    assert (final.norm, final.mlp, final.mlp_width, final.kv_heads) == ("rmsnorm", "swiglu", 2 * final.d_model, 2)
    assert PRESETS["ladder_08"]().train.schedule == "constant" and PRESETS["ladder_09"]().train.schedule == "cosine"


def test_pico_kgram_variants_differ_only_in_input():
    onehot, embedding = PRESETS["pico_kgram_onehot"](), PRESETS["pico_kgram_embedding"]()
    assert onehot.model.input == "onehot" and embedding.model.input == "embedding"
    assert onehot.replace(name="x", model={"input": "embedding"}) == embedding.replace(name="x")
