import io

import torch

from lmlab.commands.generate import TextStream
from lmlab.generate import GREEDY, Sampling, generate, sample_next
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
    a = generate(model, prompt, 20, Sampling(temperature=1.0), seed=5)
    b = generate(model, prompt, 20, Sampling(temperature=1.0), seed=5)
    c = generate(model, prompt, 20, Sampling(temperature=1.0), seed=6)
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


def test_int8_weights_stay_close_and_keep_the_cache_exact():
    from lmlab.quantize import Int8Linear, quantize_int8

    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=2, n_head=2, d_model=32, context_len=16, attention="sdpa"), 40).eval()
    quantized = quantize_int8(model)
    assert sum(isinstance(m, Int8Linear) for m in quantized.modules()) == 2 * 4 + 1  # qkv, proj, fc, proj; head
    assert not any(isinstance(m, Int8Linear) for m in model.modules())  # the original is untouched
    for module in quantized.modules():
        if isinstance(module, Int8Linear):  # rounding error at most half a step per weight
            original = dict(model.named_modules())[[n for n, m in quantized.named_modules() if m is module][0]]
            assert (module.dequantized() - original.weight).abs().max() <= module.scale.max() / 2 + 1e-7
    x = torch.randint(0, 40, (2, 16))
    with torch.no_grad():
        full, approx = model(x)[0], quantized(x)[0]
    assert (full - approx).abs().max() < 0.05
    prompt = torch.tensor([[1, 2, 3]])
    assert torch.equal(generate(quantized, prompt, 20, GREEDY),
                       generate(quantized, prompt, 20, GREEDY, use_cache=False))
