"""Faults survived: SIGKILL at chosen moments (inside a checkpoint write, inside the swap, inside
the token-cache write, between steps), SIGTERM/SIGINT (clean stop, exact resume), a file-size
limit while writing (clear error, previous checkpoint intact), NaN steps (skipped or stopped,
never saved), and a second trainer on a running run (refused by the lock).

The kills strike at named fault points (`LMLAB_FAULT=POINT@N[:SIGNAL]`, see lmlab.io.fault_point)
so each test hits the moment it names every time; bench/faults.py adds random ones."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lmlab.errors import TrainingDiverged
from lmlab.runs import RunDir
from lmlab.train import train

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("faults", REPO / "bench" / "faults.py")
faults = importlib.util.module_from_spec(spec)
spec.loader.exec_module(faults)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def ref(work):
    return faults.reference(work)


def recover_in_process(run_dir: Path, cache: Path, monkeypatch) -> None:
    """The user's next command, run in this process (saves a Python start per test)."""
    from lmlab.cli import main

    monkeypatch.setenv("LMLAB_CACHE", str(cache))
    threads = torch.get_num_threads()
    try:
        assert main(faults.recover_argv(run_dir)) == 0
    finally:
        torch.set_num_threads(threads)


def _meta_step(run_dir: Path) -> int:
    return json.loads((run_dir / "checkpoints" / "last" / "meta.json").read_text())["step"]


@pytest.mark.slow
@pytest.mark.parametrize("point,nth", [("checkpoint:tensors", 3), ("checkpoint:swap", 4), ("cache:write", 1),
                                       ("train:step", 17)])  # 3rd save = step 10's best; 4th = its last
def test_sigkill_at_a_fault_point_then_resume_is_bit_identical(work, ref, point, nth, monkeypatch):
    run_dir, cache = work / f"kill-{point.replace(':', '-')}", work / f"cache-{point.replace(':', '-')}"
    assert faults.kill_at(run_dir, cache, point, nth) == -signal.SIGKILL
    if point == "cache:write":
        assert not RunDir(run_dir).has_checkpoint()  # killed before training: plain train again, no --force
        assert [p.name for p in (cache / "tokens").iterdir() if ".tmp" in p.name]  # a half-written entry...
    recover_in_process(run_dir, cache, monkeypatch)
    assert faults.same_weights(ref, run_dir)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    steps = [r["step"] for r in RunDir(run_dir).read_metrics("train")]
    assert steps == list(range(1, 31))  # replayed steps are logged once


@pytest.mark.slow
def test_sigterm_saves_last_then_a_file_size_limit_fails_cleanly_then_resume_is_exact(work, ref, monkeypatch):
    run_dir, cache = work / "term", work / "cache-term"
    done = subprocess.run(faults.train_argv(run_dir), env=faults.env(cache, "train:step@12:SIGTERM"),
                          capture_output=True, text=True)
    assert done.returncode == 130, done.stderr
    assert f"lmlab: stopped: SIGTERM at step 12: saved {run_dir}/checkpoints/last; continue with " \
           f"`lmlab train --resume {run_dir}`" in done.stderr
    assert "Traceback" not in done.stderr and _meta_step(run_dir) == 12

    def limit():  # every file this process writes may grow to 64 KiB; model.safetensors needs ~120
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    full = subprocess.run([sys.executable, "-m", "lmlab", "train", "--resume", str(run_dir)], env=faults.env(cache),
                          capture_output=True, text=True, preexec_fn=limit)
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("lmlab: error: could not write ") and "File too large" in last
    assert f"{run_dir}/checkpoints/last (step 12) is intact" in last and "Traceback" not in full.stderr
    assert _meta_step(run_dir) == 12 and not list((run_dir / "checkpoints").glob(".*"))
    recover_in_process(run_dir, cache, monkeypatch)
    assert faults.same_weights(ref, run_dir)


