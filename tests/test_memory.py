"""model.grad_checkpoint measured: the peak of CPU allocations during one forward + backward
(recorded by torch.profiler's memory events) falls, and the gradients stay the same."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from lmlab.model import ModelConfig, build_model


def peak_allocated_bytes(fn) -> int:
    """Highest running total of bytes allocated (minus freed) by torch on the CPU while `fn` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        current += e.nbytes()  # negative for frees
        peak = max(peak, current)
    return peak


def _step(grad_checkpoint: bool):
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=6, n_head=4, d_model=64, context_len=64, attention="manual",
                                    grad_checkpoint=grad_checkpoint), 100)
    x = torch.randint(0, 100, (8, 64), generator=torch.Generator().manual_seed(1))

    def run():
        _, loss = model(x, x)
        loss.backward()

    return model, peak_allocated_bytes(run)


def test_grad_checkpoint_cuts_activation_memory_and_keeps_gradients():
    plain, plain_peak = _step(False)
    ckpt, ckpt_peak = _step(True)
    # 6 blocks' saved activations (attention patterns, MLP hidden) vs each block's input alone
    assert ckpt_peak < 0.5 * plain_peak, (plain_peak, ckpt_peak)
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=name)
