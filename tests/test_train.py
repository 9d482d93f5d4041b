import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lmlab.checkpoint import find_checkpoint, save_checkpoint
from lmlab.config import TrainConfig
from lmlab.errors import TrainingDiverged
from lmlab.model import ModelConfig, build_model
from lmlab.runs import RunDir
from lmlab.train import resume, train
from lmlab.train.optim import make_optimizer, param_groups
from lmlab.train.schedule import lr_at

GOLDEN = Path(__file__).parent / "golden" / "tiny_losses.json"


def test_cosine_schedule_by_hand():
    cfg = TrainConfig(lr=1e-3, min_lr_ratio=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-3 * 1 / 11)
    assert lr_at(9, cfg) == pytest.approx(1e-3 * 10 / 11)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))  # half way: cos(pi/2) = 0
    assert lr_at(35, cfg) == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 0.25)) * 9e-4)
    assert lr_at(110, cfg) == pytest.approx(1e-4)
    assert lr_at(500, cfg) == pytest.approx(1e-4)


def test_constant_schedule_and_decay_steps():
    cfg = TrainConfig(lr=2e-3, schedule="constant", warmup_steps=4, max_steps=100)
    assert [lr_at(s, cfg) for s in (0, 3, 4, 99)] == pytest.approx([4e-4, 1.6e-3, 2e-3, 2e-3])
    cosine = TrainConfig(lr=1e-3, warmup_steps=0, decay_steps=50, max_steps=100)
    assert lr_at(50, cosine) == pytest.approx(1e-4) and lr_at(80, cosine) == pytest.approx(1e-4)


