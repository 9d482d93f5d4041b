"""Distributed training on CPU with gloo: N ranks give one process's results, resume is exact,
and launch mistakes are one line with exit 2.

Measured tolerances (2 ranks vs 1 process, tiny preset, 20 steps, fp32): losses agree to
~5e-7 absolute (float summation order of the gradient all-reduce), weights to ~2e-6; a 2-rank
run killed with SIGKILL and resumed on 2 ranks is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lmlab.checkpoint import read_meta
from lmlab.cli import main
from lmlab.data.batches import MixtureBatches
from lmlab.data.layout import Rows, Stream
from lmlab.presets import get_preset
from lmlab.runs import RunDir
from lmlab.train import resume, train

SRC = Path(__file__).resolve().parents[1] / "src"
STEPS = 20
LOSS_TOL = dict(rtol=1e-5, atol=1e-5)  # measured ~5e-7
WEIGHT_TOL = dict(rtol=1e-4, atol=2e-5)  # measured ~2e-6
MUON_LOSS_RTOL, MUON_WEIGHT_ATOL = 2e-4, 2e-2  # measured 1.8e-5 and 6.5e-3 (bf16 Newton-Schulz rounding)


def _cfg(**train):
    return get_preset("tiny").replace(train={"max_steps": STEPS, "checkpoint_every": 5, **train},
                                      eval={"every": 10})


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=f"{SRC}{os.pathsep}{env.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    return env


def _torchrun(args: list[str], nproc: int = 2, **popen) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "lmlab", "train", *args]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _losses(run: Path) -> list[float]:
    return [r["loss"] for r in RunDir(run).read_metrics("train")]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def _close(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


# ----------------------------------------------------------------------------- the rows


def _mixture(batch: int, layout_rows: bool) -> MixtureBatches:
    rng = np.random.default_rng(0)
    if layout_rows:
        rows = rng.integers(0, 50, (40, 9)).astype(np.uint16)
        parts = [Rows(rows, np.full(40, 9 - i, dtype=np.int32), np.zeros(40, dtype=np.int32), 40, "pad")
                 for i in range(2)]
    else:
        parts = [Stream(rng.integers(0, 50, 500).astype(np.uint16)) for _ in range(3)]
    return MixtureBatches(parts, [0.5, 0.5] if layout_rows else [0.2, 0.3, 0.5], batch, 8, seed=5)


@pytest.mark.parametrize("layout_rows", [False, True])
def test_a_step_has_the_same_rows_however_it_is_split(layout_rows):
    """1 process x B, 2 ranks x B/2 and 1 process x B/2 with accumulation 2: the same rows per step."""
    whole = _mixture(8, layout_rows).split(1)
    ranks = [_mixture(8, layout_rows).split(1, r, 2) for r in range(2)]
    accum = _mixture(4, layout_rows).split(2)
    for step in (0, 3, 17):
        x, y, m = whole.batch(step)
        by_rank = [b.batch(step) for b in ranks]
        by_micro = [accum.batch(step, micro) for micro in range(2)]
        for parts in (by_rank, by_micro):
            assert torch.equal(torch.cat([p[0] for p in parts]), x)
            assert torch.equal(torch.cat([p[1] for p in parts]), y)
            assert (m is None and parts[0][2] is None) or torch.equal(torch.cat([p[2] for p in parts]), m)
        assert not torch.equal(by_rank[0][0], by_rank[1][0])  # disjoint draws, not copies


def test_split_refuses_a_world_that_does_not_divide_the_batch():
    with pytest.raises(ValueError, match="not divisible"):
        _mixture(6, False).split(1, 0, 4)


# ----------------------------------------------------------------------------- equivalence


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny preset, 20 steps, five ways: 1 process x batch 8, 1 process x 4 with accumulation 2,
    2 DDP ranks x 4 (torchrun), 2 FSDP ranks x 4 (lmlab train --nproc), and a 2-rank DDP run
    killed with SIGKILL after a checkpoint and resumed on 2 ranks."""
    root = tmp_path_factory.mktemp("dist")
    out = {"single": root / "single", "accum": root / "accum", "ddp": root / "ddp", "fsdp": root / "fsdp",
           "killed": root / "killed"}
    train(_cfg(), out["single"])
    train(_cfg(batch_size=4, grad_accum=2), out["accum"])
    _run(_torchrun(["tiny", "--run-dir", str(out["ddp"]), "--train.parallel=ddp", f"--train.max_steps={STEPS}",
                    "--train.checkpoint_every=5", "--eval.every=10"]))
    _run([sys.executable, "-m", "lmlab", "train", "tiny", "--nproc", "2", "--run-dir", str(out["fsdp"]),
          "--train.parallel=fsdp", f"--train.max_steps={STEPS}", "--train.checkpoint_every=5", "--eval.every=10"])
    _kill_and_resume(out["killed"])
    return out


