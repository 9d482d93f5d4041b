"""Studies: expansion, statistics against scipy and by hand, the power-law fit, resumable and
failure-isolated execution (in-process, local processes and Ray), the CLI end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

import lmlab.train.loop as loop
from lmlab.errors import UserError
from lmlab.study.expand import plan, variants, with_settings
from lmlab.study.seeds import STUDIES, get_study
from lmlab.study.results import aggregate
from lmlab.study.runner import run_study
from lmlab.study.scaling import fit_power_law, power_law
from lmlab.study.spec import Study, load_study
from lmlab.study.stats import compare, summarize

FAST = {"train.max_steps": 6, "eval.every": 3, "eval.max_tokens": 512, "train.checkpoint_every": 2,
        "model.n_layer": 1, "model.d_model": 16, "model.context_len": 16}


def test_command_line_settings_hold_for_every_run_or_are_refused_when_the_study_varies_them():
    stages = {k: {"base": f"ladder_{k}", "train.max_steps": 300} for k in ("02", "06")}
    ladder = with_settings(Study("ladder", "ladder_02", variants=stages), {"train.max_steps": 10,
                                                                           "train.grad_clip": 0.5})
    assert {r.cfg.train.max_steps for r in plan(ladder)} == {10}  # each stage's own 300 is replaced too
    assert {r.cfg.train.grad_clip for r in plan(ladder)} == {0.5}
    with pytest.raises(UserError, match=r"--train.lr: study ladder varies it \(02: 0.001, 06: 0.0003\)"):
        with_settings(Study("ladder", "ladder_02", variants=stages), {"train.lr": 1e-3})  # the presets differ
    epochs = with_settings(Study("e", "tiny", grid={"train.lr": [1e-3, 2e-3]}, budget={"train.epochs": 3}),
                           {"train.max_steps": 7, "eval.every": 3})
    assert {(r.cfg.train.max_steps, r.cfg.train.epochs, r.cfg.eval.every) for r in plan(epochs)} == {(7, 0, 3)}
    with pytest.raises(UserError, match=r"--train.max_steps: study mytnano varies it \(01_bigram: "):
        with_settings(get_study("mytnano", "cpu"), {"train.max_steps": 10})  # its stages' budgets differ
    with pytest.raises(UserError, match=r"varies it \(lr0.001: 0.001, lr0.003: 0.003\)"):
        with_settings(_study(), {"train.lr": 5e-4})
    study = Study("v", "tiny", variants={"a": {"train.lr": 1e-3}, "b": {"train.lr": 2e-3}})
    with pytest.raises(UserError, match=r"varies it \(a: 0.001, b: 0.002\)"):
        with_settings(study, {"train.lr": 5e-4})


def test_sweeps_and_studies_take_data_as_train_does(tmp_path, monkeypatch):
    from lmlab.study.commands import with_data

    monkeypatch.chdir(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "c.txt").write_text("to be or not to be\n" * 50)
    (tmp_path / "root" / "d.txt").write_text("that is the question\n" * 50)
    here = with_data(Study("s", "tiny", grid={"model.n_layer": [1, 2]}), "c.txt", {})
    assert here.data == str(tmp_path / "c.txt")  # absolute: study.toml is read again from anywhere
    assert {(r.cfg.data.source, r.cfg.data.path, len(r.cfg.data.sources)) for r in plan(here)} == \
        {("text", str(tmp_path / "c.txt"), 0)}
    under_root = with_data(get_study("mytnano", "cpu"), "d.txt", {"data.root": str(tmp_path / "root")})
    assert {r.cfg.data.path for r in plan(under_root)} == {str(tmp_path / "root" / "d.txt")}  # stages' presets too
    (tmp_path / "s.toml").write_text(here.to_toml())
    assert load_study(tmp_path / "s.toml").data == here.data


def test_study_fields_of_the_wrong_type_are_refused_not_converted():
    for fields, message in (({"seeds": "abc"}, "seeds = 'abc'"), ({"seeds": [0, "x"]}, "seeds = \\[0, 'x'\\]"),
                            ({"base": 3}, "base = 3"), ({"grid": "x"}, "grid = 'x'"),
                            ({"variants": {"x": 1}}, "variant x = 1"), ({"baseline": "nope"}, "baseline 'nope'")):
        with pytest.raises(UserError, match=message):
            plan(Study(**{"name": "t", "base": "tiny", "grid": {"train.lr": [1e-3, 2e-3]}, **fields}))


def test_grid_zip_variants_and_seeds_expand_to_readable_slugs():
    s = Study("s", "tiny", grid={"model.n_layer": [1, 2], "train.lr": [1e-3, 3e-3]}, seeds=3)
    assert [v.slug for v in variants(s)] == ["n_layer1-lr0.001", "n_layer1-lr0.003", "n_layer2-lr0.001",
                                             "n_layer2-lr0.003"]
    runs = plan(s)
    assert len(runs) == 12 and runs[0].name == "n_layer1-lr0.001-s0" and runs[2].cfg.train.seed == 2
    assert runs[5].cfg.model.n_layer == 1 and runs[5].cfg.train.lr == 3e-3
    z = Study("z", "tiny", zip={"model.d_model": [16, 32, 64], "model.n_head": [1, 2, 4]}, seeds=[7, 9])
    assert [r.name for r in plan(z)][:3] == ["d_model16-n_head1-s7", "d_model16-n_head1-s9", "d_model32-n_head2-s7"]
    assert len(plan(z)) == 6
    v = Study("v", "tiny", variants={"pre": {}, "post": {"model.norm_position": "post"}}, grid={"train.lr": [1, 2]})
    assert [x.slug for x in variants(v)] == ["pre-lr1", "pre-lr2", "post-lr1", "post-lr2"]
    assert plan(v)[2].cfg.model.norm_position == "post"
    ladder = get_study("ladder", "cpu")  # the earlier name of mytnano
    assert ladder.name == "mytnano" and len(ladder.seeds) >= 3
    assert [x.slug for x in variants(ladder)][:3] == ["01_bigram", "01_mlp", "01_wavenet"]


def test_planning_many_seeds_builds_each_variant_once_and_refuses_absurd_studies(monkeypatch):
    """--seeds 1000000 printed nothing for minutes: every run's config and model were built, and the
    worker count built every run's model again."""
    import lmlab.model as model
    import lmlab.study.expand as expand
    from lmlab.study.estimate import worker_layout
    from lmlab.study.expand import variant_config

    built = []
    real = model.build_model
    monkeypatch.setattr(expand, "build_model", lambda *a, **k: built.append(1) or real(*a, **k))
    monkeypatch.setattr(expand, "_STATS", {})
    s = Study("many", "tiny", grid={"model.n_layer": [1, 2], "train.lr": [1e-3, 2e-3]}, seeds=500)
    runs = plan(s)
    worker_layout(runs, "auto")
    assert len(runs) == 2000 and len(built) == 2  # one model per distinct model config
    for r in (runs[0], runs[1], runs[777], runs[-1]):
        assert r.cfg == variant_config(s, r.variant, r.seed)
    with pytest.raises(UserError, match="2 variants x 1,000,000 seeds = 2,000,000 runs; at most 10,000 runs"):
        plan(Study("huge", "tiny", grid={"model.n_layer": [1, 2]}, seeds=1_000_000))


