"""lmlab.analysis against hand computations: attention statistics on constructed patterns, head
roles of a hand-built previous-token head, ablation through hooks, embedding probes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lmlab.analysis import ablate_each, ablate_heads, ablation_loss, attention_stats, head_roles
from lmlab.analysis.attention import PatternAccumulator
from lmlab.analysis.heads import role_scores_from_pattern
from lmlab.analysis.probe import analogy, lookup, neighbours, parse_analogy, pca
from lmlab.analysis.source import Windows
from lmlab.errors import UserError
from lmlab.model import build_model
from lmlab.model.config import ModelConfig
from lmlab.model.hooks import hooks


def stats_of(pattern: torch.Tensor, real: torch.Tensor, threshold: float = 1e-3) -> dict:
    acc = PatternAccumulator(1, pattern.size(1), threshold)
    acc.add(0, pattern, real)
    return {k: float(v[0, 0]) for k, v in acc.result().items()}


def uniform_causal(T: int) -> torch.Tensor:
    return torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]  # (T, T)


def test_uniform_causal_pattern_matches_hand_computation():
    T = 5
    s = stats_of(uniform_causal(T)[None, None], torch.ones(1, T, dtype=torch.bool))
    n = np.arange(1, T + 1)
    assert s["entropy"] == pytest.approx(np.log(n).mean())
    assert s["entropy_norm"] == pytest.approx(1.0)  # queries with >= 2 keys: log n / log n
    assert s["sparsity"] == pytest.approx(0.0)
    assert s["max_weight"] == pytest.approx((1 / n).mean())
    assert s["mean_distance"] == pytest.approx(((n - 1) / 2).mean())


def test_one_hot_pattern_and_threshold():
    T = 4
    p = torch.zeros(1, 1, T, T)
    p[..., 0] = 1.0  # every query looks at the first token
    s = stats_of(p, torch.ones(1, T, dtype=torch.bool))
    assert s["entropy"] == pytest.approx(0.0) and s["entropy_norm"] == pytest.approx(0.0)
    allowed = T * (T + 1) / 2
    assert s["sparsity"] == pytest.approx((allowed - T) / allowed)  # zeros below 1e-3, the ones not
    assert s["max_weight"] == pytest.approx(1.0)
    assert s["mean_distance"] == pytest.approx(np.arange(T).mean())
    q = uniform_causal(3)[None, None]
    assert stats_of(q, torch.ones(1, 3, dtype=torch.bool), threshold=0.4)["sparsity"] == pytest.approx(3 / 6)  # the thirds


def test_pad_queries_and_keys_are_excluded():
    T = 6
    p = uniform_causal(T)[None, None].clone()
    p[0, 0, 4:] = torch.softmax(torch.randn(2, T), -1)  # pad rows: garbage that must not count
    real = torch.tensor([[True] * 4 + [False] * 2])
    assert stats_of(p, real) == pytest.approx(stats_of(uniform_causal(4)[None, None], torch.ones(1, 4, dtype=torch.bool)))


def tiny_model(**kw) -> torch.nn.Module:
    cfg = ModelConfig(**{"n_layer": 2, "n_head": 2, "d_model": 32, "context_len": 16, "vocab_size": 23, **kw})
    return build_model(cfg).eval()


def test_fused_and_manual_paths_give_the_same_statistics():
    torch.manual_seed(0)
    fused = tiny_model(attention="sdpa")
    manual = tiny_model(attention="manual")
    manual.load_state_dict(fused.state_dict())
    x = torch.randint(0, 23, (3, 16))
    w = Windows(x, x, torch.tensor([17, 10, 5]))
    a, b = attention_stats(fused, w), attention_stats(manual, w)
    for key in a["per_head"]:
        np.testing.assert_allclose(a["per_head"][key], b["per_head"][key], rtol=1e-5, atol=1e-6)
    with hooks(fused, {"blocks.*.attn.hook_pattern": lambda p, n: None}):  # forces the manual path
        hooked, _ = fused(x)
    torch.testing.assert_close(hooked, fused(x)[0], rtol=1e-4, atol=1e-5)  # pattern path == fused kernel


def previous_token_model(T: int = 16) -> torch.nn.Module:
    """One attention-only head whose query at i matches the key at i - 1 (positions one-hot)."""
    cfg = ModelConfig(n_layer=1, n_head=1, d_model=2 * T, context_len=T, vocab_size=11, mlp="none", norm="none",
                      bias=False, tie_embeddings=False)
    model = build_model(cfg).eval()
    D = 2 * T
    with torch.no_grad():
        model.tok_emb.weight.zero_()
        model.tok_emb.weight[:, T:] = torch.randn(11, T)  # token identity lives in the upper half
        model.pos_emb.emb.weight.zero_()
        model.pos_emb.emb.weight[:, :T] = torch.eye(T)  # position i -> e_i
        w = model.blocks[0].attn.qkv.weight  # (3D, D): q, k, v rows
        w.zero_()
        w[:T, :T] = 100 * torch.eye(T)  # q_i = 100 e_i
        w[D + 1:D + T, :T - 1] = torch.eye(T - 1)  # k_j = e_{j+1}
        w[2 * D:, :] = torch.eye(D)
    return model


def test_hand_built_previous_token_head():
    model = previous_token_model()
    roles = head_roles(model, n_seqs=8, token_ids=torch.arange(10))
    s = {r: v[0][0] for r, v in roles["scores"].items()}
    assert s["previous_token"] > 0.99
    assert s["induction"] < 0.01 and s["duplicate_token"] < 0.01
    assert roles["top"]["previous_token"][0] == {"layer": 0, "head": 0, "score": pytest.approx(s["previous_token"])}


def test_role_scores_pick_the_right_diagonals():
    half, T = 4, 8
    p = torch.zeros(1, 2, T, T)
    for i in range(T):
        p[0, 0, i, max(i - 1, 0)] = 1.0  # previous token
        p[0, 1, i, i - half + 1 if i >= half else 0] = 1.0  # induction in the second repeat
    s = role_scores_from_pattern(p, half)
    assert s["previous_token"].tolist() == pytest.approx([1.0, 1 / 7])  # head 1: only i=1 (key 0 = i-1)
    assert s["induction"].tolist() == pytest.approx([0.0, 1.0])
    assert s["first_token"][1] == pytest.approx(3 / 7)


def test_ablating_every_head_equals_zeroing_the_attention_output():
    torch.manual_seed(1)
    model = tiny_model(bias=False)
    x = torch.randint(0, 23, (2, 16))
    everything = [(l, h) for l in range(2) for h in range(2)]
    with ablate_heads(model, everything):
        ablated, _ = model(x)
    with hooks(model, {"blocks.*.hook_attn_out": lambda a, n: torch.zeros_like(a)}):
        zeroed, _ = model(x)
    torch.testing.assert_close(ablated, zeroed)
    assert not torch.allclose(ablated, model(x)[0])  # and the hooks are gone afterwards


def test_ablation_loss_and_each_agree():
    torch.manual_seed(2)
    model = tiny_model()
    x = torch.randint(0, 23, (4, 16))
    w = Windows(x, torch.roll(x, -1, 1), torch.full((4,), 17))
    each = ablate_each(model, w)
    one = ablation_loss(model, w, [(1, 0)])
    assert one["delta_loss"] == pytest.approx(each["delta_loss"][1][0], abs=1e-6)
    mean = ablation_loss(model, w, [(0, 1)], mode="mean")
    assert mean["base_loss"] == pytest.approx(one["base_loss"]) and mean["loss"] != one["loss"]


class WordTokenizer:
    """Whole words as tokens (a stand-in for a BPE vocabulary: " king" is one token)."""

    is_char_level = False
    unk_id = None

    def __init__(self, words):
        self.words, self.vocab_size = list(words), len(words)

    def encode(self, text):
        out = []
        for w in text.split():
            if w in self.words:
                out.append(self.words.index(w))
            else:  # spell unknown words letter by letter when the letters are tokens
                out += [self.words.index(c) for c in w if c in self.words]
        return out

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def test_neighbours_analogy_and_pca_on_a_hand_built_embedding():
    words = ["king", "queen", "man", "woman", "apple", "x", "y"]
    emb = torch.tensor([[1.0, 1, 0], [1, 0, 1], [0.1, 1, 0], [0.1, 0, 1], [-1, 0, 0], [0, 1, 0], [0, 0, 1]])
    tok = WordTokenizer(words)
    near = neighbours(emb, tok, ["king"], k=2)["king"]["neighbours"]
    assert [n["token"] for n in near] == ["man", "x"]
    assert near[0]["cosine"] == pytest.approx(float(torch.cosine_similarity(emb[0], emb[2], 0)))
    result = analogy(emb, tok, "king - man + woman", k=1)
    assert result["answers"][0]["token"] == "queen"  # king, man, woman themselves are excluded
    multi = lookup(tok, "xy")
    assert multi.ids == [5, 6] and "mean" in multi.note
    coords = pca(emb, tok, ["king", "queen", "man", "woman"])
    assert len(coords["coords"]) == 4 and sum(coords["explained_variance"]) <= 1 + 1e-9


def test_lookup_prefers_the_spaced_token_and_says_when_it_takes_the_bare_one():
    class Spaced:  # " queen" is one token; " king" two, while the bare "king" (as in "looking") is one
        is_char_level, unk_id = False, None
        table = {" queen": [0], "queen": [1], " king": [2, 3], "king": [4], " xy": [5, 6], "xy": [5, 6, 7]}

        def encode(self, text):
            return self.table[text]

    tok = Spaced()
    assert lookup(tok, "queen").ids == [0] and lookup(tok, "queen").note == ""
    king = lookup(tok, "king")
    assert king.ids == [4] and "without a leading space" in king.note
    assert lookup(tok, "xy").ids == [5, 6] and "mean" in lookup(tok, "xy").note  # several tokens: the shorter


def test_probe_errors_and_analogy_parsing():
    from lmlab.tokenizer.char import CharTokenizer

    char = CharTokenizer("abc")
    with pytest.raises(UserError, match="not in the vocabulary"):
        lookup(char, "z")
    with pytest.raises(UserError, match="not in the vocabulary"):
        lookup(WordTokenizer(["q"]), "zebra")
    assert parse_analogy("princess - girl + boy") == [(1, "princess"), (-1, "girl"), (1, "boy")]
    for bad in ("princess girl", "a - ", "+", "a -- b", "a"):
        with pytest.raises(UserError, match="--analogy"):
            parse_analogy(bad)


def test_attention_stats_refuse_models_without_attention():
    lstm = build_model(ModelConfig(arch="lstm", d_model=16, context_len=8, vocab_size=11))
    x = torch.randint(0, 11, (1, 8))
    with pytest.raises(UserError, match="no attention"):
        attention_stats(lstm, Windows(x, x, torch.tensor([9])))


def test_log_spaced_kept_steps():
    from lmlab.config import TrainConfig
    from lmlab.train.keep import is_kept, kept_steps

    assert kept_steps(100, 25) == [0, 1, 2, 4, 8, 16, 25, 50, 75, 100]
    cfg = dataclasses.replace(TrainConfig(), max_steps=90, keep_checkpoints="log", keep_every=25)
    assert [s for s in range(91) if is_kept(s, cfg, 250)] == [0, 1, 2, 4, 8, 16, 25, 50, 75, 90]
    assert math.isfinite(cfg.max_steps)


@pytest.mark.slow
def test_an_induction_pattern_forms_on_the_induction_source(tmp_path):
    """The `induction` preset's model, trained briefly here: some head learns to attend from a
    repeated token to the one after its earlier occurrence, which it did not do at init."""
    from lmlab.analysis import open_run
    from lmlab.presets import get_preset
    from lmlab.train import train

    cfg = get_preset("induction").replace(train={"max_steps": 150, "keep_checkpoints": "none", "progress": False},
                                          eval={"every": 150, "max_tokens": 2048})
    result = train(cfg, tmp_path / "run")
    trained = open_run(result.run_dir).model
    fresh = build_model(trained.config).eval()
    alphabet = torch.arange(26)  # the letters a..z of the source (ids of the char tokenizer)
    before = head_roles(fresh, n_seqs=16, token_ids=alphabet)["top"]["induction"][0]["score"]
    after = head_roles(trained, n_seqs=16, token_ids=alphabet)["top"]["induction"][0]["score"]
    assert before < 0.2 and after > 0.5, (before, after)


def test_layer_means_and_correlation_summaries():
    from lmlab.analysis.attention import summarize

    rng = np.random.default_rng(0)
    per_head = {k: rng.random((3, 4)) for k in ("entropy", "entropy_norm", "sparsity", "max_weight", "mean_distance")}
    s = summarize(per_head, 1e-3)
    assert s["layers"][1]["sparsity"] == pytest.approx(per_head["sparsity"][1].mean())
    assert s["model"]["entropy"] == pytest.approx(per_head["entropy"].mean())
    r = np.corrcoef(per_head["entropy"].ravel(), per_head["sparsity"].ravel())[0, 1]
    assert s["correlation"]["entropy_sparsity_pearson"] == pytest.approx(r)
