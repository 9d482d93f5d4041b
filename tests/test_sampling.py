"""Batched generation equals one-at-a-time generation; sampling-study metrics and BLEU against
hand computations."""

from __future__ import annotations

import pytest
import torch

from lmlab.analysis.sampling import bleu_matrix, distinct, parse_floats, repetition, sampling_grid, sampling_study
from lmlab.errors import UserError
from lmlab.generate import GREEDY, Request, Sampling, generate, generate_batch
from lmlab.model import build_model
from lmlab.model.config import ModelConfig

HOT = Sampling(temperature=1.5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return build_model(ModelConfig(n_layer=2, n_head=2, d_model=32, context_len=12, vocab_size=40)).eval()


def test_batched_generation_equals_one_at_a_time(model):
    prompts = [[1, 2, 3], [4, 5, 6], [7], [8, 9, 10, 11, 12, 13], [1, 2, 3]]
    settings = [(0.0, 0, 1.0, None), (0.8, 0, 1.0, 5), (1.0, 5, 1.0, 6), (1.2, 0, 0.5, 7), (1.0, 0, 1.0, 8)]
    reqs = [Request(p, Sampling(t, k, tp), s) for p, (t, k, tp, s) in zip(prompts, settings)]
    n = 15  # past the 12-token context: the sliding window path too
    batched = generate_batch(model, reqs, n, batch_size=3)
    for r, got in zip(reqs, batched):
        alone = generate(model, torch.tensor([r.prompt]), n, r.sampling, r.seed)
        assert got.ids == alone[0, len(r.prompt):].tolist()
        assert len(got.logprobs) == n and all(lp <= 0 for lp in got.logprobs)


def test_logprobs_are_the_models_own(model):
    out = generate_batch(model, [Request([1, 2], GREEDY)], 3)[0]
    seq = torch.tensor([[1, 2] + out.ids])
    logits, _ = model(seq[:, :-1])
    expected = torch.log_softmax(logits[0, 1:], -1).gather(-1, seq[0, 2:, None])[:, 0]
    torch.testing.assert_close(torch.tensor(out.logprobs), expected, rtol=1e-4, atol=1e-5)


def test_padded_vocabulary_ids_are_never_sampled(model):
    out = generate_batch(model, [Request([1], HOT, seed=s) for s in range(8)], 20, vocab_size=10)
    assert max(i for g in out for i in g.ids) < 10
    assert generate(model, torch.tensor([[1]]), 20, HOT, seed=0, vocab_size=10).max() < 10


def test_never_sampled_ids_are_never_drawn(model):
    from collections import Counter

    from lmlab.generate import never_sampled
    from lmlab.tokenizer.char import CharTokenizer

    free = generate_batch(model, [Request([1], HOT, seed=s) for s in range(8)], 20)
    common = Counter(i for g in free for i in g.ids).most_common(1)[0][0]  # drawn when allowed
    out = generate_batch(model, [Request([1], HOT, seed=s) for s in range(8)], 20, never=(common,))
    assert common not in {i for g in out for i in g.ids}
    assert common not in generate(model, torch.tensor([[1]]), 20, HOT, seed=0, never=(common,))[0, 1:].tolist()
    greedy = generate_batch(model, [Request([1], GREEDY)], 1)[0].ids[0]  # what greedy picks when allowed
    assert generate_batch(model, [Request([1], GREEDY)], 1, never=(greedy,))[0].ids[0] != greedy
    tok = CharTokenizer("abc")
    assert tok.unk_id is not None and never_sampled(tok) == (tok.unk_id,)


def test_distinct_and_repetition_by_hand():
    assert distinct([[1, 2, 1, 2]], 1) == pytest.approx(2 / 4)
    assert distinct([[1, 2, 1, 2], [3, 4]], 2) == pytest.approx(3 / 4)  # (1,2) (2,1) (1,2) (3,4)
    assert repetition([1, 2, 3, 4, 1, 2, 3, 4]) == pytest.approx(1 / 5)  # 5 four-grams; the last repeats the first
    assert repetition([1, 2, 3]) == 0.0


def test_bleu_of_identical_texts_is_100():
    m = bleu_matrix(["the cat sat on the mat today", "the cat sat on the mat today", "a dog ran"])
    assert m[0][1] == pytest.approx(100.0) and m[0][0] == pytest.approx(100.0)
    assert m[0][2] < 10


class Digits:
    vocab_size = 40

    def encode(self, text):
        return [int(c) for c in text]

    def decode(self, ids):
        return "".join(chr(65 + i) for i in ids)


def test_sampling_study_table(model):
    study = sampling_study(model, Digits(), ["123", "45"], sampling_grid((0.0, 1.0), (0.5, 1.0)), seeds=2,
                           max_new_tokens=6)
    assert len(study["settings"]) == 4 and all(len(r["samples"]) == 4 for r in study["settings"])
    greedy = study["settings"][0]
    assert greedy["samples"][0]["text"] == greedy["samples"][1]["text"]  # seeds do not change greedy
    # no two prompts share a generator seed; every setting reuses the same ones
    assert all(sorted(x["seed"] for x in r["samples"]) == [0, 1, 2, 3] for r in study["settings"])
    assert all(0 < r["distinct_1"] <= 1 and r["mean_logprob"] < 0 for r in study["settings"])
    with pytest.raises(UserError, match="context"):
        sampling_study(model, Digits(), ["1" * 13])
    with pytest.raises(UserError, match="--top-p"):
        parse_floats("0,0.5", "--top-p", 0.0, 1.0, low_open=True)
