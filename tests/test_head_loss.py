"""The chunked head + cross-entropy, the padded vocabulary and the allocator settings.

Tolerances: in float64 the chunked loss computes its log-softmax in float64 too, so values and
gradients equal F.cross_entropy to 1e-10; under bf16 autocast it must equal the unfused
autocast path (bf16 logits, fp32 cross-entropy) to bf16 rounding of the gradients (2e-3 rel).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from lmlab.alloc import tune_malloc
from lmlab.config import RunConfig
from lmlab.eval import evaluate
from lmlab.generate import GREEDY, Sampling, generate
from lmlab.model import build_model, head_loss
from lmlab.model.config import ModelConfig


def reference(h, w, b, t, mask, V):
    logits = h @ w.t() + (b if b is not None else 0)
    return F.cross_entropy(logits[:, :V][mask], t[mask]) if mask is not None else \
        F.cross_entropy(logits[:, :V], t)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_loss_equals_cross_entropy_values_and_gradients(monkeypatch, bias, masked):
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", 7 * 1024)  # chunks of 7 rows, the last one short
    monkeypatch.setattr(head_loss, "BLOCK_BYTES", 3 * 7 * 1024 * 8)  # blocks of 3 fp64 chunks, the last 7 + 7 + 2
    monkeypatch.setattr(head_loss, "MIN_ROWS", 1)
    monkeypatch.setattr(head_loss, "SLICE_ELEMENTS", 10 * 24)  # the weight gradient's adds in slices of 10 rows, the last 4
    g = torch.Generator().manual_seed(0)
    N, D, V, Vp = 205, 24, 1000, 1024
    h = torch.randn(N, D, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(Vp, D, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(Vp, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    with torch.no_grad():
        w[V:] = 50.0  # pad rows that would dominate every softmax if they were not masked
    t = torch.randint(0, V, (N,), generator=g)
    mask = torch.rand(N, generator=g) > 0.4 if masked else None
    params = [p for p in (h, w, b) if p is not None]
    ref = reference(h, w, b, t, mask, V)
    ref_grads = torch.autograd.grad(2.5 * ref, params)
    out = head_loss.linear_cross_entropy(h, w, b, t, mask, vocab=V)
    grads = torch.autograd.grad(2.5 * out, params)
    assert out.item() == pytest.approx(ref.item(), rel=1e-10)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert grads[1][V:].abs().max() == 0  # pad rows learn nothing


def test_a_batch_with_every_row_masked_has_zero_loss_and_gradient():
    g = torch.Generator().manual_seed(4)
    h = torch.randn(10, 8, generator=g, requires_grad=True)
    w = torch.randn(100, 8, generator=g, requires_grad=True)
    t = torch.randint(0, 100, (10,), generator=g)
    out = head_loss.linear_cross_entropy(h, w, None, t, torch.zeros(10, dtype=torch.bool))
    out.backward()
    assert out.item() == 0 and h.grad.abs().max() == 0 and w.grad.abs().max() == 0
    nats, hits = head_loss.head_scores(h[:0], w, None, t[:0])
    assert nats.shape == hits.shape == (0,)


def test_in_place_row_softmax_is_torch_softmax_bit_for_bit():
    x = torch.randn(37, 5000) * 6
    x[:, 4990:] = float("-inf")  # pad columns
    want = torch.softmax(x, 1)
    got = head_loss.softmax_rows_(x)
    assert got.data_ptr() == x.data_ptr() and torch.equal(got, want)


def test_loss_is_exact_when_the_targets_probability_underflows():
    # a target 300 nats below the best logit: its fp32 probability is 0, the loss must still be ~300
    h = torch.eye(4, 8)
    w = torch.zeros(16, 8)
    w[0, 0], w[1, 1], w[2, 2], w[3, 3] = 300.0, 50.0, -20.0, 0.0
    t = torch.tensor([5, 1, 7, 3])
    w.requires_grad_()
    want = F.cross_entropy(h @ w.t(), t)
    got = head_loss.linear_cross_entropy(h, w, None, t)
    assert torch.isfinite(got) and got.item() == pytest.approx(want.item(), rel=1e-6)
    torch.testing.assert_close(torch.autograd.grad(got, w)[0], torch.autograd.grad(want, w)[0])


def test_masked_rows_are_padded_to_whole_chunks_so_every_batch_allocates_the_same_sizes(monkeypatch):
    """Without this, each batch's number of unmasked rows gave its last chunk a new size, and the heap
    grew step after step (llmini_c at batch 8 x 8: 1.5 -> 3.5 GiB over 12 steps; now flat at 1.7)."""
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", 10 * 1000)  # 10 rows per chunk at V = 1000
    monkeypatch.setattr(head_loss, "MIN_ROWS", 1)
    seen = []
    real = head_loss.LinearCrossEntropy.apply
    monkeypatch.setattr(head_loss.LinearCrossEntropy, "apply", lambda h, *a: seen.append(h.shape[0]) or real(h, *a))
    g = torch.Generator().manual_seed(3)
    h, w = torch.randn(64, 8, generator=g), torch.randn(1000, 8, generator=g)
    t = torch.randint(0, 1000, (64,), generator=g)
    for keep in (33, 47, 5):
        mask = torch.zeros(64, dtype=torch.bool)
        mask[:keep] = True
        out = head_loss.linear_cross_entropy(h, w, None, t, mask)
        assert out.item() == pytest.approx(F.cross_entropy(h[mask] @ w.t(), t[mask]).item(), rel=1e-5)
    assert seen == [40, 50, 5]  # whole chunks of 10 (a single short chunk is left as it is)


def test_chunked_loss_under_bf16_autocast_matches_the_unfused_path(monkeypatch):
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", 64 * 1024)  # chunks of 32 rows
    monkeypatch.setattr(head_loss, "BLOCK_BYTES", 3 * 32 * 2000 * 2)  # blocks of 3 bf16 chunks: 96, 96, 96, 12 rows
    g = torch.Generator().manual_seed(1)
    N, D, V = 300, 64, 2000
    h = torch.randn(N, D, generator=g, requires_grad=True)
    w = (0.05 * torch.randn(V, D, generator=g)).requires_grad_()
    t = torch.randint(0, V, (N,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.cross_entropy((h @ w.t()).float(), t)
        out = head_loss.linear_cross_entropy(h, w, None, t)
    ref_grads, grads = torch.autograd.grad(ref, (h, w)), torch.autograd.grad(out, (h, w))
    assert out.item() == pytest.approx(ref.item(), rel=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-3 * want.abs().max().item())


def test_head_scores_equal_full_logits(monkeypatch):
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", 20 * 3008)  # chunks of 20 rows
    monkeypatch.setattr(head_loss, "BLOCK_BYTES", 2 * 20 * 3008 * 4)  # blocks of 2 fp32 chunks, the last 20 + 10
    monkeypatch.setattr(head_loss, "MIN_ROWS", 1)
    torch.manual_seed(2)
    N, D, V, Vp = 150, 16, 3000, 3008
    h, w, b = torch.randn(N, D), torch.randn(Vp, D), torch.randn(Vp)
    t = torch.randint(0, V, (N,))
    logits = (h @ w.t() + b)[:, :V]
    nats, hits = head_loss.head_scores(h, w, b, t, vocab=V)
    torch.testing.assert_close(nats, F.cross_entropy(logits, t, reduction="none"), rtol=1e-5, atol=1e-5)
    assert torch.equal(hits, logits.argmax(1) == t)


def test_hits_follow_argmax_including_its_tie_rule():
    g = torch.Generator().manual_seed(5)
    V = 40
    w = torch.randint(0, 3, (V, V), generator=g).float()  # integer logits: most row maxima are tied
    h = torch.eye(V).repeat(5, 1)  # row i's logits are w[i % V]
    t = torch.randint(0, V, (5 * V,), generator=g)
    t[:V] = (h[:V] @ w.t()).argmax(1)  # the first maximum: a hit
    t[V:2 * V] = V - 1 - (h[:V] @ w.t()).flip(1).argmax(1)  # the last maximum: a miss where it is tied
    logits = h @ w.t()
    _, hits = head_loss.head_scores(h, w, None, t)
    assert torch.equal(hits, logits.argmax(1) == t)
    assert hits[:V].all() and not hits[V:2 * V].all()  # the tie rule was exercised


def padded_model(V=3000, tie=False, **kw):
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=32, context_len=16, vocab_size=V, tie_embeddings=tie,
                      head_bias=True, **kw)
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():  # make the pad rows win every arg-max and softmax if they were ever used
        model.lm_head.weight[V:] = 3.0
        model.lm_head.bias[V:] = 100.0
    return model


def test_padded_vocabulary_shapes_counts_and_no_pad_ids():
    V = 3000
    model = padded_model(V)
    assert model.config.padded_vocab == 3008 and model.lm_head.weight.shape[0] == 3008
    assert ModelConfig(vocab_size=65).padded_vocab == 65  # small vocabularies are left alone
    assert ModelConfig(vocab_size=50257).padded_vocab == 50304
    assert ModelConfig(vocab_size=50257, vocab_pad=0).padded_vocab == 50257
    unpadded = padded_model(V, vocab_pad=0)
    assert model.num_params() == unpadded.num_params()
    assert model.num_params(embeddings=False) == unpadded.num_params(embeddings=False)
    assert model.flops_per_token() == unpadded.flops_per_token()
    x, y = torch.randint(0, V, (3, 16)), torch.randint(0, V, (3, 16))
    model.eval()
    logits, loss = model(x, y)
    assert logits.shape == (3, 16, V)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item(), rel=1e-6)
    out = generate(model, x[:, :4], 20, Sampling(temperature=2.0), seed=0)
    assert out.max() < V
    assert generate(model, x[:, :4], 20, GREEDY).max() < V
    assert model.next_logits(x).shape == (3, V)


def test_padded_training_loss_equals_unfused_and_pads_stay_masked():
    V = 3000
    model = padded_model(V)
    x, y = torch.randint(0, V, (4, 16)), torch.randint(0, V, (4, 16))
    mask = torch.rand(4, 16) > 0.3
    fused_logits, fused = model.train()(x, y, loss_mask=mask)
    assert fused_logits is None
    fused.backward()
    fused_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.config.fused_loss = False
    logits, loss = model(x, y, loss_mask=mask)
    assert logits.shape == (4, 16, V)
    loss.backward()
    assert fused.item() == pytest.approx(loss.item(), rel=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fused_grads[name], p.grad, rtol=1e-4, atol=1e-6)
    assert model.lm_head.weight.grad[V:].abs().max() == 0 and model.lm_head.bias.grad[V:].abs().max() == 0


def test_eval_metrics_agree_with_full_logits():
    V = 3000
    model = padded_model(V).eval()
    tokens = torch.randint(0, V, (2000,))

    class Tok:  # one byte per token
        def token_byte_lengths(self):
            return [1] * V
    metrics = evaluate(model, tokens, Tok(), 16, 4)
    x = tokens[:-1][: (len(tokens) - 1) // 16 * 16].view(-1, 16)
    y = tokens[1:][: x.numel()].view(-1, 16)
    logits = model(x)[0]
    want = F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert metrics["loss"] == pytest.approx(want, rel=1e-5)
    assert metrics["accuracy"] == pytest.approx((logits.argmax(-1) == y).float().mean().item())


def test_hf_export_drops_padding_with_equal_logits():
    from lmlab.interop import from_hf_model, to_hf_model

    V = 3000
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=32, context_len=16, vocab_size=V)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    hf = to_hf_model(model)
    assert hf.config.vocab_size == V and hf.transformer.wte.weight.shape[0] == V
    x = torch.randint(0, V, (2, 12))
    with torch.no_grad():
        theirs = hf(x).logits
    torch.testing.assert_close(model(x)[0], theirs, rtol=1e-5, atol=1e-5)
    back = from_hf_model(hf)
    assert back.lm_head.weight.shape[0] == 3008
    torch.testing.assert_close(back(x)[0], theirs, rtol=1e-5, atol=1e-5)


def test_seed_preset_trains_with_padded_fused_head():
    """LLmini-C's head at a toy size: GPT-2's vocabulary, padded, one optimizer step."""
    cfg = RunConfig().replace(model={"n_layer": 1, "n_head": 1, "d_model": 16, "context_len": 8,
                                     "vocab_size": 50257})
    model = build_model(cfg.model)
    assert model.lm_head.weight.shape[0] == 50304
    x, y = torch.randint(0, 50257, (2, 8)), torch.randint(0, 50257, (2, 8))
    _, loss = model.train()(x, y)
    loss.backward()
    assert abs(loss.item() - torch.log(torch.tensor(50257.0)).item()) < 0.1
    assert loss.item() == pytest.approx(model.eval()(x, y)[1].item(), rel=1e-6)
    assert model.lm_head.weight.grad[50257:].abs().max() == 0


def test_malloc_tuning_on_glibc_and_the_opt_out():
    state = tune_malloc()
    assert tune_malloc() == state  # once per process
    if sys.platform.startswith("linux") and "glibc" in str(os.confstr("CS_GNU_LIBC_VERSION")).lower():
        assert state["allocator"] == "glibc" and state["tuned"], state
        assert state["mmap_threshold"] > 32 << 20 or state["glibc"] < "2.35"
    code = "from lmlab.alloc import tune_malloc; print(tune_malloc()['tuned'])"
    env = {**os.environ, "LMLAB_MALLOC": "default"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
