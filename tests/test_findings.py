"""A study's findings end to end: instruments on the best checkpoints (n/a for a model without
attention, a failing one recorded while the rest go on, done ones skipped on a re-run), claims
judged from the runs, the seed's table beside ours, the page, and `lmlab table A B`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lmlab.errors import UserError
from lmlab.study.runner import run_study
from lmlab.study.spec import Study

FAST = {"train.max_steps": 12, "eval.every": 6, "eval.max_tokens": 512, "model.n_layer": 1, "model.d_model": 16,
        "model.context_len": 16, "train.warmup_steps": 2}


def _study(**kw) -> Study:
    fields = dict(
        variants={"fast": {"train.lr": 1e-2}, "slow": {"train.lr": 1e-4},
                  "lstm": {"model.arch": "lstm", "train.lr": 1e-2}},
        overrides=dict(FAST), seeds=3,
        instruments=[{"kind": "analyze", "name": "attention", "windows": 4, "seeds": "all"},
                     {"kind": "ablate", "name": "bad_heads", "heads": "7.0", "variants": ["fast"]},
                     {"kind": "generate", "variants": ["fast"], "prompt": "The ", "max_new_tokens": 8}],
        claims=[{"id": "lr", "text": "the larger rate learns faster", "seed": "x.md, Results: 2.9 vs 3.6",
                 "test": "less", "a": "fast", "b": "slow"},
                {"id": "uniform_start", "text": "the first loss is near ln V", "test": "near",
                 "a": "fast:initial_loss_over_ln_v", "value": 1.0, "tolerance": 0.1},
                {"id": "lstm_attention", "text": "n/a for an LSTM", "test": "less",
                 "a": "lstm:attention.mean_entropy", "b": "fast:attention.mean_entropy"},
                {"id": "ablation", "text": "ablating a head costs loss", "test": "greater",
                 "a": "fast:bad_heads.ablated_loss", "b": "fast:bad_heads.loss"}],
        seed_tables=[{"title": "T", "source": "x.md, Results", "columns": ["model", "val loss"],
                      "rows": [["fast", 2.9], ["slow", 3.6]], "variants": ["fast", "slow"],
                      "ours": {"val loss": "best_val_loss"}}],
        setup="12 steps of a 16-wide model")
    fields.update(kw)
    return Study("f", "tiny", **fields)


@pytest.mark.slow
def test_a_study_runs_its_instruments_and_judges_its_claims(tmp_path, inproc):
    out = tmp_path / "s"
    outcome = run_study(_study(), out, 1, inproc)
    records = json.loads((out / "instruments.json").read_text())
    status = {(r["instrument"], r["run"]): r["status"] for r in records}
    assert status[("attention", "lstm-s0")] == "n/a"  # no attention in an LSTM: noted, not a failure
    assert status[("attention", "fast-s2")] == "done"
    assert status[("bad_heads", "fast-s0")] == "failed"  # layer 7 does not exist: recorded, the rest go on
    assert status[("generate", "fast-s0")] == "done"
    assert next(r for r in records if r["instrument"] == "generate")["text"].startswith("The ")
    claims = {r["id"]: r for r in json.loads((out / "claims.json").read_text())}
    assert claims["lr"]["verdict"] == "holds"  # 1e-2 vs 1e-4 over 12 steps: far beyond the noise
    assert claims["uniform_start"]["verdict"] == "holds"
    assert claims["lstm_attention"]["verdict"] == "not tested"
    assert claims["ablation"]["verdict"] == "not tested"
    tables = json.loads((out / "seed_tables.json").read_text())
    assert tables[0]["rows"][0]["val loss"] == 2.9 and "±" in tables[0]["rows"][0]["val loss · lmlab"]
    from lmlab.report.study_page import write_study_report

    page = write_study_report(out).read_text()  # what `lmlab study` writes at its end
    for text in ("Claims and verdicts", "x.md, Results: 2.9 vs 3.6", "the larger rate learns faster", "holds",
                 "Sanity checks"):
        assert text in page
    assert "claims (" in outcome.text and "12 steps of a 16-wide model" in outcome.text
    # A re-run trains nothing and measures nothing again, except the failed instrument (retried).
    before = (out / "instruments" / "fast-s1" / "attention" / "result.json").stat().st_mtime_ns
    run_study(_study(), out, 1, inproc)
    assert (out / "instruments" / "fast-s1" / "attention" / "result.json").stat().st_mtime_ns == before
    # Two studies side by side: the same claims, one verdict changed by hand in B's record.
    other = tmp_path / "b"
    other.mkdir()
    changed = [dict(r, verdict="does not hold") if r["id"] == "lr" else r
               for r in json.loads((out / "claims.json").read_text())]
    (other / "claims.json").write_text(json.dumps(changed))
    from lmlab.study.compare import compare_rows

    rows = {r["claim"]: r for r in compare_rows(json.loads((out / "claims.json").read_text()), changed)}
    assert rows["lr"] == {"claim": "lr", "A": "holds", "B": "does not hold", "same verdict": "no"}
    assert rows["uniform_start"]["same verdict"] == "yes"


def test_a_claim_naming_a_missing_variant_or_metric_is_refused_before_anything_is_written(tmp_path, inproc):
    bad = _study(claims=[{"id": "x", "text": "x", "test": "less", "a": "fast", "b": "medium"}])
    with pytest.raises(UserError, match=r"claim x names variant 'medium'; the study's variants: fast, slow, lstm"):
        run_study(bad, tmp_path / "s", 1, inproc)
    assert not (tmp_path / "s").exists()
    bad = _study(claims=[{"id": "x", "text": "x", "test": "less", "a": "fast:attention.entropy", "b": "slow"}])
    with pytest.raises(UserError, match=r"claim x names metric 'attention.entropy'"):
        run_study(bad, tmp_path / "s", 1, inproc)
    with pytest.raises(UserError, match=r"unknown instrument 'analyse'; valid instruments: ablate, analyze"):
        run_study(_study(instruments=[{"kind": "analyse"}]), tmp_path / "s", 1, inproc)
    with pytest.raises(UserError, match=r"instrument analyze \(analyze\): unknown parameter\(s\) window; valid"):
        run_study(_study(instruments=[{"kind": "analyze", "window": 3}]), tmp_path / "s", 1, inproc)
    assert not (tmp_path / "s").exists()


def test_cli_refuses_unknown_studies_sizes_and_bad_claims_in_one_line(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lmlab", *args], capture_output=True, text=True, cwd=tmp_path)

    r = cli("study", "nanogpt_scaling", "--dry-run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown study 'nanogpt_scaling'" in r.stderr
    r = cli("study", "minigpt", "--size", "huge", "--dry-run")
    assert r.returncode == 2 and "invalid choice: 'huge'" in r.stderr
    (tmp_path / "s.toml").write_text('[study]\nname = "s"\nbase = "tiny"\n[study.variants.a]\n"train.lr" = 1e-3\n'
                                     '[[study.claims]]\nid = "x"\ntext = "x"\ntest = "less"\na = "a"\nb = "b"\n')
    r = cli("study", "s.toml", "--out", "o")
    assert r.returncode == 2 and "claim x names variant 'b'" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()
    r = cli("table", "o", "o2", "o3")
    assert r.returncode == 2