@pytest.mark.parametrize("kwargs, match", [
    ({"zip": {"model.d_model": [16, 32], "model.n_head": [1]}}, "unequal lengths"),
    ({"grid": {"model.n_layer": []}}, "empty"),
    ({"seeds": 0}, "seeds"),
])
def test_bad_study_shapes_are_refused(kwargs, match):
    with pytest.raises(UserError, match=match):
        Study("bad", "tiny", **kwargs)


def test_a_bad_variant_is_named_before_anything_runs():
    with pytest.raises(UserError, match="variant n_layer1-mlpnonsense.*nonsense"):
        plan(Study("b", "tiny", grid={"model.n_layer": [1], "model.mlp": ["gelu", "nonsense"]}))
    with pytest.raises(UserError, match="variant wrong.*n_hedd"):
        plan(Study("b", "tiny", variants={"ok": {}, "wrong": {"model.n_hedd": 2}}))
    with pytest.raises(UserError, match="variant n_head3"):
        plan(Study("b", "tiny", grid={"model.n_head": [2, 3]}))  # d_model 32 % 3 != 0


def test_every_named_study_expands_at_both_sizes():
    for name in STUDIES:
        for size in ("cpu", "full"):
            s = get_study(name, size)
            runs = plan(s)
            assert runs and (size == "full" or len(s.seeds) >= 3)


