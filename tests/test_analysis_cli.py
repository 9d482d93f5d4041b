"""`lmlab analyze / probe / sample` and `generate --ablate-heads` end to end on a tiny trained run,
and their one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json

import pytest

from lmlab.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory, shakespeare):
    run_dir = tmp_path_factory.mktemp("analysis") / "run"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run_dir), "--train.max_steps=16",
                 "--eval.every=8", "--train.keep_checkpoints=log", "--train.keep_every=8"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, shakespeare):
    run_dir = tmp_path_factory.mktemp("analysis") / "lstm"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run_dir), "--model.arch=lstm",
                 "--train.max_steps=2", "--eval.every=2"]) == 0
    return run_dir


def test_keep_checkpoints_log_keeps_log_spaced_steps(run):
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == [
        f"step-{s:06d}" for s in (0, 1, 2, 4, 8, 16)]


@pytest.mark.slow
def test_analyze_writes_tables_and_figures(run, capsys):
    assert main(["analyze", str(run), "--windows", "6", "--prompt", "ROMEO: my", "--layer", "1",
                 "--ablate-each", "--all-checkpoints"]) == 0
    out = capsys.readouterr().out
    assert "entropy-sparsity correlation" in out and "query 8 (" in out and "Δ val loss per head" in out
    a = run / "analysis"
    stats = json.loads((a / "attention.json").read_text())
    assert len(stats["layers"]) == 2 and len(stats["per_head"]["sparsity"][0]) == 2
    assert (a / "attention.csv").read_text().splitlines()[0] == \
        "layer,head,entropy,entropy_norm,sparsity,max_weight,mean_distance"
    steps = json.loads((a / "checkpoints.json").read_text())["steps"]
    assert steps == [0, 1, 2, 4, 8, 16]
    for name in ("attention.png", "heads.png", "heads.csv", "ablation.csv", "ablation.png", "maps/layer1.png",
                 "maps/top_attended.txt", "checkpoints_roles.png", "checkpoints.csv"):
        assert (a / name).stat().st_size > 0, name
    assert main(["analyze", str(run), "--windows", "4", "--checkpoint", "4", "--ablate", "0.1,1.0",
                 "--mode", "mean", "--out", str(run / "at4")]) == 0
    ablation = json.loads((run / "at4" / "ablation.json").read_text())
    assert ablation["heads"] == ["0.1", "1.0"] and ablation["mode"] == "mean"


def test_probe_and_sample_and_generate_ablated(run, tmp_path, capsys):
    assert main(["probe", str(run), "--neighbours", "e,t", "--k", "3", "--analogy", "a - b + c",
                 "--pca", "a,e,i,o,u"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("'e': ") and "a - b + c ~" in out
    assert (run / "analysis" / "probe" / "pca.png").is_file()
    from lmlab.analysis.pipeline import probe_run

    for expect, ranked in (("e", True), ("ea", False)):  # a character run ranks single characters only
        got = probe_run(run, "last", None, "a - b + c", None, 3, tmp_path / expect, expect)["analogy"]
        assert got["expect"] == expect and (1 <= got["rank"] <= 4 if ranked else got["rank"] is None)
    variants = tmp_path / "variants.txt"
    variants.write_text("ROMEO: my\nROMEO: thy\nJULIET: my\n")
    assert main(["sample", str(run), "--prompt", "ROMEO:", "--temperature", "0.5,1.0", "--top-p", "0.5,1",
                 "--seeds", "2", "--max-new-tokens", "8", "--prompt-variants", str(variants)]) == 0
    study = json.loads((run / "samples" / "sampling.json").read_text())
    assert len(study["settings"]) == 4 and len(study["settings"][0]["samples"]) == 2
    sens = json.loads((run / "samples" / "prompt_sensitivity.json").read_text())
    assert len(sens["bleu"]) == 3 and sens["bleu"][0][0] == pytest.approx(100.0)
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "ROMEO:", "--max-new-tokens", "5", "--temperature", "0",
                 "--ablate-heads", "0.0,0.1,1.0,1.1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")


@pytest.mark.parametrize("argv, message", [
    (["analyze", "{run}", "--prompt", "hi", "--layer", "0", "--head", "7"], "--head 7 is out of range"),
    (["analyze", "{run}", "--prompt", ""], "--prompt is empty"),
    (["analyze", "{run}", "--prompt", "x" * 40], "model.context_len=32"),
    (["analyze", "{run}", "--checkpoint", "7"], "kept steps: 0, 1, 2, 4, 8, 16"),
    (["analyze", "{run}", "--checkpoint", "newest"], "expected best, last or a kept step"),
    (["analyze", "{run}", "--ablate", "1-2"], "is not LAYER.HEAD"),
    (["analyze", "{run}", "--ablate", "5.0"], "layers 0..1"),
    (["probe", "{run}", "--neighbours", "€"], "not in the vocabulary"),
    (["probe", "{run}", "--analogy", "a b"], "--analogy"),
    (["sample", "{run}", "--prompt", ""], "--prompt is empty"),
    (["sample", "{run}", "--prompt", "a", "--temperature", "hot"], "--temperature"),
    (["generate", "{run}", "--ablate-heads", "0.9"], "heads 0..1"),
    (["analyze", "{lstm}"], "no attention"),
])
def test_bad_input_is_one_line_and_exit_2(run, lstm_run, argv, message, capsys):
    argv = [a.format(run=run, lstm=lstm_run) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmlab: error: ") and message in err and err.count("\n") == 1, err


def test_out_never_overwrites_a_users_folder(run, tmp_path, capsys):
    """Issue 26 §3.7: `analyze --out DIR` replaced the user's DIR/attention.json; probe and sample
    used the same check. A folder lmlab did not write is refused before any work; one it made is
    reused, and a failed first write leaves no folder behind."""
    from tree import snapshot

    mine = tmp_path / "useranalysis"
    mine.mkdir()
    (mine / "attention.json").write_text("{}\n")
    before = snapshot(mine)
    for argv in (["analyze", str(run), "--windows", "2"], ["probe", str(run), "--neighbours", "e"],
                 ["sample", str(run), "--prompt", "A", "--max-new-tokens", "2"]):
        assert main([*argv, "--out", str(mine)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "lmlab did not write" in err
    assert snapshot(mine) == before
    ours = tmp_path / "ours"
    for _ in range(2):
        assert main(["analyze", str(run), "--windows", "2", "--out", str(ours)]) == 0
    assert (ours / "attention.json").is_file() and (ours / ".lmlab-out").is_file()
    failed = tmp_path / "new" / "probe"
    assert main(["probe", str(run), "--neighbours", "not-a-char", "--out", str(failed)]) == 2
    assert not (tmp_path / "new").exists()
