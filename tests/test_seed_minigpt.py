"""The Mini GPT seed study (lmlab.study.seeds.minigpt): it plans at both sizes with the seed's
architecture, its claims and tables name what it measures, and its `family` instrument computes
what it says, on a constructed embedding and on a real (tiny) run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lmlab.study.expand import plan
from lmlab.study.findings import check_findings
from lmlab.study.instruments import INSTRUMENTS
from lmlab.study.seeds import get_study
from lmlab.study.seeds import minigpt as M


@pytest.mark.parametrize("size", ["cpu", "full"])
def test_the_study_plans_with_the_seeds_architecture_and_its_findings_name_what_it_measures(size):
    study = get_study("minigpt", size)
    runs = plan(study)
    slugs = [r.variant.slug for r in runs]
    assert sorted(set(slugs)) == sorted(M.SIZES) and len(study.seeds) >= 3
    check_findings(study, list(M.SIZES))  # every claim / table names variants and metrics the study has
    for r in runs:
        m, t = r.cfg.model, r.cfg.train
        assert (m.vocab_size, r.cfg.tokenizer.kind, r.cfg.tokenizer.vocab_size) == (3000, "bpe", 3000)
        assert (m.n_layer, m.position, m.tie_embeddings, m.norm_position, m.mlp) == (5, "sinusoidal", True, "pre",
                                                                                     "gelu")
        assert m.d_mlp == 2 * m.d_model
    # identical training for every size: the same steps, batch, schedule and warmup (the seed's ~8%)
    trains = {(r.cfg.train.max_steps, r.cfg.train.batch_size, r.cfg.train.warmup_steps, r.cfg.train.lr,
               r.cfg.model.context_len) for r in runs}
    assert len(trains) == 1
    steps, _, warmup, _, _ = trains.pop()
    assert abs(warmup / steps - 500 / 6348) < 0.01
    widths = {r.variant.slug: r.cfg.model.d_model for r in runs}
    assert widths["small"] < widths["medium"] < widths["large"]
    if size == "full":
        assert widths == {"small": 128, "medium": 256, "large": 384} and steps == 6348


def test_the_old_name_still_names_the_study():
    assert get_study("minigpt_sizes", "cpu") == get_study("minigpt", "cpu")


class Vocab:
    """A tokenizer whose every word (with its leading space) is one token; anything else is <unk> (id 0)."""

    is_char_level = False
    unk_id = 0

    def __init__(self, words):
        self.tokens = ["<unk>"] + [f" {w}" for w in words]
        self.vocab_size = len(self.tokens)

    def encode(self, text):
        return [self.tokens.index(text)] if text in self.tokens else [0]

    def decode(self, ids):
        return "".join(self.tokens[i] for i in ids)


def constructed_run(words: dict[str, list[float]]):
    tok = Vocab(list(words))
    model = nn.Module()
    model.tok_emb = nn.Embedding(tok.vocab_size, 4)
    with torch.no_grad():
        model.tok_emb.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, -1.0], *words.values()], dtype=torch.float))
    return SimpleNamespace(model=model, tokenizer=tok)


def test_family_instrument_measures_cosines_neighbours_and_the_analogy_rank(tmp_path, monkeypatch):
    # Axes: 0 family, 1 object, 2 female, 3 male. mom - girl + boy lands exactly on dad.
    words = {"dad": [1, 0, 0, 1], "mom": [1, 0, 1, 0], "Dad": [1, 0, 0, 0.9], "daddy": [1, 0.1, 0, 1],
             "parents": [1, 0, 0.5, 0.5], "Daddy": [0.9, 0, 0, 1], "girl": [0, 0.2, 1, 0], "boy": [0, 0.2, 0, 1],
             "friend": [0.1, 1, 0, 0], "dog": [0, 1, 0, 0.1], "tree": [0, 1, 0, 0], "ball": [0, 1, 0.1, 0],
             "car": [0, 1, 0, 0]}
    monkeypatch.setattr(M, "_open", lambda run_dir: constructed_run(words))
    run = INSTRUMENTS.get("family").run
    params = dict(INSTRUMENTS.get("family").params, k=6)
    got = run(tmp_path, tmp_path / "dad", params)["metrics"]
    dad = torch.tensor(words["dad"], dtype=torch.float)
    cos = {w: float(torch.nn.functional.cosine_similarity(dad, torch.tensor(v, dtype=torch.float), dim=0))
           for w, v in words.items()}
    assert math.isclose(got["related_cosine"], sum(cos[w] for w in M.FAMILY.split(",")) / 5, rel_tol=1e-6)
    assert math.isclose(got["other_cosine"], sum(cos[w] for w in M.OTHERS.split(",")) / 5, rel_tol=1e-6)
    assert got["related_in_top"] == 5 and got["analogy_rank"] == 1
    # an answer outside the top k reads k + 1; the file written is listed
    out = run(tmp_path, tmp_path / "dad2", {**params, "analogy": "mom - girl + boy", "expect": "car", "k": 3})
    assert out["metrics"]["analogy_rank"] == 4 and (tmp_path / "dad2" / "family.txt").is_file()


def test_family_instrument_on_a_tiny_trained_run(tmp_path):
    from lmlab.presets.resolve import resolve_config
    from lmlab.train.loop import train

    text = tmp_path / "stories.txt"
    text.write_text(" ".join(["Tom and his dad saw mom and his parents. Dad and daddy and Daddy played.",
                              "The girl and the boy had a friend, a dog, a tree, a ball and a car."] * 40))
    cfg = resolve_config("minigpt_small", str(text), {
        "tokenizer.vocab_size": "300", "model.vocab_size": "300", "model.d_model": "16", "model.d_mlp": "32",
        "model.n_layer": "1", "model.n_head": "2", "model.context_len": "16", "train.max_steps": "3",
        "train.batch_size": "4", "train.warmup_steps": "1", "train.precision": "fp32", "eval.every": "3",
        "eval.max_tokens": "256"})
    train(cfg, tmp_path / "run")
    got = INSTRUMENTS.get("family").run(tmp_path / "run", tmp_path / "dad", INSTRUMENTS.get("family").params)
    m = got["metrics"]
    assert set(m) == set(M._family_metrics({}))
    assert -1 <= m["other_cosine"] <= 1 and -1 <= m["related_cosine"] <= 1 and 1 <= m["analogy_rank"] <= 11
    assert "'dad' vs related" in got["text"]


def test_analogy_rank_of_a_word_the_tokenizer_splits_is_not_measured():
    from lmlab.analysis.probe import answer_rank, rank_note

    class Pieces(Vocab):
        def encode(self, text):
            return [self.tokens.index(f" {w}") for w in text.split()]  # "tree ball" is two tokens

    tok = Pieces(["tree", "ball", "car"])
    answers = [{"token": " ball"}, {"token": " tree"}]
    assert answer_rank(answers, "Tree", tok) == 2 and answer_rank(answers, "ball", tok) == 1
    assert answer_rank(answers, "car", tok) == 3 and "not in the top 2" in rank_note("car", 3, 2)
    assert answer_rank(answers, "tree ball", tok) is None  # no single-token answer could match it
    assert "not measured" in rank_note("tree ball", None, 2)