@pytest.mark.slow
def test_a_second_trainer_is_refused_and_ctrl_c_stops_the_first_cleanly(work, ref):
    run_dir, cache = work / "two", work / "cache-two"
    first = subprocess.Popen(faults.train_argv(run_dir, "--train.max_steps=100000", "--train.checkpoint_every=2"),
                             env=faults.env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # bounds the wait for the first checkpoint; not a timing assertion
        while not RunDir(run_dir).has_checkpoint() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        for argv in (["train", "--resume", str(run_dir)],):  # --force against a lock: tests/test_safety.py
            second = subprocess.run([sys.executable, "-m", "lmlab", *argv], env=faults.env(cache),
                                    capture_output=True, text=True)
            assert second.returncode == 2
            assert second.stderr == (f"lmlab: error: run directory {run_dir} is in use by pid {first.pid} (it holds "
                                     f"{run_dir}/.lmlab-lock); wait for it to finish or stop it first\n")
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err
    step = _meta_step(run_dir)
    assert f"lmlab: stopped: SIGINT at step {step}: saved" in err and "Traceback" not in err
    assert step == max(r["step"] for r in RunDir(run_dir).read_metrics("train"))


@pytest.mark.slow
def test_a_full_disk_while_writing_the_token_cache_only_warns(work):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-m", "lmlab", "prepare", "tiny"], env=faults.env(work / "cache-full"),
                          capture_output=True, text=True, preexec_fn=limit)
    assert done.returncode == 0, done.stderr
    assert "lmlab: warning: could not write the token cache" in done.stderr and "continuing without it" in done.stderr
    assert not list((work / "cache-full" / "tokens").glob("*"))  # nothing half-written left behind


def test_nonfinite_steps_are_skipped_up_to_the_limit_and_never_saved(tmp_path, tiny_cfg, capsys):
    cfg = tiny_cfg.replace(train={"max_steps": 6, "debug_nan_at_step": 3, "skip_nonfinite": 1},
                           eval={"every": 3, "max_tokens": 256})
    result = train(cfg, tmp_path / "skip")
    assert result.steps == 6
    skips = RunDir(tmp_path / "skip").read_metrics("skip")
    assert [(r["step"], r["loss"]) for r in skips] == [(3, "nan")]
    assert "step 3: loss nan, grad norm nan; skipped it without an update (1 of train.skip_nonfinite=1)" \
        in capsys.readouterr().err
    from safetensors.torch import load_file

    for which in ("last", "best"):
        tensors = load_file(str(tmp_path / "skip" / "checkpoints" / which / "model.safetensors"))
        assert all(bool(torch.isfinite(t).all()) for t in tensors.values())
    with pytest.raises(TrainingDiverged, match="loss is nan at step 3; .*no checkpoint had been saved yet"):
        train(cfg.replace(train={"skip_nonfinite": 0}), tmp_path / "stop")


def test_a_nonfinite_model_is_never_saved(tmp_path, tiny_cfg):
    from lmlab.train.job import new_job
    from lmlab.train.loop import save

    job = new_job(tiny_cfg.replace(train={"max_steps": 2}), tmp_path / "run")
    try:
        with torch.no_grad():
            next(job.model.parameters())[0] = float("inf")
        with pytest.raises(TrainingDiverged, match="the weights hold NaN or inf at step 0; not saving them"):
            save(job, "last", {})
        assert not RunDir(tmp_path / "run").has_checkpoint()
    finally:
        job.run.unlock()


def test_fault_points_do_nothing_unless_asked(monkeypatch):
    from lmlab.io import fault_point

    monkeypatch.delenv("LMLAB_FAULT", raising=False)
    fault_point("checkpoint:swap")
    monkeypatch.setenv("LMLAB_FAULT", "checkpoint:swap@2:SIGUSR1")
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    try:
        fault_point("checkpoint:tensors")
        fault_point("checkpoint:swap")
        assert got == []
        fault_point("checkpoint:swap")
        assert got == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert os.environ["LMLAB_FAULT"]
