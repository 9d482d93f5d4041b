"""What lmlab promises about users' files: readable by colleagues (umask), never deleted unless
lmlab made them (markers), a damaged log line loses nothing else, one trainer per run (lock),
exports never mix into a user's folder, checkpoints verify themselves, a manifest per run."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys

import pytest
import torch

from lmlab.checkpoint import load_weights, read_meta, save_checkpoint
from lmlab.cli import main
from lmlab.errors import UserError
from lmlab.io import DirLock, atomic_write_text, iter_jsonl
from lmlab.model import build_model
from lmlab.model.config import ModelConfig
from lmlab.runs import MARKER, RunDir
from lmlab.train import resume
from locks import hold_lock
from tree import snapshot as tree  # every path's size, mtime and hash: equal before and after = untouched

TINY = ["--train.max_steps=4", "--eval.every=2", "--eval.max_tokens=256", "--train.batch_size=4"]




@pytest.fixture(scope="module")
def run(tmp_path_factory):
    old = os.umask(0o022)
    try:
        root = tmp_path_factory.mktemp("safety") / "run"
        assert main(["train", "tiny", "--run-dir", str(root), *TINY]) == 0
    finally:
        os.umask(old)
    return root


def test_every_file_of_a_run_is_readable_by_group_and_others_under_umask_022(run):
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in files) and any(p.name == "config.toml" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_atomic_write_follows_a_strict_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o600


@pytest.mark.parametrize("files", [["config.toml", "notes.txt"], ["thesis.txt", "src/main.py"]])
def test_force_never_deletes_a_folder_lmlab_did_not_make(tmp_path, monkeypatch, capsys, files):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("the user's own work\n")
    before = tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "tiny", "--run-dir", ".", "--force", *TINY],
                 ["train", "tiny", "--run-dir", str(tmp_path), "--force", *TINY]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not made by lmlab" in err and MARKER in err
    assert tree(tmp_path) == before


def test_another_tools_run_folder_is_never_emptied(tmp_path, capsys):
    """Issue 26 §3.1: a folder shaped like a run (config.toml, checkpoints/, metrics.jsonl) but
    without lmlab's marker was read as 'a run from before markers' and emptied, even without
    --force. Now: refused with one line, by train (with and without --force) and by import."""
    proj = tmp_path / "proj"
    (proj / "checkpoints").mkdir(parents=True)
    (proj / "config.toml").write_text("lr=1\n")
    (proj / "metrics.jsonl").write_text('{"loss":1}\n')
    (proj / "checkpoints" / "epoch3.pt").write_text("w")
    (proj / "thesis.txt").write_text("thesis")
    before = tree(proj)
    assert not RunDir(proj).owned()
    for extra in ([], ["--force"]):
        assert main(["train", "tiny", "--run-dir", str(proj), *extra, *TINY]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not made by lmlab" in err
    assert tree(proj) == before


def test_force_empties_only_what_lmlab_wrote(tmp_path, capsys):
    """--force replaces an lmlab run, and refuses (deleting nothing) when the folder also holds a
    file lmlab did not write, naming it."""
    run = tmp_path / "run"
    assert main(["train", "tiny", "--run-dir", str(run), *TINY]) == 0
    (run / "notes.txt").write_text("mine")
    before = tree(run)
    assert main(["train", "tiny", "--run-dir", str(run), "--force", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.txt" in err and "did not write" in err
    assert tree(run) == before
    (run / "notes.txt").unlink()
    (run / "eval").mkdir()
    (run / "eval" / "tasks.json").write_text("{}")  # results of the old run, which lmlab wrote
    assert main(["train", "tiny", "--run-dir", str(run), "--force", *TINY]) == 0
    assert not (run / "eval").exists() and (run / MARKER).is_file()


def test_a_run_whose_checkpoints_were_deleted_is_not_a_failed_start(tmp_path, capsys):
    """Issue 26 §3.2: 'no checkpoint now' was read as 'never had one', so a plain retrain wiped a
    finished run's metrics, analysis and pages. The marker records the first checkpoint."""
    run = tmp_path / "run"
    assert main(["train", "tiny", "--run-dir", str(run), *TINY]) == 0
    shutil.rmtree(run / "checkpoints")
    before = tree(run)
    assert main(["train", "tiny", "--run-dir", str(run), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoints are gone" in err and "--force" in err
    assert tree(run) == before


def test_user_files_in_a_run_that_failed_before_its_first_checkpoint_survive(tmp_path, capsys):
    """Issue 26 §3.3: a diverged run (no checkpoint) plus the user's notes: a plain retrain deleted
    the notes. Now it refuses, naming them; without them the failed start is reused as before."""
    fo2 = tmp_path / "fo2"
    assert main(["train", "tiny", "--run-dir", str(fo2), *TINY, "--train.lr=1e6", "--train.grad_clip=0"]) == 1
    (fo2 / "notes.txt").write_text("why")
    capsys.readouterr()
    assert main(["train", "tiny", "--run-dir", str(fo2), *TINY]) == 2
    assert "notes.txt" in capsys.readouterr().err and (fo2 / "notes.txt").read_text() == "why"
    (fo2 / "notes.txt").unlink()
    assert main(["train", "tiny", "--run-dir", str(fo2), *TINY]) == 0


def test_no_dead_end_after_a_failure_before_the_first_checkpoint(tmp_path, capsys):
    # 1) a failure while preparing data removes the folder it made
    bad = tmp_path / "empty.txt"
    bad.write_text(" \n")
    assert main(["train", "tiny", "--data", str(bad), "--run-dir", str(tmp_path / "r1"), *TINY]) == 2
    assert not (tmp_path / "r1").exists()
    # 2) a run killed before its first checkpoint (marker, config, no checkpoint): plain train reuses it
    r2 = tmp_path / "r2"
    r2.mkdir()
    (r2 / MARKER).write_text('{"format": 1}')
    (r2 / "config.toml").write_text('name = "x"\n')
    (r2 / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 3.0}\n')
    assert main(["train", "tiny", "--run-dir", str(r2), *TINY]) == 0
    assert RunDir(r2).has_checkpoint() and len(RunDir(r2).read_metrics("train")) == 4


def test_a_damaged_metrics_line_loses_nothing_else(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"kind": "train", "step": i, "loss": 1.0 / i}) for i in range(1, 23)]
    lines[10] = lines[10][:17]  # line 11 cut short
    path.write_text("\n".join(lines) + "\n")
    assert [r["step"] for r in iter_jsonl(path)] == [i for i in range(1, 23) if i != 11]
    err = capsys.readouterr().err
    assert f"{path} line 11 is not a JSON object; skipped it" in err
    run = RunDir(tmp_path)
    run.truncate_metrics(20)  # what resume does: keep what the checkpoint covers
    assert [r["step"] for r in run.read_metrics()] == [i for i in range(1, 21) if i != 11]