def test_summary_and_comparisons_match_hand_computation_and_scipy():
    x = [3.0, 3.2, 3.1, 3.5]
    s = summarize(x)
    half = sps.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert s.mean == pytest.approx(3.2) and s.ci_high - s.mean == pytest.approx(half)
    one = summarize([3.0])  # one seed: a mean, but no spread, interval or noise floor
    assert one.n == 1 and one.mean == 3.0 and all(math.isnan(v) for v in (one.std, one.ci_low, one.ci_high))
    base = {0: 3.00, 1: 3.10, 2: 3.05}
    other = {0: 2.80, 1: 2.95, 2: 2.82}
    c = compare(base, other)
    d = np.array([other[k] - base[k] for k in base])
    assert c.test == "paired t" and c.diff == pytest.approx(d.mean())
    assert c.p_value == pytest.approx(sps.ttest_rel(list(other.values()), list(base.values())).pvalue)
    assert c.ci_high - c.diff == pytest.approx(sps.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3))
    assert c.noise_floor == pytest.approx(np.std(list(base.values()), ddof=1)) and c.verdict == "better"
    w = compare(base, {5: 2.8, 6: 2.9, 7: 2.85, 8: 2.7})  # different seeds: Welch
    assert w.test == "welch t"
    assert w.p_value == pytest.approx(sps.ttest_ind([2.8, 2.9, 2.85, 2.7], list(base.values()), equal_var=False).pvalue)
    tiny = compare(base, {0: 3.01, 1: 3.11, 2: 3.06})  # 0.01 better on every seed: p tiny, but inside the noise
    assert tiny.p_value < 1e-3 and tiny.verdict == "within noise"


def test_aggregate_rows_and_verdicts():
    rows = [{"variant": v, "seed": s, "status": "done", "best_val_loss": x}
            for v, xs in {"a": [3.0, 3.1, 3.05], "b": [2.5, 2.6, 2.55]}.items() for s, x in enumerate(xs)]
    rows.append({"variant": "b", "seed": 3, "status": "failed", "best_val_loss": None})
    agg = {r["variant"]: r for r in aggregate(rows, "a")}
    assert agg["a"]["verdict"] == "baseline" and agg["b"]["verdict"] == "better" and agg["b"]["failed"] == 1
    assert agg["b"]["diff"] == pytest.approx(-0.5)


def test_power_law_fit_recovers_known_parameters():
    n = np.geomspace(1e4, 1e7, 8)
    loss = power_law(n, 40.0, 0.3, 1.7)
    fit = fit_power_law(n, loss * (1 + 0.001 * np.sin(np.arange(8))))
    assert fit["alpha"] == pytest.approx(0.3, rel=0.05) and fit["c"] == pytest.approx(1.7, abs=0.05)
    assert fit["alpha_ci"][0] < 0.3 < fit["alpha_ci"][1]
    assert fit["a"] == pytest.approx(40.0, rel=0.3)
    assert "error" in fit_power_law([1, 2], [3, 2])



def _study(**kw) -> Study:
    return Study("t", "tiny", **{"overrides": dict(FAST), "grid": {"train.lr": [1e-3, 3e-3]}, "seeds": 2, **kw})


