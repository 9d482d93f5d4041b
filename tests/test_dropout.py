"""lmlab's CPU dropout (16-bit masks, lmlab.model.dropout) against nn.Dropout's contract: the
dropped share is p (rounded to 1/65536), kept values are scaled so the expectation is unchanged,
the gradient goes through the same mask, eval mode is the identity, and a seed fixes the mask;
and `dropped_matmul`, which draws the mask again in backward, against `drop(x) @ v`."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.model.dropout import LEVELS, Dropout, draw_keep, dropped_matmul, seeded_keep


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_dropped_share_is_p_and_the_expectation_is_kept(p):
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = Dropout(p).train()(x)
    dropped = (y == 0).float().mean().item()
    sd = math.sqrt(p * (1 - p) / x.numel())
    assert abs(dropped - p) < 5 * sd  # a binomial share within 5 standard deviations
    assert y.mean().item() == pytest.approx(1.0, abs=5 * sd / (1 - p))
    values = torch.unique(y).tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1 / (1 - round(p * LEVELS) / LEVELS))]


def test_mask_bits_are_uniform_over_all_16_bit_positions():
    torch.manual_seed(1)
    m = draw_keep(torch.Size([4, 100_000]), LEVELS // 2, torch.float32)  # p = 1/2 exactly
    for lane in range(4):  # each of a 64-bit word's four 16-bit lanes is an independent coin
        assert m.view(-1)[lane::4].float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_gradient_uses_the_forward_mask_and_eval_is_identity():
    torch.manual_seed(2)
    d = Dropout(0.25).train()
    x = torch.randn(64, 33, requires_grad=True)
    y = d(x)
    y.backward(torch.ones_like(y))
    kept = y != 0
    assert torch.equal(x.grad != 0, kept)
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], d.scale))
    assert d.eval()(x) is x and Dropout(0.0).train()(x) is x


def test_a_seed_fixes_the_mask_and_bf16_keeps_its_dtype():
    x = torch.randn(8, 1000, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = Dropout(0.1).train()(x)
    torch.manual_seed(3)
    b = Dropout(0.1).train()(x)
    assert torch.equal(a, b) and a.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="not in"):
        Dropout(1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropped_matmul_is_bit_identical_to_dropout_then_matmul(dtype):
    probs = torch.softmax(torch.randn(2, 3, 40, 40), -1).to(dtype)
    v0, grad = torch.randn(2, 3, 40, 8, dtype=dtype), torch.randn(2, 3, 40, 8, dtype=dtype)
    d = Dropout(0.3).train()
    results = []
    for fn in (lambda x, v: d(x) @ v, lambda x, v: dropped_matmul(d, x, v)):
        x, v = probs.clone().requires_grad_(), v0.clone().requires_grad_()
        torch.manual_seed(4)
        out = fn(x, v)
        after = torch.rand(3)  # the generator stream continues as it would after plain dropout
        out.backward(grad)
        results.append((out, x.grad, v.grad, after))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    assert (results[0][1] == 0).float().mean().item() == pytest.approx(0.3, abs=0.05)


def test_dropped_matmul_keeps_neither_mask_nor_dropped_copy():
    scores = torch.randn(4, 64, 64, requires_grad=True)
    v = torch.randn(4, 64, 16, requires_grad=True)
    d = Dropout(0.1).train()

    def saved_bytes(fn):
        seen = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(torch.softmax(scores, -1), v)  # as in attention: softmax keeps its output anyway
        return sum(seen.values())
    plain = saved_bytes(lambda x, b: d(x) @ b)
    fused = saved_bytes(lambda x, b: dropped_matmul(d, x, b))
    n = scores.numel()
    assert plain == n * 4 + n * 4 + n * 4 + v.numel() * 4  # softmax output, keep factor, dropped copy, v
    assert fused == n * 4 + v.numel() * 4  # softmax output (shared) and v: the mask's seed is an int


@pytest.mark.parametrize("threshold", [1, 6554, LEVELS // 2, LEVELS - 1])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_keep_factor_is_one_exactly_where_the_16_bits_reach_the_threshold(threshold, dtype):
    import numpy as np
    seed, n = 11, 40_003  # not a multiple of four: the last word is cut
    words = np.random.Generator(np.random.SFC64(seed)).integers(
        -(1 << 63), (1 << 63) - 1, size=(n + 3) // 4, dtype=np.int64, endpoint=True)
    u = torch.from_numpy(words.view(np.int16)[:n].astype(np.int64)) + LEVELS // 2  # 16 bits as u on [0, 65536)
    keep = seeded_keep(torch.Size([n]), threshold, seed, dtype)
    assert keep.dtype == dtype
    assert torch.equal(keep, (u >= threshold).to(dtype))  # exactly 1.0 or 0.0 in the dtype


def test_a_probability_near_one_keeps_the_threshold_in_16_bits():
    d = Dropout(1 - 1e-7).train()
    assert d.threshold == LEVELS - 1
    torch.manual_seed(5)
    assert (d(torch.ones(10_000)) == 0).float().mean().item() > 0.99