def test_adamw_groups_decay_only_linear_matrices():
    model = build_model(ModelConfig(n_layer=2, n_head=2, d_model=16, context_len=8), 30)
    decay, no_decay = param_groups(model, 0.1)
    decay_ids = {id(p) for p in decay["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {names[i] for i in decay_ids} == {f"blocks.{i}.{m}.weight" for i in range(2)
                                             for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")}
    assert id(model.tok_emb.weight) not in decay_ids  # embeddings (and the tied head) not decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    opt = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.99)


def test_golden_losses_of_tiny_preset(tmp_path, tiny_cfg):
    """The first 20 steps of `tiny` (fp32, seed 1337). If a change moves them on purpose, rerun
    with LMLAB_UPDATE_GOLDEN=1 and say so in the commit message."""
    cfg = tiny_cfg.replace(train={"max_steps": 20}, eval={"every": 20})
    train(cfg, tmp_path / "run")
    losses = [r["loss"] for r in RunDir(tmp_path / "run").read_metrics("train")]
    assert len(losses) == 20
    assert abs(losses[0] - math.log(107)) < 0.1  # 105 characters + <unk> + <|endoftext|>
    if os.environ.get("LMLAB_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"preset": "tiny", "steps": 20, "losses": losses}, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())["losses"]
    assert losses == pytest.approx(golden, abs=2e-4)


def test_training_reduces_loss_and_writes_the_run_dir(tmp_path, tiny_cfg):
    result = train(tiny_cfg.replace(train={"max_steps": 60}), tmp_path / "run")
    run = RunDir(tmp_path / "run")
    assert run.config.is_file() and (run.tokenizer / "tokenizer.json").is_file()
    assert find_checkpoint(run.checkpoint("last")) and find_checkpoint(run.checkpoint("best"))
    train_records, evals = run.read_metrics("train"), run.read_metrics("eval")
    assert [r["step"] for r in evals] == [20, 40, 60]
    assert evals[-1]["val_loss"] < math.log(107) - 1.0
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "peak_mem_mb"):
        assert key in train_records[-1]
    for key in ("val_loss", "val_perplexity", "val_accuracy", "val_bits_per_byte", "val_bits_per_char"):
        assert key in evals[-1]
    assert result.metrics["loss"] == evals[-1]["val_loss"]


def test_early_stopping(tmp_path, tiny_cfg):
    # A learning rate of 1.0 makes val loss worse after the first evaluations: stop after 2 bad ones.
    cfg = tiny_cfg.replace(train={"max_steps": 400, "lr": 1.0, "min_lr_ratio": 1.0, "warmup_steps": 0,
                                  "grad_clip": 0.0, "patience": 2}, eval={"every": 5})
    try:
        result = train(cfg, tmp_path / "run")
    except TrainingDiverged:
        pytest.fail("lr=1.0 should worsen the model without producing NaN in 400 steps")
    assert result.stopped_early and result.steps < 400


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(train={"max_steps": 40, "debug_nan_at_step": 26}, eval={"every": 10})
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 26; .*step 20\) is the last good state"):
        train(cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run/checkpoints/last/meta.json").read_text())
    assert meta["step"] == 20


def test_interrupted_checkpoint_swap_falls_back_to_previous(tmp_path):
    model = build_model(ModelConfig(n_layer=1, n_head=1, d_model=8, context_len=4), 10)
    save_checkpoint(tmp_path / "last", model, None, {"step": 1})
    (tmp_path / "last").rename(tmp_path / ".last.old")  # killed between the two renames
    assert find_checkpoint(tmp_path / "last") == tmp_path / ".last.old"


def _cli(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lmlab", "train", "tiny", "--run-dir", str(run_dir), "--train.max_steps=300",
            "--train.batch_size=32", "--model.dropout=0.1", "--eval.every=25", "--eval.max_tokens=2048", *extra]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cli(full), check=True, capture_output=True)
    proc = subprocess.Popen(_cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = killed / "checkpoints" / "last" / "meta.json"
    deadline = time.monotonic() + 120  # a bound on the polling loop, not a timing assertion
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["step"] >= 100:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    step_at_kill = json.loads(meta.read_text())["step"]
    assert 100 <= step_at_kill < 300
    result = resume(killed)
    assert result.steps == 300
    a, b = _weights(full), _weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [RunDir(d).read_metrics("train") for d in (full, killed)]
    assert [r["loss"] for r in losses[0]] == [r["loss"] for r in losses[1]]  # resumed log has no duplicates
    assert RunDir(full).read_metrics("eval")[-1]["val_loss"] == RunDir(killed).read_metrics("eval")[-1]["val_loss"]


def test_grad_accumulation_equals_one_big_batch():
    from lmlab.data import random_windows
    from lmlab.device import Precision
    from lmlab.train.step import train_step

    cfg = ModelConfig(n_layer=1, n_head=2, d_model=16, context_len=8)
    tokens = torch.randint(0, 30, (500,))
    batches = random_windows(tokens, 8, 8, seed=3).split(2)  # one step = 2 micro-batches of 4 rows
    models = [build_model(cfg, 30) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in models]
    cpu = torch.device("cpu")
    out = train_step(models[0], opts[0], batches, 7, Precision("fp32", cpu), cpu, grad_clip=1.0)
    loss, norm = out.loss, out.grad_norm
    (x0, y0, _), (x1, y1, _) = batches.batch(7, 0), batches.batch(7, 1)
    _, big_loss = models[1](torch.cat([x0, x1]), torch.cat([y0, y1]))
    big_loss.backward()
    big_norm = torch.nn.utils.clip_grad_norm_(models[1].parameters(), 1.0)
    opts[1].step()
    assert loss == pytest.approx(big_loss.item(), rel=1e-5) and norm == pytest.approx(big_norm.item(), rel=1e-4)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_bf16_autocast_trains_on_cpu(tmp_path, tiny_cfg):
    result = train(tiny_cfg.replace(train={"max_steps": 20, "precision": "bf16"}), tmp_path / "run")
    losses = [r["loss"] for r in RunDir(tmp_path / "run").read_metrics("train")]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0] - 0.5
    assert math.isfinite(result.metrics["loss"])


def test_fp16_needs_cuda_and_auto_device_resolves():
    from lmlab.errors import UserError
    from lmlab.device import resolve_device, resolve_precision

    with pytest.raises(UserError, match="train.precision='fp16' needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")


def test_far_initial_loss_is_warned_about(tmp_path, tiny_cfg, capsys):
    # PyTorch's default N(0, 1) embeddings with a tied head give huge initial logits.
    train(tiny_cfg.replace(model={"init": "torch"}, train={"max_steps": 2}, eval={"every": 2}), tmp_path / "a")
    assert "warning: initial loss" in capsys.readouterr().err
    train(tiny_cfg.replace(train={"max_steps": 2}, eval={"every": 2}), tmp_path / "b")
    assert "warning: initial loss" not in capsys.readouterr().err
