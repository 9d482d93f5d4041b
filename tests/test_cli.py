"""The CLI contract: verbs, --help, JSON output, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from lmlab.cli import main, verb_names

VERBS = verb_names()  # every registered verb, so a new one is covered without editing this file


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shakespeare):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run_dir),
                 "--train.max_steps=30", "--eval.every=15"]) == 0
    return run_dir


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "lmlab", "--help"], capture_output=True, text=True, check=True)
    for verb in VERBS:
        assert verb in out.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_help_of_each_verb(verb, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert "usage: lmlab " + verb in capsys.readouterr().out


def test_train_eval_generate_end_to_end(trained, capsys):
    capsys.readouterr()
    assert main(["eval", str(trained), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("loss", "perplexity", "accuracy", "bits_per_byte", "bits_per_char"):
        assert key in metrics
    assert 0 < metrics["loss"] < 4.3 and metrics["step"] == 30
    assert main(["generate", str(trained), "--prompt", "ROMEO:", "--seed", "1", "--max-new-tokens", "40"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first) > len("ROMEO:") + 20  # specials decode to nothing
    main(["generate", str(trained), "--prompt", "ROMEO:", "--seed", "1", "--max-new-tokens", "40"])
    assert capsys.readouterr().out == first
    main(["generate", str(trained), "--prompt", "ROMEO:", "--temperature", "0", "--max-new-tokens", "40",
          "--no-cache"])
    no_cache = capsys.readouterr().out
    main(["generate", str(trained), "--prompt", "ROMEO:", "--temperature", "0", "--max-new-tokens", "40"])
    assert capsys.readouterr().out == no_cache
    assert (trained / "report.md").is_file() and (trained / "loss.png").is_file()


def test_resume_of_a_finished_run_trains_further(trained, tmp_path, capsys):
    """A finished run resumed with a higher train.max_steps continues from its last checkpoint: the
    steps after it are trained and logged, the checkpoint moves on, and eval reads the new one."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = (run / "config.toml").read_text()
    assert "max_steps = 30" in config
    (run / "config.toml").write_text(config.replace("max_steps = 30", "max_steps = 40"))
    assert main(["train", "--resume", str(run)]) == 0
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r.get("kind") == "train"]
    assert steps[-1] == 40 and steps.count(30) == 1 and 31 in steps
    assert json.loads((run / "checkpoints/last/meta.json").read_text())["step"] == 40
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 40


