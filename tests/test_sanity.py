"""lmlab.sanity: every check passes on a run folder built to pass it and fails (or warns) on one
built to fail it; real tiny runs show a biased init, a validation file copied into training and a
Markov source's entropy floor; and LLM-Lite's pad mistake (examples/llm_lite_pad_mistake.toml)
trained for a few dozen steps reports a perplexity far below the honest one, which the checks fail."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmlab.cli import main
from lmlab.errors import UserError
from lmlab.sanity import CHECKS, check_rows, run_checks, sanity_rows, title, worst

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "llm_lite_pad_mistake.toml"
V = 100


def make_run(root: Path, config: str = "", records: list[dict] = (), stats: dict | None = None) -> Path:
    """A run folder holding only what the checks read: config.toml, metrics.jsonl, data/stats.json."""
    root.mkdir(parents=True)
    (root / "config.toml").write_text(f'name = "made"\n[model]\nvocab_size = {V}\n{config}')
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if stats is not None:
        (root / "data").mkdir()
        (root / "data" / "stats.json").write_text(json.dumps(stats))
    return root


def status(run: Path, name: str) -> str:
    return next(c for c in run_checks(run) if c.name == name).status


def evals(loss: float, **extra) -> dict:
    return {"kind": "eval", "step": 10, "val_loss": loss, "val_perplexity": math.exp(loss), "val_tokens": 1000,
            **extra}


def source(name: str = "text", **extra) -> dict:
    return {"name": name, "kind": "text", "val_tokens": 1300, "val_words": 1000, **extra}


@pytest.mark.parametrize("loss, expected", [(math.log(V) + 0.1, "ok"), (math.log(V) - 0.4, "ok"),
                                            (math.log(V) + 2.0, "fail"), (math.log(V) - 1.5, "warn")])
def test_initial_loss_near_ln_v(tmp_path, loss, expected):
    run = make_run(tmp_path / "r", records=[{"kind": "init", "step": 0, "loss": loss, "vocab_size": V}])
    assert status(run, "initial_loss") == expected
    assert status(make_run(tmp_path / "none"), "initial_loss") == "n/a"  # a count-based model records none


@pytest.mark.parametrize("found, expected", [(0, "ok"), (4, "ok"), (10, "warn"), (400, "fail")])
def test_validation_windows_found_in_training(tmp_path, found, expected):
    counting = {"windows": 500, "found": 500}  # generated: its runs of numbers repeat by construction
    stats = {"overlap": {"window": 28, "val": {"text": {"windows": 1000, "found": found}, "counting": counting}},
             "sources": [source(), source("counting", kind="synthetic", generated=True)]}
    assert status(make_run(tmp_path / "r", stats=stats), "val_not_in_train") == expected
    assert status(make_run(tmp_path / "old", stats={}), "val_not_in_train") == "n/a"
    test_split = {"overlap": {"window": 28, "val": {"text": {"windows": 1000, "found": 0}},
                              "test": {"text": {"windows": 1000, "found": 900}}}}
    assert status(make_run(tmp_path / "test", stats=test_split), "val_not_in_train") == "fail"


def test_pads_never_scored(tmp_path):
    padded = {"layout": {"layout": "pad", "padded_rows": 40}}
    ok = make_run(tmp_path / "ok", records=[evals(5.0, val_pad_targets=0)], stats=padded)
    scored = make_run(tmp_path / "scored", records=[evals(0.3, val_pad_targets=800)], stats=padded)
    switched = make_run(tmp_path / "switch", '[data]\nlayout = "pad"\nscore_pads = true\n', stats=padded)
    packed = make_run(tmp_path / "pack", records=[evals(5.0)], stats={"layout": {"layout": "pack", "padded_rows": 0}})
    unrecorded = make_run(tmp_path / "old", records=[evals(5.0)], stats=padded)
    assert [status(r, "pads_not_scored") for r in (ok, scored, switched, packed, unrecorded)] == \
        ["ok", "fail", "fail", "n/a", "warn"]
    check = next(c for c in run_checks(scored) if c.name == "pads_not_scored")
    assert "800 of 1,000 scored targets were padding (80.0%)" in check.measured


def test_perplexity_consistent_with_loss(tmp_path):
    ok = make_run(tmp_path / "ok", records=[evals(2.0), {"kind": "epoch", "val_loss": 1.5,
                                                         "val_perplexity": math.exp(1.5)}])
    base2 = make_run(tmp_path / "base2", records=[evals(2.0), {**evals(1.5), "val_perplexity": 2 ** 1.5}])
    assert status(ok, "perplexity_is_exp_loss") == "ok" and status(base2, "perplexity_is_exp_loss") == "fail"
    assert status(make_run(tmp_path / "none"), "perplexity_is_exp_loss") == "n/a"


def test_loss_above_a_computable_floor(tmp_path):
    markov = {"name": "markov", "kind": "synthetic", "generated": True, "val_tokens": 500,
              "entropy_bits_per_symbol": 2.0}
    one = {"sources": [markov]}
    above = make_run(tmp_path / "above", records=[evals(1.5, val_bits_per_byte=2.1)], stats=one)
    noise = make_run(tmp_path / "noise", records=[evals(1.5, val_bits_per_byte=1.95)], stats=one)
    below = make_run(tmp_path / "below", records=[evals(0.5, val_bits_per_byte=0.6)], stats=one)
    mixed = {"sources": [markov, source()]}  # several val sources: each one's own bits per byte
    by = make_run(tmp_path / "by", records=[evals(1.0, val_by_source={"markov": {"bits_per_byte": 0.7},
                                                                     "text": {"bits_per_byte": 3.0}})], stats=mixed)
    text = make_run(tmp_path / "text", records=[evals(1.0)], stats={"sources": [source()]})
    assert [status(r, "loss_above_floor") for r in (above, noise, below, by, text)] == \
        ["ok", "ok", "fail", "fail", "n/a"]
    assert "unigram entropy is not a lower bound" in next(c for c in run_checks(text)
                                                          if c.name == "loss_above_floor").message


def test_word_perplexity_near_one_on_natural_text_is_leakage(tmp_path):
    plausible = make_run(tmp_path / "ok", records=[evals(4.5)], stats={"sources": [source()]})
    leaked = make_run(tmp_path / "leak", records=[evals(0.16)], stats={"sources": [source()]})  # LLM-Lite's number
    generated = make_run(tmp_path / "gen", records=[evals(0.01)],
                         stats={"sources": [source("counting", kind="synthetic", generated=True)]})
    old = make_run(tmp_path / "old", records=[evals(0.16)], stats={"sources": [{"name": "text", "val_tokens": 9}]})
    assert [status(r, "word_perplexity") for r in (plausible, leaked, generated, old)] == ["ok", "fail", "n/a", "n/a"]
    check = next(c for c in run_checks(leaked) if c.name == "word_perplexity")
    assert check.measured.startswith("1.23 per word") and "pads counted as targets" in check.message


def test_rows_for_tables_and_for_a_study_page(tmp_path):
    good = make_run(tmp_path / "good", records=[{"kind": "init", "step": 0, "loss": math.log(V)}, evals(4.5)],
                    stats={"sources": [source()]})
    bad = make_run(tmp_path / "bad", records=[{"kind": "init", "step": 0, "loss": 9.0}, evals(0.16)],
                   stats={"sources": [source()]})
    rows = check_rows(run_checks(bad))
    assert [r["check"] for r in rows] == [title(n) for n in CHECKS]
    assert set(rows[0]) == {"check", "status", "measured", "expected", "message"}
    study = sanity_rows([good, bad])
    assert [r["run"] for r in study] == ["good", "bad"] and [r["status"] for r in study] == ["ok", "fail"]
    assert study[1]["initial_loss"] == "fail" and "word_perplexity: not credible" in study[1]["problems"]
    assert worst(run_checks(good)) == "ok" and study[0]["problems"] == ""
    with pytest.raises(UserError, match="not a run directory"):
        run_checks(tmp_path)


def test_sanity_imports_no_torch(tmp_path):
    run = make_run(tmp_path / "r", records=[evals(2.0)])
    code = (f"import sys; from lmlab.sanity import run_checks; run_checks({str(run)!r}); "
            f"print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_window_hashes_are_exact_and_find_copied_text():
    from lmlab.data.overlap import found_in, window_for, window_hashes

    rng = np.random.default_rng(0)
    train = rng.integers(0, 500, 5000).astype(np.uint16)
    P, W = 0x9E3779B97F4A7C15, 16
    brute = [sum((int(t) + 1) * pow(P, j, 1 << 64) for j, t in enumerate(train[i:i + W])) % (1 << 64)
             for i in range(0, 4985, 331)]
    assert window_hashes(train, W)[::331].tolist() == brute
    held_out = np.concatenate([train[100:300], rng.integers(0, 500, 300).astype(np.uint16)])
    found = found_in(window_hashes(held_out, W), [train[:2000], train[2000:]], W)
    assert found.sum() == 200 - W + 1 and found[:200 - W + 1].all()  # the copied stretch, nothing else
    assert window_for(1.0) == 100 and window_for(4.0) == 25 and window_for(1000.0) == 8


# --- real runs --------------------------------------------------------------------------------

TINY = ["--train.progress=false", "--train.max_steps=2", "--eval.every=2", "--eval.max_tokens=1024"]
WIDTHS = ["--model.n_layer=1", "--model.d_model=32", "--model.n_head=2", "--model.context_len=32",
          "--train.batch_size=8", "--train.precision=fp32"]


def test_a_real_biased_init_fails_and_the_default_passes(tmp_path, shakespeare):
    for init, expected in (("gpt2", "ok"), ("torch", "fail")):  # torch: N(0, 1) embeddings, a tied head
        run = tmp_path / init
        assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run), *TINY,
                     f"--model.init={init}"]) == 0
        assert status(run, "initial_loss") == expected, init
        first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
        assert first["kind"] == "init" and first["step"] == 0 and first["ln_vocab"] == pytest.approx(math.log(67))


def test_a_validation_file_copied_into_training_fails(tmp_path, shakespeare):
    config = tmp_path / "copied.toml"
    config.write_text(f'name = "tiny"\n[[data.sources]]\nkind = "text"\npath = "{shakespeare}"\nsplit = "train"\n'
                      f'[[data.sources]]\nkind = "text"\nname = "copy"\npath = "{shakespeare}"\nsplit = "val"\n'
                      f'max_tokens = 20000\n')
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), *WIDTHS, *TINY]) == 0
    check = next(c for c in run_checks(run) if c.name == "val_not_in_train")
    # 20,000 tokens of the file, in windows of 100 characters
    assert check.status == "fail" and check.measured == "val copy: 19,901 of 19,901 (100.00%)"


def test_a_markov_source_is_not_predicted_below_its_entropy_rate(tmp_path):
    config = tmp_path / "markov.toml"
    config.write_text('name = "tiny"\n[[data.sources]]\nkind = "synthetic"\ngenerator = "markov"\nn_docs = 400\n'
                      'symbols = 8\norder = 1\nalpha = 0.3\n')
    run = tmp_path / "markov"
    assert main(["train", str(config), "--run-dir", str(run), *WIDTHS, *TINY, "--train.max_steps=40",
                 "--eval.every=40", "--train.lr=1e-2"]) == 0
    check = next(c for c in run_checks(run) if c.name == "loss_above_floor")
    assert check.status == "ok" and check.measured.startswith("markov: ")
    assert status(run, "word_perplexity") == "n/a"  # generated text is not held to a word perplexity


# --- LLM-Lite's pad mistake, on purpose -----------------------------------------------------

# The example at tiny widths: a 512-token BPE, the first WikiText-2 lines, rows of 513 (mostly padding).
SMALL = ["--train.progress=false", "--tokenizer.vocab_size=512", "--data.sources.0.max_docs=2000",
         "--data.sources.1.max_docs=300", "--model.n_layer=1", "--model.n_head=2", "--model.d_model=32",
         "--model.context_len=512", "--train.batch_size=4", "--train.lr=1e-2", "--train.warmup_steps=5",
         "--eval.max_tokens=4096", "--train.precision=fp32"]


def honest_perplexity(run: Path) -> float:
    """The same checkpoint evaluated with padding masked out."""
    from lmlab.data.prepare import prepare
    from lmlab.eval import evaluate
    from lmlab.load import load_run

    loaded = load_run(run, "last", "cpu")
    cfg = loaded.cfg.replace(data={"score_pads": False})
    parts = prepare(cfg, loaded.tokenizer, progress=False).splits["val"]
    return evaluate(loaded.model, parts, loaded.tokenizer, cfg.model.context_len, 4, 4096)["perplexity"]


def test_llm_lite_pad_mistake_collapses_the_perplexity_and_fails_the_checks(tmp_path, shared_data):
    mistake, fixed = tmp_path / "mistake", tmp_path / "fixed"
    assert main(["train", str(EXAMPLE), "--run-dir", str(mistake), *SMALL, "--train.max_steps=30",
                 "--eval.every=30"]) == 0
    reported = [json.loads(x) for x in (mistake / "metrics.jsonl").read_text().splitlines()][-1]
    assert reported["kind"] == "eval" and reported["val_pad_targets"] > reported["val_tokens"] / 2
    assert reported["val_perplexity"] < honest_perplexity(mistake) / 10  # pads scored: far below the honest one
    checks = {c.name: c for c in run_checks(mistake)}
    assert checks["pads_not_scored"].status == "fail" and "data.score_pads = true" in checks["pads_not_scored"].message
    assert main(["report", str(mistake)]) == 0
    page = (mistake / "report.html").read_text()
    assert '<section id="sanity">' in page and "checks FAIL (pads never scored" in page

    assert main(["train", str(EXAMPLE), "--run-dir", str(fixed), *SMALL, "--train.max_steps=10", "--eval.every=10",
                 "--data.score_pads=false"]) == 0
    checks = {c.name: c.status for c in run_checks(fixed)}
    assert checks["pads_not_scored"] == "ok" and checks["word_perplexity"] == "ok"
    assert checks["val_not_in_train"] == "ok" and checks["initial_loss"] == "ok"
    honest = [json.loads(x) for x in (fixed / "metrics.jsonl").read_text().splitlines()][-1]
    assert honest["val_pad_targets"] == 0 and honest["val_perplexity"] > 10 * reported["val_perplexity"]