def _kill_and_resume(run: Path) -> None:
    """SIGKILL the whole torchrun group once a checkpoint past step 5 exists, then resume on 2 ranks."""
    cmd = _torchrun(["tiny", "--run-dir", str(run), "--train.parallel=ddp", f"--train.max_steps={STEPS}",
                     "--train.checkpoint_every=5", "--eval.every=10"])
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = RunDir(run).read_metrics("train") if (run / "metrics.jsonl").exists() else []
            if metrics and metrics[-1]["step"] >= 7 and RunDir(run).has_checkpoint():
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    step = RunDir(run).read_metrics("train")[-1]["step"]
    assert 7 <= step < STEPS, f"the run was not killed mid-way (at step {step})"
    _run(_torchrun(["--resume", str(run)]))


@pytest.mark.slow
def test_two_ranks_train_like_one_process(runs):
    single = _losses(runs["single"])
    assert len(single) == STEPS
    for name in ("accum", "ddp", "fsdp"):
        np.testing.assert_allclose(_losses(runs[name]), single, **LOSS_TOL, err_msg=name)
        _close(_weights(runs[name]), _weights(runs["single"]), **WEIGHT_TOL)
    # DDP and FSDP agree with each other as closely as with one process
    _close(_weights(runs["ddp"]), _weights(runs["fsdp"]), **WEIGHT_TOL)
    meta = RunDir(runs["ddp"]).read_metrics("eval")[-1]["val_loss"]
    assert meta == pytest.approx(RunDir(runs["single"]).read_metrics("eval")[-1]["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_a_killed_two_rank_run_resumes_exactly(runs):
    assert _losses(runs["killed"]) == _losses(runs["ddp"])  # no gaps, no duplicates, same values
    a, b = _weights(runs["killed"]), _weights(runs["ddp"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = load_file(str(runs["killed"] / "checkpoints" / "last" / "state.safetensors"))
    assert "rng.cpu.rank1" in state  # rank 1's generator is saved too


@pytest.mark.slow
def test_a_two_rank_run_evaluates_generates_and_resumes_on_one(runs, tmp_path, capsys):
    """FSDP's sharded state, saved full, continues on one process like the one-process run does:
    the world size may change on resume because the rows of a step do not depend on it."""
    import shutil

    copies = {}
    for name in ("fsdp", "single"):
        copies[name] = tmp_path / name
        shutil.copytree(runs[name], copies[name])
        cfg = (copies[name] / "config.toml").read_text()
        (copies[name] / "config.toml").write_text(cfg.replace(f"max_steps = {STEPS}", f"max_steps = {STEPS + 5}"))
    run = copies["fsdp"]
    assert main(["eval", str(run), "--json"]) == 0
    assert main(["generate", str(run), "--max-new-tokens", "5", "--seed", "1"]) == 0
    result = resume(run, {"train.parallel": "none"})
    assert result.steps == STEPS + 5 and 'parallel = "none"' in (run / "config.toml").read_text()
    resume(copies["single"])
    np.testing.assert_allclose(_losses(run), _losses(copies["single"]), **LOSS_TOL)
    _close(_weights(run), _weights(copies["single"]), **WEIGHT_TOL)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def no_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize("argv, message", [
    (["--train.parallel=ddp"], "needs torchrun's environment"),
    (["--train.parallel=fsdp"], "needs torchrun's environment"),
    (["--train.parallel=pipeline"], "train.parallel='pipeline' is not known"),
    (["--nproc", "3"], "not divisible by the world size 3"),
    (["--nproc", "0"], "--nproc=0 is invalid"),
    (["--nproc", "2", "--train.dist_backend=nccl"], "needs CUDA GPUs"),
])
def test_launch_mistakes_are_one_line(argv, message, tmp_path, capsys, no_torchrun):
    if "nccl" in " ".join(argv) and torch.cuda.is_available():
        pytest.fail("this check needs a machine without CUDA (CI runs on CPU)")
    assert main(["train", "tiny", "--run-dir", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmlab: error:") and message in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_nproc_refuses_an_existing_run_before_starting_processes(tmp_path, capsys, no_torchrun):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.toml").write_text("")
    assert main(["train", "tiny", "--nproc", "2", "--run-dir", str(tmp_path / "r")]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_torchrun_with_parallel_none_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "0"), monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1"), monkeypatch.setenv("MASTER_PORT", "29999")
    assert main(["train", "tiny", "--run-dir", str(tmp_path / "r")]) == 2
    assert "train.parallel='none'" in capsys.readouterr().err


def test_resume_may_change_only_how_a_run_executes(tmp_path, capsys, no_torchrun):
    run = tmp_path / "r"
    train(_cfg(max_steps=2), run)
    assert main(["train", "--resume", str(run), "--train.lr=0.1"]) == 2
    assert "only train.parallel, train.dist_backend, train.fsdp_offload" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--train.parallel=ddp"]) == 2  # still needs torchrun
    assert "needs torchrun's environment" in capsys.readouterr().err


@pytest.mark.slow
def test_muon_on_two_ddp_ranks_trains_like_one_process(tmp_path):
    """Muon orthogonalizes the all-reduced gradient on every rank: the ranks stay identical and
    follow the one-process run, up to the bf16 rounding of its Newton-Schulz steps (the
    all-reduce sums in another order, and bf16 can round the ~5e-7 difference either way)."""
    muon = ["--train.optimizer=muon", f"--train.max_steps={STEPS}", "--eval.every=10"]
    train(_cfg(optimizer="muon"), tmp_path / "single")
    _run(_torchrun(["tiny", "--run-dir", str(tmp_path / "ddp"), "--train.parallel=ddp", *muon]))
    single, ddp = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    assert single[-1] < single[0] - 0.5
    np.testing.assert_allclose(ddp, single, rtol=MUON_LOSS_RTOL)
    _close(_weights(tmp_path / "ddp"), _weights(tmp_path / "single"), rtol=0, atol=MUON_WEIGHT_ATOL)


def _pids(needle: str) -> list[int]:
    """Processes whose NUL-separated command line holds `needle` (no pgrep on a bare machine)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:  # ended meanwhile
            pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_nproc_launcher_stops_every_rank_and_saves(sig, tmp_path):
    """`lmlab train --nproc 2` passes SIGTERM and SIGINT on (to torchrun, in a session of its own):
    the ranks save `last` and end, none is left holding the run, and the launcher exits 130 as one
    process does."""
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "lmlab", "train", "tiny", "--nproc", "2", "--run-dir", str(run),
           "--train.max_steps=100000", "--train.checkpoint_every=10", "--eval.every=100000"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mine = f"--run-dir\0{run}\0"  # in the command line of the launcher, torchrun and the ranks
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not RunDir(run).has_checkpoint():
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert len(_pids(mine)) >= 4
        proc.send_signal(sig)  # to the launcher alone, as `kill PID` does
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-3000:]
        assert f"lmlab: stopped: {signal.Signals(sig).name} at step" in err
        time.sleep(0.5)
        assert not _pids(mine), "ranks or torchrun outlived the launcher"
    finally:  # whatever failed, nothing of this run keeps training
        for pid in _pids(mine):
            os.kill(pid, signal.SIGKILL)
    step = RunDir(run).read_metrics("train")[-1]["step"]
    assert read_meta(RunDir(run).checkpoint("last"))["step"] == step  # saved at the step it stopped