@pytest.mark.parametrize("argv, message", [
    (["train", "nosuchpreset"], "unknown preset 'nosuchpreset'; valid presets:"),
    (["train", "tiny", "--model.n_layers=2"], "--model.n_layers: unknown field; valid fields of model:"),
    (["train", "tiny", "--model.n_layer=two"], "model.n_layer='two' is not valid; expected an int"),
    (["train", "tiny", "--data", "/no/such/file.txt"], "--data /no/such/file.txt: no such file"),
    (["train", "tiny", "--optim.lr=1"], "unknown section 'optim'"),
    (["train", "tiny", "--model.norm=batchnorm"], "model.norm='batchnorm' is not known; valid: layernorm, none, rmsnorm"),
    (["eval", "/no/such/run"], "run directory /no/such/run does not exist"),
    (["generate", "/no/such/run", "--prompt", "x"], "run directory /no/such/run does not exist"),
    (["train", "--resume", "/no/such/run"], "run directory /no/such/run does not exist"),
    (["eval", "RUN", "--checkpoint", "first"], "--checkpoint 'first' is not valid; expected best, last or a kept step number"),
    (["eval", "EMPTY"], "has no checkpoint yet"),
    (["train", "tiny", "--run-dir", "RUN"], "already holds files; use --resume"),
    (["generate", "RUN", "--top-p", "0"], "--top-p=0.0 is invalid"),
])
def test_user_mistakes_exit_2_with_one_line(argv, message, trained, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.toml").write_text('name = "x"\n')
    argv = [str(trained) if a == "RUN" else str(empty) if a == "EMPTY" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_user_mistake_from_the_real_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "lmlab", "train", "nosuch"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lmlab: error: unknown preset 'nosuch'") and "Traceback" not in proc.stderr


def test_presets_lists_each_with_one_line(capsys):
    assert main(["presets", "--fields", "--components"]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "tiny", "shakespeare_char"):
        assert name in out
    assert "--train.lr=<float>" in out and "model.norm:" in out
    # the hardware choices are registries too, each value written once (lmlab.hardware)
    for registry, entry in (("train.precision:", "  bf16 "), ("train.device:", "  mps "),
                            ("train.dist_backend:", "  nccl ")):
        assert registry in out and entry in out.split(registry)[1].split("\n\n")[0], registry


@pytest.mark.slow
def test_demo_runs_end_to_end_short(tmp_path, capsys):
    run_dir = tmp_path / "demo"
    assert main(["demo", "--run-dir", str(run_dir), "--train.max_steps=40", "--eval.every=20",
                 "--train.progress=false"]) == 0
    out = capsys.readouterr().out
    assert "sample before training" in out and "sample after training" in out and "val loss" in out
    for path in ("config.toml", "metrics.jsonl", "checkpoints/last/model.safetensors", "samples/before.txt",
                 "samples/after.txt", "report.md", "loss.png", "report.html"):
        assert (run_dir / path).exists(), path
    assert f"report page (open it in a browser): {run_dir / 'report.html'}" in out


def test_data_flag_finds_a_relative_path_under_lmlab_data(tmp_path, monkeypatch):
    from lmlab.commands import resolve_config

    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "x.txt").write_text("hello\n")
    monkeypatch.setenv("LMLAB_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path / "corpora")
    assert resolve_config("tiny", "x.txt", {}).data.path == str(tmp_path / "corpora" / "x.txt")  # here first
    monkeypatch.chdir("/")
    assert resolve_config("tiny", "corpora/x.txt", {}).data.path == str(tmp_path / "corpora" / "x.txt")


def test_a_reader_that_leaves_early_ends_lmlab_quietly_as_other_unix_tools():
    proc = subprocess.Popen([sys.executable, "-m", "lmlab", "presets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head -0`: gone before lmlab has printed a line
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == b""  # 128 + SIGPIPE, the status `yes | head -1` leaves


def test_a_full_disk_while_writing_the_report_names_what_was_being_written(trained, monkeypatch, capsys):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() or fsync() say it: no file name

    monkeypatch.setattr(os, "fsync", full)
    assert main(["report", str(trained)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lmlab: error: no space left on device writing {trained}/") and err.count("\n") == 1


def test_a_run_that_never_saved_names_the_one_command_that_trains_it(trained, tmp_path, monkeypatch, capsys):
    import re
    import shlex
    import shutil

    import lmlab.commands.launch as launch
    from lmlab.runs import MARKER, RUN_LAYOUT, write_marker

    half = tmp_path / "half"  # what a run killed before its first checkpoint leaves
    half.mkdir()
    write_marker(half, MARKER, "run", RUN_LAYOUT, checkpointed=False)
    shutil.copy(trained / "config.toml", half / "config.toml")
    monkeypatch.setattr(launch, "supervise", lambda cmd: 0)  # torchrun itself is tests/test_distributed.py's
    assert main(["train", "tiny", "--nproc", "1", "--run-dir", str(half)]) == 0  # not sent to --resume
    commands = set()
    resume = ["train", "--resume", str(half)]
    for argv in (resume, [*resume, "--nproc", "1"], ["eval", str(half)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "has no checkpoint yet" in err and "--resume" not in err.split("checkpoint yet")[1], err
        commands.add(re.search(r"`(lmlab train [^`]*)`", err).group(1))
    assert commands == {f"lmlab train {half}/config.toml --run-dir {half} --force"}
    assert main(shlex.split(commands.pop())[1:] + ["--train.max_steps=2"]) == 0  # and it does


def test_resuming_a_finished_run_says_nothing_was_trained_and_how_to_train_more(shakespeare, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run), "--train.max_steps=2"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (f"already finished at step 2; nothing to train (raise "
                                                       f"train.max_steps in {run}/config.toml to continue)")
    config = run / "config.toml"
    config.write_text(config.read_text().replace("max_steps = 2\n", "max_steps = 3\n"))
    assert main(["train", "--resume", str(run)]) == 0  # the advice works
    assert capsys.readouterr().out.startswith("done: 3 steps")
