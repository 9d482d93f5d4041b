import io

import torch

from lmlab.cli import TextStream
from lmlab.generate import generate, sample_next
from lmlab.model import ModelConfig, build_model
from lmlab.tokenizer import build_tokenizer


def test_greedy_is_argmax_and_temperature_zero():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    assert sample_next(logits, temperature=0).tolist() == [1, 0]


def test_top_k_only_samples_the_k_best():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    draws = {sample_next(logits, 1.0, top_k=2, generator=g).item() for _ in range(300)}
    assert draws == {0, 1}


def test_top_p_keeps_the_smallest_set_covering_p():
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    draws = {sample_next(probs.log(), 1.0, top_p=0.7, generator=g).item() for _ in range(300)}
    assert draws == {0, 1}  # 0.5 < 0.7, 0.5 + 0.3 >= 0.7
    draws = {sample_next(probs.log(), 1.0, top_p=0.4, generator=g).item() for _ in range(100)}
    assert draws == {0}


def test_same_seed_same_text_different_seed_differs():
    model = build_model(ModelConfig(n_layer=1, n_head=2, d_model=16, context_len=8), 20)
    prompt = torch.tensor([[1, 2, 3]])
    a = generate(model, prompt, 20, temperature=1.0, seed=5)
    b = generate(model, prompt, 20, temperature=1.0, seed=5)
    c = generate(model, prompt, 20, temperature=1.0, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 23) and torch.equal(a[:, :3], prompt)


def test_stream_holds_back_partial_utf8():
    tok = build_tokenizer("byte", "")
    out = io.StringIO()
    stream = TextStream(tok, out)
    for i in tok.encode("a€b"):
        stream.push(i)
    stream.finish()
    assert out.getvalue() == "a€b\n"
