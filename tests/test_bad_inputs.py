"""Bad inputs, table-driven: every row is a mistake a user can make, and each must end with exit
code 2, exactly one line on stderr that names the thing (the row's `expect`), no traceback, and
the folder it ran in unchanged (paths, sizes, mtimes and content hashes compared before/after).

To add rows for a new verb, append `Case(...)`s to CASES (or call `add(...)`): `argv` may use
  {tmp}   the case's own empty folder (also the working directory, so default outputs land there)
  {run}   a private copy of a trained tiny run, inside {tmp} (damage it in `setup`)
  {good}  the shared trained run (read-only: never damage it)
`setup(tmp)` makes the files the case needs (after {run} is copied), before the "before" snapshot.
Rows with `subprocess=True` also run through a real `python -m lmlab` to prove no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from lmlab.cli import main
from tree import snapshot

REPO = Path(__file__).resolve().parents[1]
TINY = ["--train.max_steps=4", "--eval.every=2", "--eval.max_tokens=256", "--train.batch_size=4"]


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str  # a substring of the one-line message
    setup: Callable[[Path], None] | None = None
    subprocess: bool = False
    verb: str = field(init=False)

    def __post_init__(self) -> None:
        self.verb = self.argv[0]


CASES: list[Case] = []


def add(id: str, argv: list[str], expect: str, setup: Callable[[Path], None] | None = None,
        subprocess: bool = False) -> None:
    CASES.append(Case(id, argv, expect, setup, subprocess))


# ----------------------------------------------------------------------------- setups

def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return make


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        for s in setups:
            s(tmp)
    return make


def edit_meta(change: Callable[[dict], None], drop_hashes: bool = True) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        file = tmp / "run/checkpoints/last/meta.json"
        meta = json.loads(file.read_text())
        if drop_hashes:
            meta.pop("sha256", None)
        change(meta)
        file.write_text(json.dumps(meta))
    return make


def no_hashes(tmp: Path) -> None:
    edit_meta(lambda m: None)(tmp)


def flip_byte(tmp: Path) -> None:
    file = tmp / "run/checkpoints/last/model.safetensors"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x10
    file.write_bytes(bytes(data))


def truncate(name: str, keep: int = 100) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        file = tmp / "run" / name
        file.write_bytes(file.read_bytes()[:keep])
    return make


def replace_tensors(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        from safetensors.torch import load_file, save_file

        file = tmp / "run/checkpoints/last/model.safetensors"
        tensors = load_file(str(file))
        change(tensors)
        save_file(tensors, str(file))
        no_hashes(tmp)
    return make


def drop_first_tensor(tensors: dict) -> None:
    tensors.pop(sorted(tensors)[0])


def reshape_first_tensor(tensors: dict) -> None:
    import torch

    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(3, 3)


def pickle_as_safetensors(tmp: Path) -> None:
    import pickle

    (tmp / "run/checkpoints/last/model.safetensors").write_bytes(pickle.dumps({"w": [1.0] * 100}))
    no_hashes(tmp)


def edit_config(old: str, new: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        file = tmp / "run/config.toml"
        text = file.read_text()
        assert old in text, old
        file.write_text(text.replace(old, new))
    return make


def tokenizer_json(content: str) -> Callable[[Path], None]:
    return write("run/tokenizer/tokenizer.json", content)


def bigger_tokenizer(tmp: Path) -> None:
    file = tmp / "run/tokenizer/tokenizer.json"
    values = json.loads(file.read_text())
    values["chars"] = values["chars"] + "".join(chr(0x4E00 + i) for i in range(200))
    file.write_text(json.dumps(values))


def remove(path: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        target = tmp / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return make


def run_without_checkpoint(tmp: Path) -> None:
    write("half/.lmlab-run", '{"format": 1, "kind": "run"}')(tmp)
    (tmp / "half/config.toml").write_text((tmp / "run/config.toml").read_text())


def hf_folder(config: str | None, weights: bool = False, tokenizer: bool = True) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / "hf").mkdir()
        if config is not None:
            (tmp / "hf/config.json").write_text(config)
        if tokenizer:
            (tmp / "hf/tokenizer.json").write_text("{}")
        if weights:
            (tmp / "hf/model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return make


GPT2_CONFIG = json.dumps({"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2, "vocab_size": 50})

# ----------------------------------------------------------------------------- the table

# train: configs and values
add("train-malformed-toml", ["train", "{tmp}/bad.toml"], "bad.toml", write("bad.toml", "name = [\n"), subprocess=True)
add("train-toml-wrong-type", ["train", "{tmp}/c.toml"], "train.lr", write("c.toml", '[train]\nlr = "fast"\n'))
add("train-toml-unknown-section", ["train", "{tmp}/c.toml"], "nonsense", write("c.toml", "[nonsense]\nx = 1\n"))
add("train-wrong-type", ["train", "tiny", "--model.n_layer=abc"], "model.n_layer")
add("train-negative-lr", ["train", "tiny", "--train.lr=-1"], "train.lr")
add("train-unknown-optimizer", ["train", "tiny", "--train.optimizer=sgd"], "train.optimizer='sgd' is not known; valid: adamw, muon")
add("train-muon-with-fsdp", ["train", "tiny", "--train.optimizer=muon", "--train.parallel=fsdp"],
    "expected adamw with train.parallel=fsdp")
add("train-dropout-1.5", ["train", "tiny", "--model.dropout=1.5"], "model.dropout")
add("train-context-0", ["train", "tiny", "--model.context_len=0"], "model.context_len")
add("train-batch-0", ["train", "tiny", "--train.batch_size=0"], "train.batch_size")
add("train-n-head-not-dividing", ["train", "tiny", "--model.n_head=3"], "n_head")
add("train-n-kv-head-not-dividing", ["train", "tiny", "--model.n_head=4", "--model.n_kv_head=3"], "n_kv_head")
add("train-unknown-preset", ["train", "no_such_preset"], "unknown preset 'no_such_preset'")
add("train-unknown-component", ["train", "tiny", "--model.mlp=banana"], "model.mlp='banana'")
add("train-unknown-source-kind", ["train", "tiny", "--data.source=ftp"], "ftp")
add("train-unknown-tokenizer", ["train", "tiny", "--tokenizer.kind=words"], "tokenizer.kind='words'")
add("train-unknown-section", ["train", "tiny", "--optim.lr=1"], "unknown section 'optim'")
add("train-unknown-field", ["train", "tiny", "--model.wings=2"], "--model.wings")
add("train-override-without-value", ["train", "tiny", "--train.lr"], "--train.lr needs a value")
add("train-device-tpu", ["train", "tiny", "--train.device=tpu"], "train.device")
add("train-fp16-on-cpu", ["train", "tiny", "--train.precision=fp16", "--train.device=cpu"], "fp16")
add("train-bad-encoding-name", ["train", "tiny", "--data.encoding=klingon"], "data.encoding")
add("train-negative-skip-nonfinite", ["train", "tiny", "--train.skip_nonfinite=-1"], "train.skip_nonfinite")
# train: sizes that cannot fit, refused before the model is built or the run folder made (no machine holds them)
add("train-d-model-huge", ["train", "tiny", "--model.d_model=1000000", "--model.n_head=1"],
    "the model's weights, gradients and optimizer state take", subprocess=True)
add("train-n-layer-huge", ["train", "tiny", "--model.n_layer=10000000"], "GiB at its peak but")
add("train-context-absurd", ["train", "tiny", "--model.context_len=1000000000"], "expected at most 1,048,576 tokens")
add("train-hf-tokenizer-truncated", ["train", "tiny", "--tokenizer.kind=hf", "--tokenizer.path={tmp}/t.json", *TINY],
    "t.json is not a valid Hugging Face tokenizer.json (EOF while parsing", write("t.json", '{"version": "1.0", "tr'),
    subprocess=True)
# train: corpora
add("train-missing-corpus", ["train", "tiny", "--data", "{tmp}/nope.txt"], "nope.txt")
add("train-empty-corpus", ["train", "tiny", "--data", "{tmp}/e.txt", *TINY], "is empty", write("e.txt", " \n\n"))
add("train-binary-corpus", ["train", "tiny", "--data", "{tmp}/b.bin", *TINY], "looks binary",
    write("b.bin", b"\x00\x01\x02" * 500))
add("train-latin1-corpus", ["train", "tiny", "--data", "{tmp}/l.txt", *TINY], "data.encoding=latin-1",
    write("l.txt", "caf\u00e9 au lait, cr\u00e8me br\u00fbl\u00e9e\n".encode("latin-1") * 200), subprocess=True)
JSONL_CONFIG = '[[data.sources]]\nkind = "jsonl"\npath = "d.jsonl"\n[train]\nmax_steps = 4\n'
add("train-jsonl-broken-line", ["train", "{tmp}/c.toml", "--data.root={tmp}"], "d.jsonl:3: not valid JSON",
    both(write("c.toml", JSONL_CONFIG),
         write("d.jsonl", '{"text": "one two three"}\n{"text": "four five"}\n{"text": "six\n{"text": "seven"}\n')))
add("train-jsonl-missing-field", ["train", "{tmp}/c.toml", "--data.root={tmp}"], "field 'text'",
    both(write("c.toml", JSONL_CONFIG), write("d.jsonl", '{"body": "x"}\n' * 20)))
add("train-huge-line-tiny-corpus", ["train", "tiny", "--data", "{tmp}/one.txt", "--data.sources.0.docs=line", *TINY],
    "data.sources.0", write("one.txt", "x" * 300_000))
# train: run directories
add("train-run-dir-is-a-file", ["train", "tiny", "--run-dir", "{tmp}/f", *TINY], "is a file", write("f", "x"))
add("train-force-on-config-folder", ["train", "tiny", "--run-dir", ".", "--force", *TINY], "not made by lmlab",
    both(write("config.toml", 'name = "mine"\n'), write("notes.txt", "mine")), subprocess=True)
add("train-force-on-thesis", ["train", "tiny", "--run-dir", "{tmp}/work", "--force", *TINY], "not made by lmlab",
    both(write("work/thesis.txt", "chapter 1"), write("work/src/main.py", "print(1)")))
add("train-existing-run", ["train", "tiny", "--run-dir", "{run}", *TINY], "already holds files; use --resume")
add("train-resume-missing", ["train", "--resume", "{tmp}/nope"], "does not exist")
add("train-resume-file", ["train", "--resume", "{tmp}/f"], "is a file", write("f", "x"))
add("train-resume-with-overrides", ["train", "--resume", "{run}", "--train.lr=1"], "drop the preset")
add("train-resume-no-checkpoint", ["train", "--resume", "{tmp}/half"], "no checkpoint yet", run_without_checkpoint)
add("train-resume-edited-config", ["train", "--resume", "{run}"], "model.d_model is 64",
    edit_config("d_model = 32", "d_model = 64"))
add("train-resume-longer-context", ["train", "--resume", "{run}"], "model.context_len is 64",
    edit_config("context_len = 32", "context_len = 64"))
add("train-resume-tampered", ["train", "--resume", "{run}"], "does not match the SHA-256", flip_byte)
add("train-resume-foreign-state", ["train", "--resume", "{run}"], "no valid 'state'",
    edit_meta(lambda m: m.update(state={"alien": 1})))
add("train-resume-missing-state-file", ["train", "--resume", "{run}"], "state.safetensors is missing",
    remove("run/checkpoints/last/state.safetensors"))

# prepare
add("prepare-malformed-toml", ["prepare", "{tmp}/bad.toml"], "bad.toml", write("bad.toml", "[data\n"))
add("prepare-out-is-a-file", ["prepare", "tiny", "--out", "{tmp}/f"], "is a file", write("f", "x"))
add("prepare-missing-data", ["prepare", "tiny", "--data", "{tmp}/nope"], "nope")
add("prepare-val-fraction", ["prepare", "tiny", "--data.val_fraction=0.9"], "data.val_fraction")
add("prepare-test-fraction-unused", ["prepare", "wikitext2_bpe", "--data.test_fraction=0.1"],
    "data.test_fraction=0.1 has no effect")
add("prepare-empty-corpus", ["prepare", "tiny", "--data", "{tmp}/e.txt"], "is empty", write("e.txt", "\n"))
add("prepare-latin1", ["prepare", "tiny", "--data", "{tmp}/l.txt"], "not valid utf-8",
    write("l.txt", "\u00e9t\u00e9\n".encode("latin-1") * 100))

# eval: paths and values
add("eval-missing-run", ["eval", "{tmp}/nope"], "does not exist")
add("eval-run-is-a-file", ["eval", "{tmp}/f"], "is a file", write("f", "x"))
add("eval-not-a-run", ["eval", "{tmp}/d"], "no config.toml", write("d/x.txt", "x"))
add("eval-max-tokens-negative", ["eval", "{good}", "--max-tokens", "-5"], "max_tokens=-5")
add("eval-bad-checkpoint-name", ["eval", "{good}", "--checkpoint", "first"], "--checkpoint 'first' is not valid")
add("eval-device-tpu", ["eval", "{good}", "--device", "tpu"], "--device 'tpu' is not valid", subprocess=True)
add("eval-no-test-split", ["eval", "{good}", "--split", "test"], "no test split")
add("eval-overrides", ["eval", "{good}", "--train.lr=1"], "takes no config overrides")
add("eval-no-checkpoint", ["eval", "{tmp}/half"], "no checkpoint yet", run_without_checkpoint)
# eval: checkpoint corruptions
add("eval-flipped-bytes", ["eval", "{run}"], "model.safetensors does not match the SHA-256", flip_byte,
    subprocess=True)
add("eval-truncated-weights", ["eval", "{run}"], "model.safetensors does not match",
    truncate("checkpoints/last/model.safetensors"))
add("eval-truncated-weights-unhashed", ["eval", "{run}"], "is not a readable safetensors file",
    both(truncate("checkpoints/last/model.safetensors"), no_hashes))
add("eval-garbage-weights", ["eval", "{run}"], "is not a readable safetensors file",
    both(write("run/checkpoints/last/model.safetensors", b"garbage" * 50), no_hashes))
add("eval-pickle-renamed", ["eval", "{run}"], "is not a readable safetensors file", pickle_as_safetensors,
    subprocess=True)
add("eval-missing-tensor", ["eval", "{run}"], "does not fit the model", replace_tensors(drop_first_tensor))
add("eval-wrong-shape", ["eval", "{run}"], "has shape (3, 3)", replace_tensors(reshape_first_tensor))
add("eval-meta-invalid-json", ["eval", "{run}"], "meta.json is not valid JSON",
    write("run/checkpoints/last/meta.json", '{"format": 1, "step": '))
add("eval-meta-foreign-format", ["eval", "{run}"], "has format 99", edit_meta(lambda m: m.update(format=99)))
add("eval-meta-no-step", ["eval", "{run}"], "no valid 'step'", edit_meta(lambda m: m.pop("step")))
add("eval-meta-not-object", ["eval", "{run}"], "is not a JSON object", write("run/checkpoints/last/meta.json", "[1]"))
add("eval-meta-step-edited", ["eval", "{run}"], "says step 99 but its training state says step 4",
    edit_meta(lambda m: m.update(step=99)), subprocess=True)
add("generate-meta-steps-edited", ["generate", "{run}"], "model.safetensors was saved at step 4",
    edit_meta(lambda m: (m.update(step=99), m["state"].update(step=99))))
add("train-resume-meta-steps-edited", ["train", "--resume", "{run}"], "model.safetensors was saved at step 4",
    edit_meta(lambda m: (m.update(step=2), m["state"].update(step=2))))
add("eval-missing-weights-file", ["eval", "{run}"], "its checkpoints were deleted after it saved",
    remove("run/checkpoints/last/model.safetensors"))
# eval: tokenizer and config that no longer match
add("eval-truncated-tokenizer", ["eval", "{run}"], "not a valid lmlab tokenizer file",
    truncate("tokenizer/tokenizer.json", 20))
add("eval-wrong-kind-tokenizer", ["eval", "{run}"], "unknown kind 'sentencepiece'",
    tokenizer_json('{"kind": "sentencepiece", "model": "x"}'))
add("eval-tokenizer-missing-field", ["eval", "{run}"], "not a valid lmlab tokenizer file",
    tokenizer_json('{"kind": "char"}'))
add("eval-tokenizer-too-big", ["eval", "{run}"], "does not belong to this model", bigger_tokenizer)
add("eval-tokenizer-swapped", ["eval", "{run}"], "not the tokenizer this checkpoint was trained with",
    tokenizer_json('{"kind": "char", "chars": "abcdefghijklmnopqrstuvwxyz "}'))
add("eval-someone-elses-config", ["eval", "{run}"], "was edited after the checkpoint was saved",
    edit_config("n_layer = 2", "n_layer = 3"))
add("eval-config-malformed", ["eval", "{run}"], "config.toml", write("run/config.toml", "name = \n"))

# generate
add("generate-top-k-negative", ["generate", "{good}", "--top-k", "-5"], "top_k=-5")
add("generate-temperature-nan", ["generate", "{good}", "--temperature", "nan"], "temperature=nan", subprocess=True)
add("generate-temperature-negative", ["generate", "{good}", "--temperature", "-1"], "temperature=-1.0")
add("generate-top-p-zero", ["generate", "{good}", "--top-p", "0"], "--top-p=0.0")
add("generate-max-new-tokens-negative", ["generate", "{good}", "--max-new-tokens", "-1"], "--max-new-tokens=-1")
add("generate-unknown-prompt-chars", ["generate", "{good}", "--prompt", "snow\u2603man\u2764"], "'\u2603', '\u2764'")
add("generate-quantize-int4", ["generate", "{good}", "--quantize", "int4"], "--quantize: invalid choice: 'int4'")
add("generate-missing-run", ["generate", "{tmp}/nope"], "does not exist")
add("generate-tampered", ["generate", "{run}", "--prompt", "a"], "does not match the SHA-256", flip_byte)
add("generate-device-tpu", ["generate", "{good}", "--device", "tpu"], "--device 'tpu' is not valid")

# export
add("export-into-user-folder", ["export", "{good}", "--out", "{tmp}/mine"], "not an lmlab export",
    write("mine/config.json", '{"mine": true}'))
add("export-force-into-user-folder", ["export", "{good}", "--out", "{tmp}/mine", "--force"], "not an lmlab export",
    write("mine/config.json", '{"mine": true}'))
add("export-to-a-file", ["export", "{good}", "--out", "{tmp}/f"], "is a file", write("f", "x"))
add("export-existing-export", ["export", "{good}", "--out", "{tmp}/hf"], "use --force",
    both(write("hf/.lmlab-export", '{"format": 1, "kind": "export"}'), write("hf/config.json", "{}")))
add("export-bad-format", ["export", "{good}", "--out", "{tmp}/o", "--format", "onnx"], "--format: invalid choice: 'onnx'")
add("export-parent-is-a-file", ["export", "{good}", "--out", "{tmp}/f/b/c"], "is a file, not a folder",
    write("f", "x"))
add("export-tampered", ["export", "{run}", "--out", "{tmp}/o"], "does not match the SHA-256", flip_byte)

# import
add("import-missing", ["import", "{tmp}/nope", "--run-dir", "{tmp}/r"], "missing")
add("import-file", ["import", "{tmp}/f", "--run-dir", "{tmp}/r"], "is a file", write("f", "x"))
add("import-no-config", ["import", "{tmp}/hf", "--run-dir", "{tmp}/r"], "no config.json", hf_folder(None))
add("import-no-weights", ["import", "{tmp}/hf", "--run-dir", "{tmp}/r"], "no *.safetensors weights",
    hf_folder(GPT2_CONFIG), subprocess=True)
add("import-bad-config-json", ["import", "{tmp}/hf", "--run-dir", "{tmp}/r"], "config.json is not valid JSON",
    hf_folder("{oops", weights=True))
add("import-unsupported-family", ["import", "{tmp}/hf", "--run-dir", "{tmp}/r"], "model_type 'bert'",
    hf_folder('{"model_type": "bert"}', weights=True))
add("import-no-tokenizer", ["import", "{tmp}/hf", "--run-dir", "{tmp}/r"], "no tokenizer.json",
    hf_folder(GPT2_CONFIG, weights=True, tokenizer=False))

# report
add("report-missing", ["report", "{tmp}/nope"], "does not exist")
add("report-file", ["report", "{tmp}/f"], "is a file", write("f", "x"))
add("report-not-a-run", ["report", "{tmp}/d"], "no config.toml", write("d/notes.txt", "x"))

# presets, demo
add("presets-overrides", ["presets", "--model.n_layer=2"], "takes no config overrides")
add("presets-unknown-flag", ["presets", "--bogus"], "--bogus")
add("export-without-out", ["export", "{good}"], "--out")

# analysis verbs load runs as every verb does, and check every argument before writing anything
add("analyze-edited-config", ["analyze", "{run}"], "was edited after the checkpoint was saved",
    edit_config("n_layer = 2", "n_layer = 3"))
add("probe-swapped-tokenizer", ["probe", "{run}", "--neighbours", "a"], "not the tokenizer this checkpoint",
    tokenizer_json('{"kind": "char", "chars": "abcdefghijklmnopqrstuvwxyz "}'))
add("sample-edited-config", ["sample", "{run}", "--prompt", "a"], "was edited after the checkpoint was saved",
    edit_config("n_layer = 2", "n_layer = 3"))
add("analyze-top-k-negative", ["analyze", "{run}", "--prompt", "ab", "--top-k", "-1"], "--top-k -1")
add("analyze-all-checkpoints-none-kept", ["analyze", "{run}", "--all-checkpoints"], "keeps no step checkpoints")
add("analyze-out-is-a-file", ["analyze", "{run}", "--out", "{tmp}/f"], "/f is a file; give a folder", write("f", "x"))
add("analyze-prompt-unknown-chars", ["analyze", "{run}", "--prompt", "snow\u2603man"], "does not know: '\u2603'")
add("sample-prompt-unknown-chars", ["sample", "{good}", "--prompt", "snow\u2603man"], "does not know: '\u2603'")
add("analyze-windows-beyond-memory", ["analyze", "{run}", "--windows", "100000000000"],
    "--windows 100,000,000,000 needs about")
add("analyze-ablate-empty", ["analyze", "{run}", "--ablate", ""], "is not LAYER.HEAD")
add("generate-ablate-heads-empty", ["generate", "{good}", "--ablate-heads", ""], "is not LAYER.HEAD")
add("sample-prompts-not-utf8", ["sample", "{good}", "--prompts", "{tmp}/p.txt"], "not valid UTF-8 (byte 0xff",
    write("p.txt", b"ab\n\xff cd\n"))
# zero-shot task files: rows are checked, never coerced
add("eval-task-not-utf8", ["eval", "{good}", "--tasks", "copa", "--tasks-dir", "{tmp}/t"], "not valid UTF-8",
    write("t/copa/copa.jsonl", b'{"query": "\xff", "choices": ["a", "b"], "gold": 0}\n'))
add("eval-task-choices-a-string", ["eval", "{good}", "--tasks", "copa", "--tasks-dir", "{tmp}/t"],
    "choices must be a non-empty list", write("t/copa/copa.jsonl", '{"query": "a", "choices": "cd", "gold": 0}\n'))
add("eval-task-gold-float", ["eval", "{good}", "--tasks", "copa", "--tasks-dir", "{tmp}/t"],
    "gold must be an integer", write("t/copa/copa.jsonl", '{"query": "a", "choices": ["c", "d"], "gold": 1.7}\n'))
add("eval-task-empty-choice", ["eval", "{good}", "--tasks", "copa", "--tasks-dir", "{tmp}/t"],
    "non-empty strings", write("t/copa/copa.jsonl", '{"query": "a", "choices": ["c", ""], "gold": 0}\n'))
add("sweep-a-million-seeds", ["sweep", "tiny", "--grid", "model.n_layer=1,2", "--seeds", "1000000", "--dry-run"],
    "2 variants x 1,000,000 seeds = 2,000,000 runs; at most 10,000 runs per study")
add("lm-eval-unknown-task", ["lm-eval", "--model", "lmlab", "--model_args", "run={good}", "--tasks", "nosuchtask"],
    "Tasks not found: nosuchtask")
# sweep and study: --data as train takes it, and a corpus that does not read as text refused before any folder
add("sweep-binary-corpus", ["sweep", "tiny", "--data", "{tmp}/b.bin", "--grid", "model.n_layer=1,2"], "looks binary",
    write("b.bin", b"\x00\x01\x02" * 500), subprocess=True)
add("sweep-binary-data-path", ["sweep", "tiny", "--grid", "model.n_layer=1,2", "--data.source=text",
                               "--data.path={tmp}/b.bin"], "looks binary", write("b.bin", b"\x00\x01\x02" * 500))
add("sweep-latin1-corpus", ["sweep", "tiny", "--data", "{tmp}/l.txt", "--grid", "model.n_layer=1,2"],
    "not valid utf-8", write("l.txt", "caf\u00e9\n".encode("latin-1") * 200))
add("sweep-missing-corpus", ["sweep", "tiny", "--data", "{tmp}/nope.txt", "--grid", "model.n_layer=1,2"],
    "nope.txt: no such file or directory")
add("study-empty-corpus", ["study", "{tmp}/s.toml", "--data", "{tmp}/e.txt"], "is empty",
    both(write("s.toml", 'name = "s"\nbase = "tiny"\n[grid]\n"model.n_layer" = [1, 2]\n'), write("e.txt", "\n\n")))
add("demo-run-dir-is-a-file", ["demo", "--run-dir", "{tmp}/f"], "is a file", write("f", "x"))
add("demo-into-user-folder", ["demo", "--run-dir", "{tmp}/mine"], "not made by lmlab", write("mine/thesis.txt", "x"))
add("demo-bad-override", ["demo", "--model.n_head=3"], "n_head")


# ----------------------------------------------------------------------------- the harness



@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs") / "good"
    assert main(["train", "tiny", "--run-dir", str(root), *TINY]) == 0
    return root


def prepare_case(case: Case, good: Path, tmp: Path) -> list[str]:
    if any("{run}" in a for a in case.argv) or case.setup is not None:
        shutil.copytree(good, tmp / "run")
    if case.setup is not None:
        case.setup(tmp)
    if not any("{run}" in a for a in case.argv):
        shutil.rmtree(tmp / "run", ignore_errors=True)
    return [a.replace("{tmp}", str(tmp)).replace("{run}", str(tmp / "run")).replace("{good}", str(good))
            for a in case.argv]


def check_message(err: str, case: Case) -> None:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("lmlab: error: "), lines[0]
    assert case.expect in lines[0], f"{case.expect!r} not in {lines[0]!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, good, tmp_path, monkeypatch, capsys):
    argv = prepare_case(case, good, tmp_path)
    good_before, before = snapshot(good), snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    check_message(err, case)
    assert snapshot(tmp_path) == before
    assert snapshot(good) == good_before
    if case.subprocess:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "lmlab", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        check_message(done.stderr, case)
        assert snapshot(tmp_path) == before


def test_the_table_covers_every_verb_with_at_least_60_cases():
    verbs = {c.verb for c in CASES}
    assert {"train", "prepare", "eval", "generate", "export", "import", "report", "presets", "demo"} <= verbs
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