@pytest.mark.slow
def test_interrupted_study_resumes_and_skips_finished_runs(tmp_path, inproc, monkeypatch):
    real = loop.train_step
    calls = {"n": 0}

    def crash_once(model, opt, batches, step, *a, **kw):  # the second run is interrupted at step 5
        calls["n"] += 1
        if calls["n"] == 6 + 5:
            raise KeyboardInterrupt
        return real(model, opt, batches, step, *a, **kw)

    monkeypatch.setattr(loop, "train_step", crash_once)
    out = tmp_path / "study"
    first = run_study(_study(seeds=1), out, 1, inproc)
    assert [r["status"] for r in first.rows] == ["done", "interrupted"]
    cut = out / "runs" / first.rows[1]["run"]
    assert json.loads((cut / "checkpoints/last/meta.json").read_text())["step"] == 4
    before = {r["run"]: (out / "status" / f"{r['run']}.json").read_text() for r in first.rows}
    monkeypatch.setattr(loop, "train_step", real)
    again = run_study(_study(seeds=1), out, 1, inproc)
    assert all(r["status"] == "done" for r in again.rows) and not again.failed
    for r in again.rows:
        after = (out / "status" / f"{r['run']}.json").read_text()
        assert (after == before[r["run"]]) == (r["run"] != cut.name)  # only the cut run ran again
    assert json.loads((out / "status" / f"{cut.name}.json").read_text())["resumed"] is True
    assert again.rows[1]["steps"] == 6
    assert (out / "results.parquet").is_file() and (out / "aggregate.json").is_file()


def test_wall_time_counts_every_attempt_not_only_the_last(tmp_path):
    from lmlab.study.results import run_row

    run = tmp_path / "r-s0"
    run.mkdir()
    records = [{"kind": "train", "step": 4, "loss": 3.0, "tokens": 64, "train_time_s": 1.0, "elapsed_s": 30.0},
               {"kind": "eval", "step": 4, "val_loss": 3.1, "elapsed_s": 31.5}]  # 30 s before the interruption
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    resumed = {"status": "done", "resumed": True, "wall_s": 2.0}  # the last attempt alone: its resume took 2 s
    assert run_row(run, resumed, {}, "r", 0)["wall_s"] == 31.5  # the run's own clock, carried by its checkpoints
    assert run_row(run, {"status": "done", "wall_s": 40.0}, {}, "r", 0)["wall_s"] == 40.0  # one attempt, start-up too
    kept = {"status": "done", "wall_s": 2.0, "attempts": [{"wall_s": 35.0}, {"wall_s": 2.0}]}
    assert run_row(run, kept, {}, "r", 0)["wall_s"] == 37.0


def test_a_failing_variant_does_not_stop_the_others(tmp_path, inproc):
    # fp16 needs CUDA: valid as a config, fails when its run builds on this CPU machine.
    out = run_study(_study(grid={"train.precision": ["fp32", "fp16"]}, seeds=1), tmp_path / "s", 1, inproc)
    assert [r["status"] for r in out.rows] == ["done", "failed"]
    assert "fp16" in out.rows[1]["error"] and "\n" not in out.rows[1]["error"]
    assert "1 of 2 runs did not finish" in out.text


