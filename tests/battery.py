"""The standard battery every architecture passes (DESIGN.md, house style 9): shapes, initial
loss ~ ln V, causality, overfitting one batch, save/load, cached generation vs recompute,
carried state vs the full forward. test_model.py runs it on every transformer switch,
test_baselines.py on every baseline."""

from __future__ import annotations

import math

import torch

from lmlab.checkpoint import load_weights, save_checkpoint
from lmlab.generate import GREEDY, generate


def shapes_and_initial_loss(model, V: int, T: int = 16) -> None:
    """Eval mode returns (B, T, V) logits; training with targets may return None for them (the
    transformer's chunked loss), with the same loss."""
    x, y = torch.randint(0, V, (8, T)), torch.randint(0, V, (8, T))
    train_logits, train_loss = model.train()(x, y)
    assert train_logits is None or train_logits.shape == (8, T, V)
    logits, loss = model.eval()(x, y)
    model.train()
    assert logits.shape == (8, T, V)
    assert abs(loss.item() - math.log(V)) < 0.1
    assert model(x)[1] is None
    if not any(isinstance(m, torch.nn.Dropout) for m in model.modules()):
        assert abs(train_loss.item() - loss.item()) < 1e-5


def causality(model, V: int, T: int = 16, cut: int = 9) -> None:
    """Changing tokens from `cut` on never changes the logits before it."""
    model.eval()
    x = torch.randint(0, V, (2, T))
    changed = x.clone()
    changed[:, cut:] = (changed[:, cut:] + 1) % V
    a, b = model(x)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :cut], b[:, :cut])
    assert not torch.allclose(a[:, cut:], b[:, cut:])


def overfits(model, x: torch.Tensor, y: torch.Tensor, lr: float = 1e-2, steps: int = 150) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def save_load(model, other, path, V: int, T: int = 16) -> None:
    """`other` (same config, different init) gets model's weights and then the same logits."""
    model.eval()
    save_checkpoint(path, model, None, {"step": 0})
    load_weights(path, other.eval())
    x = torch.randint(0, V, (2, T))
    assert torch.equal(model(x)[0], other(x)[0])


def cache_equals_recompute(model, V: int, new_tokens: int = 30) -> torch.Tensor:
    """Greedy generation with the model's cache equals recomputing the window every step
    (30 tokens after a 5-token prompt: past a 16-token context, so the window slides too)."""
    prompt = torch.randint(0, V, (2, 5))
    cached = generate(model, prompt, new_tokens, GREEDY)
    assert torch.equal(cached, generate(model, prompt, new_tokens, GREEDY, use_cache=False))
    return cached


def stepwise_equals_full(model, seq: torch.Tensor, prefix: int = 5) -> None:
    """Feeding a prefix, then one token at a time through the cache, gives the full forward's logits."""
    model.eval()
    cache = model.new_cache(seq.size(0))
    steps = [model(seq[:, :prefix], cache=cache)[0]]
    for t in range(prefix, seq.size(1)):
        steps.append(model(seq[:, t:t + 1], cache=cache)[0])
    assert cache.pos == seq.size(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), model(seq)[0], atol=1e-5, rtol=1e-4)