def test_resume_and_report_keep_every_good_metrics_line(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    n = len(lines)
    lines.insert(2, '{"kind": "train", "step": 2, "lo')
    (copy / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["report", str(copy)]) == 0
    assert "line 3 is not a JSON object" in capsys.readouterr().err
    cfg = (copy / "config.toml").read_text().replace("max_steps = 4", "max_steps = 6")
    (copy / "config.toml").write_text(cfg)
    resume(copy)
    assert len(RunDir(copy).read_metrics()) == n + 2 + 1  # every good line kept, 2 steps + 1 eval added


def test_a_second_trainer_is_refused_naming_the_pid_and_a_killed_one_leaves_no_lock(run, capsys):
    proc = hold_lock(run)
    try:
        for argv in (["train", "--resume", str(run)], ["train", "tiny", "--run-dir", str(run), "--force", *TINY]):
            before = tree(run)
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"is in use by pid {proc.pid}" in err and err.count("\n") == 1
            assert tree(run) == before
    finally:
        proc.kill()
        proc.wait()
    DirLock(run).acquire().release()  # SIGKILL dropped it


def test_resume_names_a_live_trainer_even_while_its_checkpoint_is_mid_swap(run, tmp_path, capsys):
    """A trainer swapping its checkpoint leaves checkpoints/last briefly without its files; a second
    --resume must report the trainer, not a damaged checkpoint."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "checkpoints" / "last" / "model.safetensors").unlink()  # the moment between the swap's renames
    proc = hold_lock(copy)
    try:
        assert main(["train", "--resume", str(copy)]) == 2
        assert f"is in use by pid {proc.pid}" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()


def test_export_refuses_a_users_folder_and_a_file_and_replaces_only_its_own(run, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": true}')
    afile = tmp_path / "afile"
    afile.write_text("x")
    before = tree(tmp_path)
    assert main(["export", str(run), "--out", str(mine)]) == 2
    assert "not an lmlab export" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(mine), "--force"]) == 2
    assert main(["export", str(run), "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert tree(tmp_path) == before
    out = tmp_path / "hf"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert main(["export", str(run), "--out", str(out)]) == 2
    assert "use --force" in capsys.readouterr().err
    (out / "notes.txt").write_text("the user's, not the export's")
    before = tree(out)
    assert main(["export", str(run), "--out", str(out), "--force"]) == 2  # lmlab deletes only its own files
    assert "notes.txt" in capsys.readouterr().err and tree(out) == before
    (out / "notes.txt").unlink()
    (out / "config.json").write_text("{}")  # an export file lmlab wrote: replaced
    assert main(["export", str(run), "--out", str(out), "--force"]) == 0
    assert json.loads((out / "config.json").read_text()) != {}
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_export_creates_missing_parents_and_removes_them_if_it_fails(run, tmp_path, monkeypatch):
    from lmlab.interop import runs as interop_runs

    deep = tmp_path / "new" / "deeper" / "hf"
    assert main(["export", str(run), "--out", str(deep)]) == 0
    assert (deep / "config.json").is_file()

    def broken(model, *args, **kwargs):
        raise OSError("disk full")

    before = tree(tmp_path)
    monkeypatch.setattr("transformers.PreTrainedModel.save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        interop_runs.export_run(run, tmp_path / "other" / "deeper" / "hf")
    assert tree(tmp_path) == before  # the parents it made are gone again


def _tiny_model():
    return build_model(ModelConfig(n_layer=1, n_head=1, d_model=8, context_len=4), 10)


def test_a_flipped_byte_of_the_same_size_is_refused_naming_the_file(tmp_path):
    model = _tiny_model()
    save_checkpoint(tmp_path / "last", model, None, {"step": 1})
    file = tmp_path / "last" / "model.safetensors"
    data = bytearray(file.read_bytes())
    data[-3] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"model.safetensors does not match the SHA-256 recorded"):
        load_weights(tmp_path / "last", _tiny_model())


def test_checkpoints_without_hashes_still_load(tmp_path):
    model = _tiny_model()
    save_checkpoint(tmp_path / "last", model, None, {"step": 3})
    meta_file = tmp_path / "last" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["sha256"]  # as written before hashes existed
    meta_file.write_text(json.dumps(meta))
    fresh = _tiny_model()
    load_weights(tmp_path / "last", fresh)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert read_meta(tmp_path / "last")["step"] == 3


def test_a_pickle_renamed_to_safetensors_is_never_unpickled(tmp_path):
    import pickle

    save_checkpoint(tmp_path / "last", _tiny_model(), None, {"step": 1})
    meta_file = tmp_path / "last" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["sha256"]
    meta_file.write_text(json.dumps(meta))
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "last" / "model.safetensors").write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(UserError, match="is not a readable safetensors file"):
        load_weights(tmp_path / "last", _tiny_model())
    assert not marker.exists()


def test_nan_metrics_become_json_null():
    from lmlab.tables import finite_or_none

    value = finite_or_none({"loss": float("nan"), "by_source": {"a": {"loss": float("inf"), "n": 1}}})
    assert json.dumps(value, allow_nan=False) == '{"loss": null, "by_source": {"a": {"loss": null, "n": 1}}}'
    import numpy as np

    plain = finite_or_none({"loss": np.float64(2.5), "n": np.int64(3), "bad": np.float32("nan")})
    assert plain == {"loss": 2.5, "n": 3, "bad": None} and type(plain["loss"]) is float and type(plain["n"]) is int


def test_manifest_says_why_two_runs_could_differ(run):
    m = json.loads((run / "manifest.json").read_text())
    assert m["torch"] == torch.__version__ and m["python"] == sys.version.split()[0]
    assert m["device"] == "cpu" and m["threads"] >= 1 and len(m["data_sha256"]) == 64
    assert m["config"]["model"]["d_model"] == 32 and m["config"]["train"]["max_steps"] == 4
    assert m["git_commit"] is None or len(m["git_commit"].split("+")[0]) == 40
    from lmlab.cpu import cpu_info

    assert m["cpu"]["model"] == cpu_info().model and m["cpu"]["features"] == list(cpu_info().features or [])
    assert m["precision"] == "fp32"  # tiny's; `auto` would be resolved to what the run used


def test_lock_file_and_marker_are_small_and_the_lock_is_released_after_training(run):
    assert json.loads((run / MARKER).read_text())["kind"] == "run"
    DirLock(run).acquire().release()  # train() released it in-process
    RunDir(run).lock().unlock()  # non-blocking (LOCK_NB): taking it at all proves no one holds it