def test_an_epoch_budget_gives_the_per_epoch_tables(tmp_path, inproc):
    fast = {k: v for k, v in FAST.items() if k != "train.max_steps"}
    text = tmp_path / "small.txt"
    text.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60)))
    s = _study(seeds=1, grid={"model.n_layer": [1]}, budget={"train.epochs": 2},
               overrides={**fast, "data.source": "text", "data.path": str(text)})
    out = run_study(s, tmp_path / "s", 1, inproc)
    epochs = json.loads((tmp_path / "s" / "epochs_aggregate.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["n"] == 1 for e in epochs)
    log = [json.loads(x) for x in (tmp_path / "s" / "runs" / out.rows[0]["run"] / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in log if r.get("kind") == "epoch"][-1]
    assert epochs[1]["val_loss"] == pytest.approx(last["val_loss"]) and epochs[1]["gap"] == pytest.approx(last["gap"])
    assert "per epoch (mean" in out.text and (tmp_path / "s" / "epochs.csv").is_file()


@pytest.mark.slow
def test_select_retrain_and_test_once(tmp_path, inproc, capsys):
    s = _study(select="val_loss", retrain={"train.max_steps": 9}, overrides={**FAST, "data.test_fraction": 0.1})
    out = run_study(s, tmp_path / "s", 1, inproc)
    sel = json.loads((tmp_path / "s" / "selected.json").read_text())
    best = min(out.aggregate, key=lambda a: a["val_loss_mean"])["variant"]
    assert sel["variant"] == best and sel["status"] == "done" and "loss" in sel["test"]
    retrained = tmp_path / "s" / sel["run_dir"]
    assert json.loads((retrained / "checkpoints/last/meta.json").read_text())["step"] == 9
    assert "selected" in out.text and "test loss" in out.text
    from lmlab.study.commands import cmd_table

    cmd_table(type("A", (), {"study_dir": [str(tmp_path / "s")]}), {})  # reprints the selection line too
    assert f"selected {best} by mean val_loss" in capsys.readouterr().out


@pytest.mark.slow
def test_ray_executor_runs_real_tasks_on_a_local_cluster(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = run_study(_study(seeds=1), tmp_path / "s", 2, "ray")
    finally:
        ray.shutdown()
    assert [r["status"] for r in out.rows] == ["done", "done"]
    pids = {json.loads((tmp_path / "s" / "status" / f"{r['run']}.json").read_text())["pid"] for r in out.rows}
    assert all(p != __import__("os").getpid() for p in pids)  # trained in Ray's worker processes


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lmlab", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_sweep_end_to_end_through_the_cli(tmp_path):
    out = tmp_path / "sweep"
    fast = [f"--{k}={v}" for k, v in FAST.items() if k != "model.n_layer"]  # the axis itself
    r = _cli("sweep", "tiny", "--grid", "model.n_layer=1,2", "--seeds", "2", "--out", str(out), "--workers", "2", *fast)
    assert r.returncode == 0, r.stderr
    assert "(baseline; noise floor" in r.stdout and "n_layer2" in r.stdout and "±" in r.stdout
    for name in ("results.csv", "results.md", "results.parquet", "aggregate.csv", "aggregate.json", "study.toml",
                 ".lmlab-study", "plots/curves.png", "plots/bars.png"):
        assert (out / name).is_file(), name
    assert len((out / "results.csv").read_text().splitlines()) == 5
    again = _cli("sweep", "tiny", "--grid", "model.n_layer=1,2", "--seeds", "2", "--out", str(out), *fast)
    assert again.returncode == 0 and "4 of 4 runs already finished" in again.stderr
    table = _cli("table", str(out))
    assert table.returncode == 0 and "baseline" in table.stdout
    assert load_study(out / "study.toml").grid == {"model.n_layer": ["1", "2"]}
    other = _cli("sweep", "tiny", "--grid", "model.n_layer=3", "--out", str(out), *fast)
    assert other.returncode == 2 and "different study" in other.stderr


@pytest.mark.parametrize("args, match", [
    (["sweep", "tiny", "--grid", "model.n_lyr=1,2"], "n_lyr"),
    (["sweep", "tiny", "--grid", "model.n_layer="], "empty"),
    (["sweep", "tiny", "--zip", "model.d_model=16,32", "--zip", "model.n_head=1"], "unequal"),
    (["sweep", "tiny", "--grid", "model.mlp=gelu,bogus"], "variant mlpbogus"),
    (["study", "nonesuch"], "unknown study"),
    (["study", "ladder", "--seeds", "0"], "--seeds 0 is not valid"),
    (["sweep", "tiny", "--grid", "train.lr=1e-3,2e-3", "--train.lr=5e-4"], "varies it (lr1e-3: 0.001"),
    (["sweep", "tiny", "--grid", "train.lr=1e-3,2e-3", "--data.path=/no/such.txt", "--data.source=text"],
     "/no/such.txt does not exist"),
    (["sweep", "tiny", "--grid", "train.lr=1e-3,2e-3", "--executor", "ray", "--address", "127.0.0.1:1"],
     "no Ray cluster answers there"),
])
def test_bad_cli_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, match):
    r = _cli(*args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and match in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def test_refuses_a_directory_that_is_not_a_study_and_dry_run_writes_nothing(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    r = _cli("sweep", "tiny", "--grid", "model.n_layer=1", "--out", str(tmp_path / "x"), "--force")
    assert r.returncode == 2 and "not an lmlab study" in r.stderr and (tmp_path / "x" / "keep.txt").is_file()
    d = _cli("study", "minigpt", "--dry-run", "--out", str(tmp_path / "l"))
    assert d.returncode == 0 and "3 variants x 3 seeds = 9 runs" in d.stdout and "flops_per_token" in d.stdout
    assert "claim(s) judged" in d.stdout
    assert not (tmp_path / "l").exists()


def test_per_epoch_table_is_the_mean_and_t_interval_over_seeds_per_variant_and_epoch():
    from lmlab.study.results import epoch_aggregate, epoch_text

    rows = [{"variant": "a", "seed": s, "epoch": e, "train_loss": 3.0 - e + 0.1 * s, "val_loss": 3.2 - e + 0.2 * s,
             "val_perplexity": math.exp(3.2 - e + 0.2 * s), "gap": 0.2 + 0.1 * s} for s in range(3) for e in (1, 2)]
    agg = epoch_aggregate(rows)
    assert [(r["variant"], r["epoch"], r["n"]) for r in agg] == [("a", 1, 3), ("a", 2, 3)]
    assert agg[1]["val_loss"] == pytest.approx(1.4) and agg[0]["gap"] == pytest.approx(0.3)
    half = sps.t.ppf(0.975, 2) * np.std([0.2, 0.3, 0.4], ddof=1) / math.sqrt(3)
    assert agg[0]["gap_ci"] == pytest.approx(half)
    assert "| a | 2 | 3 | 1.1 ± " in epoch_text(agg)


def test_a_damaged_study_marker_is_named_not_a_traceback(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / ".lmlab-study").write_text('{"name": "t", "pl')
    with pytest.raises(UserError, match=r"\.lmlab-study is damaged"):
        run_study(_study(seeds=1), out, 1, "local")
    assert (out / ".lmlab-study").read_text() == '{"name": "t", "pl'  # nothing rewritten


def test_a_sweep_over_a_relative_config_file_reopens_from_its_study_folder(tmp_path, monkeypatch):
    from lmlab.study.commands import cmd_table

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "my.toml").write_text('name = "my"\n[model]\nn_layer = 1\nd_model = 16\n')
    fast = [f"--{k}={v}" for k, v in FAST.items() if k != "train.lr"]
    r = _cli("sweep", "cfg/my.toml", "--grid", "train.lr=1e-3,2e-3", "--workers", "1", *fast, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    monkeypatch.chdir(tmp_path / "cfg")  # elsewhere: the study's base path no longer depends on the cwd
    assert cmd_table(type("A", (), {"study_dir": [str(tmp_path / "studies" / "sweep-my")]}), {}) == 0


def test_a_run_stopped_by_a_signal_is_interrupted_not_failed(tmp_path, monkeypatch):
    import lmlab.train as train_pkg
    from lmlab.errors import Interrupted
    from lmlab.study.worker import run_one

    def stopped(cfg, run_dir, **kwargs):
        raise Interrupted("SIGINT at step 3: saved last")

    monkeypatch.setattr(train_pkg, "train", stopped)
    (tmp_path / "c.toml").write_text('name = "x"\n')
    status = run_one(str(tmp_path / "r"), str(tmp_path / "c.toml"), str(tmp_path / "s.json"))
    assert status["status"] == "interrupted" and "SIGINT" in status["error"]


def test_one_study_process_per_study_folder(tmp_path, inproc):
    from locks import hold_lock

    """Issue 26 §3.4: a second sweep on the same folder deleted a run the first was training."""
    out = tmp_path / "s"
    out.mkdir()
    proc = hold_lock(out, 120)
    try:
        with pytest.raises(UserError, match=r"study directory .* is in use by pid \d+"):
            run_study(_study(seeds=1), out, 1, inproc)
        assert sorted(p.name for p in out.iterdir()) == [".lmlab-lock"]
    finally:
        proc.kill()
        proc.wait()


def test_a_run_lock_survives_the_removal_of_its_folder(tmp_path):
    """Issue 26 §3.5: removing a run folder took its lock file along, so a second trainer started on
    a run the first was still training. The lock outside the folder still refuses it."""
    import shutil

    from lmlab.runs import RunDir

    from locks import hold_lock

    run = tmp_path / "r"
    run.mkdir()
    proc = hold_lock(run, 120)
    try:
        shutil.rmtree(run)
        with pytest.raises(UserError, match=r"in use by pid \d+"):
            RunDir.create(run)
    finally:
        proc.kill()
        proc.wait()
    RunDir.create(run).unlock()  # the killed holder's locks are gone


def test_a_deleted_run_folder_is_lost_not_done_and_is_trained_again(tmp_path, inproc, capsys):
    """Issue 26 §3.6: `rm -rf runs/X` and the table still said done (means over fewer seeds)."""
    import shutil

    from lmlab.study.runner import tabulate

    out = tmp_path / "s"
    study = _study(seeds=1)
    first = run_study(study, out, 1, inproc)
    gone = first.rows[1]["run"]
    shutil.rmtree(out / "runs" / gone)
    table = tabulate(study, out, plan(study))
    assert [r["status"] for r in table.rows] == ["done", "lost"]
    assert "1 of 2 runs did not finish" in table.text and table.aggregate[1]["n"] == 0
    again = run_study(study, out, 1, inproc, stream=sys.stderr)
    assert [r["status"] for r in again.rows] == ["done", "done"]
    assert "lost their folder" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_stop_when_their_study_is_killed(tmp_path):
    """Issue 26 §3.5: SIGKILL of `lmlab sweep` left its workers training as orphans."""
    import signal
    import time

    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "lmlab", "sweep", "tiny", "--grid", "model.n_layer=1,2",
                             "--out", str(out), "--workers", "2", "--train.max_steps=100000",
                             "--eval.every=50", "--eval.max_tokens=256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = [out / "runs" / name / ".lmlab-lock" for name in ("n_layer1-s0", "n_layer2-s0")]
    deadline = time.time() + 120
    while time.time() < deadline and not all(p.is_file() and p.read_text().strip() for p in locks):
        time.sleep(0.5)
    workers = [int(p.read_text()) for p in locks]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 60
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [pid for pid in alive if _alive(pid)]
    assert not alive, f"workers {alive} outlived their study"
    for name in ("n_layer1-s0", "n_layer2-s0"):  # each saved on the way out: the next run resumes it
        assert json.loads((out / "status" / f"{name}.json").read_text())["status"] == "interrupted"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive (it waits for a parent that is gone)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- warm workers (issue 24) ---------------------------------------------------------------

def _tensors(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def _losses(run: Path) -> list:
    return [(r["kind"], r["step"], r.get("loss", r.get("val_loss")))
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] in ("train", "eval")]


@pytest.mark.slow
def test_a_run_in_a_warm_worker_is_bit_identical_to_the_same_run_from_the_cli(tmp_path):
    """One architecture per family: a transformer, a neural bigram, an LSTM."""
    import torch

    study = Study("w", "tiny", overrides={**FAST, "train.log_every": 1}, seeds=1,
                  variants={"transformer": {}, "bigram": {"model.arch": "bigram"}, "lstm": {"model.arch": "lstm"}})
    out = run_study(study, tmp_path / "s", 2, "local")
    assert [r["status"] for r in out.rows] == ["done"] * 3, out.text
    for row in out.rows:
        pid = json.loads((tmp_path / "s" / "status" / f"{row['run']}.json").read_text())["pid"]
        assert pid != os.getpid()  # trained in a forked child, not here
        alone = tmp_path / "cli" / row["run"]
        r = _cli("train", str(tmp_path / "s" / "status" / f"{row['run']}.config.toml"), "--run-dir", str(alone))
        assert r.returncode == 0, r.stderr
        warm, cli = _tensors(tmp_path / "s" / "runs" / row["run"]), _tensors(alone)
        assert warm.keys() == cli.keys() and all(torch.equal(warm[k], cli[k]) for k in warm), row["run"]
        assert _losses(tmp_path / "s" / "runs" / row["run"]) == _losses(alone)


@pytest.mark.slow
def test_a_run_killed_in_a_warm_worker_fails_alone_and_the_study_finishes(tmp_path):
    """The OOM killer's SIGKILL on one run's child: that run is failed, naming the signal; the
    worker survives it and the other runs finish."""
    import signal
    import time

    out = tmp_path / "s"
    fast = [f"--{k}={v}" for k, v in FAST.items() if k != "train.max_steps"]
    proc = subprocess.Popen([sys.executable, "-m", "lmlab", "sweep", "tiny", "--grid", "train.max_steps=100000,6,7,8",
                             "--out", str(out), "--workers", "2", *fast],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock = out / "runs" / "max_steps100000-s0" / ".lmlab-lock"
        deadline = time.time() + 120
        while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
            time.sleep(0.2)
        os.kill(int(lock.read_text()), signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    status = {p.stem: json.loads(p.read_text()) for p in (out / "status").glob("*-s0.json")}
    assert status["max_steps100000-s0"]["status"] == "failed"
    assert "killed by SIGKILL" in status["max_steps100000-s0"]["error"]
    assert all(status[f"max_steps{n}-s0"]["status"] == "done" for n in (6, 7, 8))
    assert "1 of 4 runs failed" in err


def test_a_warm_worker_that_cannot_start_fails_the_pending_runs_with_one_line(tmp_path, inproc, monkeypatch):
    """A broken environment (the worker dies importing torch): the runs left are failed naming it,
    never waited on; a finished run is untouched."""
    from lmlab.study import warm

    out = tmp_path / "s"
    first = run_study(_study(seeds=1), out, 1, inproc)
    kept = (out / "status" / f"{first.rows[0]['run']}.json").read_text()
    (out / "status" / f"{first.rows[1]['run']}.json").unlink()  # as if it never ran
    monkeypatch.setattr(warm, "SERVER", [sys.executable, "-c", "import sys; sys.exit('ImportError: no torch')"])
    again = run_study(_study(seeds=1), out, 2, "local")
    assert [r["status"] for r in again.rows] == ["done", "failed"]
    error = again.rows[1]["error"]
    assert "warm worker exited with code 1" in error and "no torch" in error and "--executor process" in error
    assert (out / "status" / f"{first.rows[0]['run']}.json").read_text() == kept


def test_more_workers_than_runs_is_said_and_capped(tmp_path, inproc, capsys):
    run_study(_study(seeds=1), tmp_path / "s", 8, inproc, stream=sys.stderr)
    assert "--workers 8 is more than the 2 runs to train; using 2" in capsys.readouterr().err


def test_zero_workers_is_refused_in_one_line(tmp_path):
    r = _cli("sweep", "tiny", "--grid", "train.lr=1e-3,2e-3", "--workers", "0", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--workers '0': expected a positive integer or auto" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_the_executors_are_a_registry_listed_in_the_help():
    from lmlab.registry import all_registries

    assert set(all_registries()["study.executor"].names()) == {"local", "process", "ray"}
    r = _cli("sweep", "--help")
    assert "{local,process,ray}" in r.stdout.replace("\n", "").replace(" ", "")


@pytest.mark.skipif(subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0,
                    reason="needs user and mount namespaces (unshare -rm) to make a read-only file system")
def test_a_study_folder_on_a_read_only_file_system_is_one_line_and_keeps_its_runs(tmp_path, inproc):
    out = tmp_path / "s"
    first = run_study(_study(seeds=1), out, 1, inproc)
    (out / "status" / f"{first.rows[1]['run']}.json").unlink()  # one run left to train
    before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    fast = " ".join(f"--{k}={v}" for k, v in FAST.items() if k != "train.lr")
    script = (f"mount --bind {out} {out} && mount -o remount,ro,bind {out} {out} && {sys.executable} -m lmlab "
              f"sweep tiny --grid train.lr=0.001,0.003 --seeds 1 --out {out} {fast}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot write into the study directory" in r.stderr and "Read-only file system" in r.stderr
    assert sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) == before


def test_dry_run_of_a_select_study_adds_the_retrain_of_its_costliest_variant(tmp_path):
    from lmlab.study.commands import dry_run
    from lmlab.study.estimate import forecast, retrain_forecast

    s = _study(select="val_loss", retrain={"train.max_steps": 600})
    runs = plan(s)
    fc = forecast(runs, 1, 1)
    retrain = retrain_forecast(s, runs, fc)
    assert retrain is not None and len(retrain.seconds) == 1
    assert retrain.rows[0]["steps"] == 600 and retrain.wall_s > 0  # the retrain budget, not the grid's 6 steps
    assert retrain_forecast(_study(), runs, fc) is None  # no select, no retrain
    text = dry_run(s, runs, tmp_path / "s")
    assert "then the selected variant's retrain ({'train.max_steps': 600}): at most" in text and "in all" in text
    assert not (tmp_path / "s").exists()
