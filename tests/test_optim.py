"""train.optimizer: Muon on the hidden matrices with AdamW on the rest, against torch's own
optimizers run separately; one schedule for both; checkpoints and exact resume."""

import re

import pytest
import torch

from lmlab.checkpoint import optimizer_state_dict, optimizer_tensors
from lmlab.config import TrainConfig
from lmlab.cpu import cpu_info
from lmlab.errors import UserError
from lmlab.model import ModelConfig, build_model
from lmlab.runs import RunDir
from lmlab.train import resume, train
from lmlab import device as precision
from lmlab.train.muon import newton_schulz
from lmlab.train.optim import OptimizerChain, make_optimizer
from lmlab.train.step import set_lr
from interrupt import same_final_weights, train_interrupted

MUON = TrainConfig(optimizer="muon", lr=3e-3, muon_lr=0.02, weight_decay=0.1)


def _model(tie: bool = True):
    torch.manual_seed(0)
    return build_model(ModelConfig(n_layer=2, n_head=2, d_model=16, context_len=8, tie_embeddings=tie), 30)


def _names(model, params) -> set[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for p in params}


def _loss(model, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 30, (4, 8), generator=g)
    return model(x, torch.roll(x, -1, 1))[1]


@pytest.mark.parametrize("tie", [True, False])
def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(tie):
    model = _model(tie)
    opt = make_optimizer(model, MUON, torch.device("cpu"))
    assert isinstance(opt, OptimizerChain)
    muon, adam = opt.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, torch.optim.AdamW)
    hidden = {f"blocks.{i}.{m}.weight" for i in range(2) for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")}
    assert _names(model, muon.param_groups[0]["params"]) == hidden
    rest = _names(model, adam.param_groups[0]["params"])
    assert "tok_emb.weight" in rest and ("lm_head.weight" in rest) == (not tie)  # the head is never Muon's
    assert len(hidden) + len(rest) == len(list(model.parameters()))  # every parameter exactly once
    assert muon.param_groups[0]["weight_decay"] == 0.1 and adam.param_groups[0]["weight_decay"] == 0.0


def test_the_chain_steps_like_torchs_muon_and_adamw_run_apart_and_follows_the_schedule(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # torch's Muon orthogonalizes in bf16
    model, ref = _model(False), _model(False)
    opt = make_optimizer(model, TrainConfig(**{**MUON.to_dict(), "precision": "bf16"}), torch.device("cpu"))
    by_name = dict(ref.named_parameters())
    hidden_names = _names(model, opt.optimizers[0].param_groups[0]["params"])
    hidden = [p for n, p in ref.named_parameters() if n in hidden_names]
    rest = [p for n, p in ref.named_parameters() if n not in hidden_names]
    ref_muon = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True,
                                adjust_lr_fn="original")
    ref_adam = torch.optim.AdamW(rest, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, fused=True)
    for step, scale in enumerate((1.0, 0.5, 0.25)):
        set_lr(opt, 3e-3 * scale)  # the scheduled lr; Muon's group keeps its ratio muon_lr / lr
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.02 * scale, 3e-3 * scale])
        for group in ref_muon.param_groups:
            group["lr"] = 0.02 * scale
        for group in ref_adam.param_groups:
            group["lr"] = 3e-3 * scale
        for m in (model, ref):
            _loss(m, step).backward()
        opt.step()
        ref_muon.step()
        ref_adam.step()
        opt.zero_grad()
        ref.zero_grad()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, by_name[name], rtol=0, atol=1e-6, msg=name)


def test_a_muon_update_is_orthogonalized_momentum():
    """One step by hand: update = NS5(g + 0.95 g) scaled by sqrt(max(1, rows/cols)), decay first."""
    w = torch.nn.Parameter(torch.randn(8, 16))
    w0 = w.detach().clone()
    w.grad = torch.randn(8, 16)
    torch.optim.Muon([w], lr=0.1, weight_decay=0.0, momentum=0.95, nesterov=True).step()
    update = (w0 - w.detach()) / 0.1
    s = torch.linalg.svdvals(update)
    assert s.min() > 0.5 and s.max() < 1.5  # the quintic iteration leaves singular values near 1
    u, _, vh = torch.linalg.svd(w.grad * 1.95, full_matrices=False)
    assert torch.nn.functional.cosine_similarity(update.flatten(), (u @ vh).flatten(), dim=0) > 0.95


def test_a_chain_state_round_trips_through_the_checkpoint_format():
    model = _model(False)
    opt = make_optimizer(model, MUON, torch.device("cpu"))
    for step in range(2):
        _loss(model, step).backward()
        opt.step()
        opt.zero_grad()
    tensors, meta = optimizer_tensors(opt)
    assert any(k.endswith(".momentum_buffer") for k in tensors) and any(k.endswith(".exp_avg") for k in tensors)
    twin = _model(False)
    twin.load_state_dict(model.state_dict())
    copy = make_optimizer(twin, MUON, torch.device("cpu"))
    copy.load_state_dict(optimizer_state_dict({k: v.clone() for k, v in tensors.items()}, meta))  # as if read back
    for m, o in ((model, opt), (twin, copy)):
        _loss(m, 7).backward()
        o.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="1 parameter groups, this one 2"):  # e.g. an adamw run's state
        copy.load_state_dict({"state": {}, "param_groups": meta["param_groups"][:1]})


