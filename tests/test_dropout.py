"""lmlab's CPU dropout (16-bit masks, lmlab.model.dropout) against nn.Dropout's contract: the
dropped share is p (rounded to 1/65536), kept values are scaled so the expectation is unchanged,
the gradient goes through the same mask, eval mode is the identity, and a seed fixes the mask."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.model.dropout import LEVELS, Dropout, drop_mask


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
    m = drop_mask(torch.Size([4, 100_000]), LEVELS // 2)  # p = 1/2 exactly
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
