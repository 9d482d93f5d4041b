"""A run's plan without training (`lmlab train --dry-run`, `lmlab study --dry-run`): the length it
predicts is the length the run trains, memory that does not fit is refused, nothing is written,
and every named study's cpu size builds and steps (a dry-run catches a config that cannot train)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lmlab.train.memory as memory
from lmlab.config import apply_overrides
from lmlab.errors import UserError
from lmlab.presets import get_preset
from lmlab.study.expand import plan
from lmlab.study.seeds import STUDIES, get_study
from lmlab.train import train
from lmlab.train.plan import estimate_run

EPOCHS = {"train.epochs": "2", "train.batch_size": "8", "model.context_len": "32",
          "eval.every": "1000", "eval.max_tokens": "512"}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lmlab", *args], capture_output=True, text=True, cwd=cwd)


def test_the_plan_of_an_epoch_budget_is_what_the_run_trains(tmp_path, shakespeare):
    text = tmp_path / "part.txt"  # 40 KB: two epochs of the whole built-in corpus took a minute
    text.write_text(shakespeare.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    cfg = apply_overrides(get_preset("tiny"), {**EPOCHS, "data.source": "text", "data.path": str(text)})
    est = estimate_run(cfg, threads=1)
    result = train(cfg.replace(train={"progress": False}), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    trained_tokens = max(r["tokens"] for r in records if r.get("kind") == "epoch")
    assert est.steps == result.steps and est.tokens == trained_tokens
    assert est.seconds_per_step > 0 and est.seconds_per_eval > 0 and est.seconds > est.steps * est.seconds_per_step
    assert est.params == result_params(tmp_path / "run") and est.fits
    assert est.measured_peak_bytes > est.memory_parts["weights"] + est.memory_parts["optimizer"]


def result_params(run_dir) -> int:
    return json.loads((run_dir / "model.json").read_text())["params"]


def test_a_time_budget_caps_the_planned_steps():
    cfg = apply_overrides(get_preset("tiny"), {"train.max_steps": "100000", "train.max_time": "1"})
    est = estimate_run(cfg, threads=1)
    assert est.steps < 100000 and est.steps * est.seconds_per_step == pytest.approx(1, rel=0.5, abs=0.05)


def test_train_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    r = _cli("train", "tiny", "--dry-run", "--train.max_steps=7", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "7 steps, 1,792 tokens" in r.stdout and "predicted peak memory" in r.stdout
    assert "ms/step" in r.stdout and "nothing was trained" in r.stdout
    assert not (tmp_path / "runs").exists()


def test_a_run_that_would_not_fit_is_refused_by_the_dry_run(monkeypatch):
    from lmlab.commands.train import dry_run

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    args = type("A", (), {"config": "tiny", "data": None, "resume": None, "nproc": None})()
    with pytest.raises(UserError, match="needs about .* GiB at its peak but 0.0 GiB are available"):
        dry_run(args, {"train.max_steps": "3"})


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_named_study_builds_and_steps_at_cpu_size(name):
    """Data, model and one optimizer step of every variant: a cut that cannot train fails here."""
    seen = set()
    for run in plan(get_study(name, "cpu")):
        if run.variant.slug in seen:
            continue
        seen.add(run.variant.slug)
        est = estimate_run(run.cfg, threads=1, measure_steps=0)
        assert est.steps > 0 and est.tokens > 0 and est.fits, run.variant.slug