def test_muon_refuses_fsdp_in_one_line():
    with pytest.raises(UserError, match="train.optimizer='muon' is invalid; expected adamw with train.parallel=fsdp"):
        TrainConfig(optimizer="muon", parallel="fsdp")


def test_a_muon_run_trains_and_resumes_bit_identically(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(train={"optimizer": "muon", "max_steps": 12, "muon_lr": 0.02}, eval={"every": 4})
    full = train(cfg, tmp_path / "full")
    first = [r["loss"] for r in RunDir(tmp_path / "full").read_metrics("train")]
    assert first[-1] < first[0] - 0.5
    train_interrupted(cfg, tmp_path / "cut", 6)  # after the checkpoint at step 4
    assert resume(tmp_path / "cut").steps == full.steps
    assert same_final_weights(tmp_path / "full", tmp_path / "cut")


def test_the_memory_prediction_counts_what_each_optimizer_keeps():
    from lmlab.train.memory import predict_peak

    model = _model(False)
    n = sum(p.numel() for p in model.parameters())
    hidden = sum(p.numel() for n_, p in model.named_parameters() if n_.startswith("blocks.") and p.dim() == 2)
    adam = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    muon = make_optimizer(model, MUON, torch.device("cpu"))
    assert predict_peak(model, 4, 4, adam)["optimizer"] == predict_peak(model, 4, 4)["optimizer"] == 12 * n
    assert predict_peak(model, 4, 4, muon)["optimizer"] == 4 * hidden + 12 * (n - hidden)


def test_the_start_line_names_each_optimizer_and_what_it_updates(tmp_path, tiny_cfg, capsys):
    from lmlab.cli import main

    main(["train", "tiny", "--run-dir", str(tmp_path / "run"), "--train.max_steps=2", "--train.optimizer=muon",
          "--train.progress=true"])
    err = capsys.readouterr().err
    line = err.splitlines()[0]
    model = build_model(ModelConfig(**{**tiny_cfg.model.to_dict(), "vocab_size": 0}), 107)
    hidden = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2)
    assert f"(fp32, Muon: {hidden / 1e6:.3f}M parameters in 8 tensors + AdamW: " in line
    assert f"fp32 on {cpu_info().describe()}" in line  # the MFU's peak: which CPU, features and precision
    assert re.search(r"MFU (unknown|[\d.]+%) \(fp32\)", err)  # the progress line


def test_muon_on_a_model_without_hidden_matrices_is_adamw():
    bigram = build_model(ModelConfig(arch="bigram"), 30)  # one V x V table
    assert isinstance(make_optimizer(bigram, MUON, torch.device("cpu")), torch.optim.AdamW)
    counted = build_model(ModelConfig(arch="count_bigram"), 30)  # nothing to train
    assert isinstance(make_optimizer(counted, MUON, torch.device("cpu")), torch.optim.AdamW)


@pytest.mark.parametrize("shape", [(48, 160), (160, 48)])
def test_newton_schulz_in_bf16_is_torchs_and_in_fp32_agrees_with_it(shape):
    from torch.optim._muon import _zeropower_via_newtonschulz

    g = torch.randn(*shape)
    bf16 = newton_schulz(g, torch.bfloat16)
    assert torch.equal(bf16, _zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7))
    fp32 = newton_schulz(g, torch.float32)
    assert fp32.dtype == torch.float32 and fp32.shape == g.shape
    assert (fp32 - bf16.float()).norm() / fp32.norm() < 0.02  # bf16 keeps 8 bits: ~1% after five steps
    s = torch.linalg.svdvals(fp32)
    assert s.min() > 0.6 and s.max() < 1.3  # the quintic's band around 1, as in bf16
    g0 = g.clone()
    newton_schulz(g, torch.float32)
    assert torch.equal(g, g0)  # the input (a momentum buffer without Nesterov) is never written


@pytest.mark.parametrize("wanted, native, ns_dtype", [
    ("bf16", True, torch.bfloat16), ("bf16", False, torch.float32), ("fp32", True, torch.float32),
    ("auto", False, torch.float32), ("auto", True, torch.bfloat16)])
def test_muon_orthogonalizes_in_bf16_only_in_a_bf16_run_with_native_bf16(monkeypatch, wanted, native, ns_dtype):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    cfg = TrainConfig(**{**MUON.to_dict(), "precision": wanted})
    muon = make_optimizer(_model(), cfg, torch.device("cpu")).optimizers[0]
    assert muon.ns_dtype == ns_dtype


def test_a_muon_step_in_fp32_is_close_to_one_in_bf16():
    models = [_model(), _model()]
    opts = [make_optimizer(m, MUON, torch.device("cpu")) for m in models]
    for opt, dtype in zip(opts, (torch.float32, torch.bfloat16)):
        opt.optimizers[0].ns_dtype = dtype
    for m, opt in zip(models, opts):
        _loss(m, 0).backward()
        opt.step()
    w0 = _model().blocks[0].mlp.fc.weight.detach()
    steps = [m.blocks[0].mlp.fc.weight.detach() - w0 for m in models]
    # a gradient's small singular directions are where bf16's rounding, amplified ~480x by five steps, shows
    assert torch.nn.functional.cosine_similarity(steps[0].flatten(), steps[1].flatten(), dim=0) > 0.99
