"""`lmlab report` on a real run and on a study directory: the page's content, its markdown twin,
bad input, and the page opened from disk in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import browser
from lmlab.cli import main
from lmlab.report.load import read_run_page

RUN_SECTIONS = ["overview", "sanity", "config", "model", "data", "training", "evaluation", "samples", "analysis", "sampling"]
STUDY_SECTIONS = ["plan", "results", "curves", "scaling", "sanity", "runs"]

CONFIG = """name = "tiny"
[model]
n_layer = 2
n_head = 2
d_model = 32
context_len = 32
[train]
max_steps = 24
batch_size = 8
lr = 3e-3
warmup_steps = 4
precision = "fp32"
progress = false
[eval]
every = 8
max_tokens = 2048
[[data.sources]]
kind = "text"
path = "tinyshakespeare/input.txt"
weight = 0.8
[[data.sources]]
kind = "synthetic"
generator = "counting"
n_docs = 300
weight = 0.2
"""


def add_other_branches_files(run: Path) -> None:
    """What evaltasks and analysis write into a run (CONTRACTS.md), in their documented shapes."""
    (run / "eval").mkdir()
    (run / "eval" / "tasks.json").write_text(json.dumps({"tasks": {
        "arc_easy": {"acc": 0.27, "acc_stderr": 0.031, "acc_norm": 0.29, "acc_norm_stderr": 0.032, "chance": 0.25,
                     "items": 200, "truncated": 0},
        "boolq": {"acc": 0.55, "acc_stderr": 0.035, "acc_norm": 0.55, "acc_norm_stderr": 0.035, "chance": 0.5,
                  "items": 200, "truncated": 3}}, "checkpoint": "last", "limit": 200}))
    (run / "analysis").mkdir()
    rows = [{"layer": layer, "head": head, "entropy": 1.0 + layer + 0.1 * head, "entropy_norm": 0.5 + 0.1 * head,
             "sparsity": 0.2, "max_weight": 0.6, "mean_distance": 3.0 + head} for layer in range(2) for head in range(2)]
    with open(run / "analysis" / "attention.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + [{**rows[0], "layer": "all", "head": "mean", "entropy": 1.6}])  # a summary row
    (run / "analysis" / "attention.json").write_text(json.dumps({"heads": rows, "model_mean_entropy": 1.6}))
    (run / "analysis" / "ablation.json").write_text(json.dumps({"baseline_loss": 3.1, "rows": [
        {"layer": 0, "head": 1, "loss": 3.3, "delta": 0.2}]}))
    shutil.copy(run / "loss.png", run / "analysis" / "attention_maps.png")
    (run / "samples" / "sampling.json").write_text(json.dumps({"rows": [
        {"temperature": 0.5, "top_k": 0, "distinct_2": 0.41, "repetition": 0.12},
        {"temperature": 1.0, "top_k": 40, "distinct_2": 0.63, "repetition": 0.05}]}))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data) -> Path:
    """A real run of the tiny preset on a two-source mixture, with samples and other branches' files."""
    base = tmp_path_factory.mktemp("report")
    (base / "tiny.toml").write_text(CONFIG)
    run = base / "run"
    assert main(["train", str(base / "tiny.toml"), "--run-dir", str(run)]) == 0
    (run / "samples").mkdir(exist_ok=True)
    (run / "samples" / "before.txt").write_text("xq<untrained & noisy>\n")
    (run / "samples" / "after.txt").write_text("ROMEO: the king\n")
    add_other_branches_files(run)
    assert main(["report", str(run)]) == 0
    return run


def make_study(root: Path, run: Path) -> Path:
    """A study directory in the shape CONTRACTS.md gives, its runs copied from a real run."""
    root.mkdir()
    (root / ".lmlab-study").write_text("lmlab study\n")
    (root / "study.toml").write_text('[study]\nname = "widths"\nbase = "tiny"\nseeds = [0, 1]\n'
                                     '[study.budget]\n"train.max_steps" = 24\n[study.grid]\n"model.d_model" = [32, 64]\n'
                                     '[[plan]]\nrun = "d_model-32-s0"\nvariant = "d_model-32"\nseed = 0\n')
    results, records = [], [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for variant, width, shift in (("d_model-32", 32, 0.0), ("d_model-64", 64, -0.15)):
        for seed in (0, 1):
            name = f"{variant}-s{seed}"
            dst = root / "runs" / name
            shutil.copytree(run, dst, ignore=shutil.ignore_patterns("checkpoints", "report.*", "figures"))
            lines = [{**r, "val_loss": r["val_loss"] + shift + 0.01 * seed} if r["kind"] == "eval" else r
                     for r in records]
            (dst / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
            best = min(r["val_loss"] for r in lines if r["kind"] == "eval")
            results.append({"run": name, "variant": variant, "seed": seed, "model.d_model": width,
                            "params_non_embedding": 30000 * width // 32, "flops": 2e9 * width / 32,
                            "best_val_loss": best, "status": "done", "error": ""})
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    (root / "aggregate.json").write_text(json.dumps({"baseline": "d_model-32", "metric": "val_loss", "variants": [
        {"variant": "d_model-32", "n": 2, "val_loss_mean": 3.70, "ci_low": 3.66, "ci_high": 3.74, "diff": 0.0,
         "p_value": None, "test": "", "noise_floor": 0.007, "verdict": "baseline"},
        {"variant": "d_model-64", "n": 2, "val_loss_mean": 3.55, "ci_low": 3.51, "ci_high": 3.59, "diff": -0.15,
         "p_value": 0.004, "test": "welch", "noise_floor": 0.02, "verdict": "better, beyond the noise floor"}]}))
    (root / "scaling.json").write_text(json.dumps({
        "params_non_embedding": {"points": 4, "a": 5.0, "alpha": 0.08, "alpha_ci": [0.05, 0.11], "c": 1.0},
        "flops": {"points": 2, "error": "a power law with an offset needs at least 3 sizes"}}))
    (root / "plots").mkdir()
    shutil.copy(run / "loss.png", root / "plots" / "bars.png")
    return root


@pytest.fixture(scope="module")
def study_dir(run_dir, tmp_path_factory) -> Path:
    study = make_study(tmp_path_factory.mktemp("study") / "width", run_dir)
    assert main(["report", str(study)]) == 0
    return study


def test_run_page_holds_every_part(run_dir):
    page = (run_dir / "report.html").read_text()
    for section in RUN_SECTIONS:
        assert f'<section id="{section}">' in page, section
    # the real sources are named, not cfg.data.source ("builtin")
    assert "tinyshakespeare (text, weight 0.8)" in page and "counting (synthetic, weight 0.2)" in page
    assert "<td>train.max_steps</td><td>40</td><td>24</td>" in page  # the diff from the preset
    for text in ("Zero-shot tasks", "0.27 ± 0.031", "attention.csv", "ablation.json", "sampling.json",
                 "ROMEO: the king", "&lt;untrained &amp; noisy&gt;", "model_mean_entropy", "training FLOPs per token",
                 "Sanity checks", "Every applicable check passes.", "initial loss near ln(V)", "pads never scored",
                 f"{json.loads((run_dir / 'model.json').read_text())['params']:,}"):
        assert text in page, text
    # self-contained: every image is embedded, nothing refers to the network
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert 'alt="attention: entropy_norm"' in page and 'alt="attention: entropy"' in page  # per-head heatmaps
    images = re.findall(r'<img src="([^"]*)"', page)
    assert len(images) >= 10 and all(i.startswith("data:image/png;base64,") for i in images)


def test_markdown_twin_has_the_same_tables_and_figures(run_dir):
    page, md = (run_dir / "report.html").read_text(), (run_dir / "report.md").read_text()
    for title in re.findall(r"<h3>([^<]+)</h3>", page):
        assert f"### {title.replace('&#39;', chr(39))}" in md, title
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figures) == page.count("<img ")
    assert all((run_dir / f).is_file() for f in figures)
    assert "| tinyshakespeare | text |" in md


def test_config_diff_against_the_preset(run_dir, tmp_path):
    run = read_run_page(run_dir)
    assert run.preset == "tiny"
    diff = {k: (a, b) for k, a, b in run.diff}
    assert diff["train.max_steps"] == (40, 24) and diff["eval.every"] == (20, 8)
    assert diff["data.sources[1]"][1].startswith("synthetic: ") and "model.vocab_size" not in diff
    renamed = tmp_path / "run"
    shutil.copytree(run_dir, renamed, ignore=shutil.ignore_patterns("checkpoints"))
    toml = (renamed / "config.toml").read_text().replace('name = "tiny"', 'name = "my_own"')
    (renamed / "config.toml").write_text(toml)
    other = read_run_page(renamed)
    assert other.preset == "defaults" and dict((k, b) for k, _, b in other.diff)["model.n_layer"] == 2


def test_study_page_and_run_pages(study_dir):
    page = (study_dir / "report.html").read_text()
    for section in STUDY_SECTIONS:
        assert f'<section id="{section}">' in page, section
    for text in ("better, beyond the noise floor", "welch", "alpha", "d_model-64-s1", "bars", "<h1>widths</h1>",
                 "Study: budget", "Study: grid", "Runs"):
        assert text in page, text
    links = re.findall(r'<a href="(runs/[^"]+)"', page)
    assert sorted(links) == [f"runs/d_model-{w}-s{s}/report.html" for w in (32, 64) for s in (0, 1)]
    assert all((study_dir / link).is_file() for link in links)
    assert (study_dir / "figures" / "val_loss_runs.png").is_file()
    assert (study_dir / "figures" / "scaling_params_non_embedding.png").is_file()
    assert not (study_dir / "figures" / "scaling_flops.png").exists()  # its fit failed: no curve to draw
    assert "needs at least 3 sizes" in page and "d_model-64: better, beyond the noise floor (diff -0.15" in page
    assert "## Results" in (study_dir / "report.md").read_text()


def test_neither_run_nor_study_is_one_line_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    out = subprocess.run([sys.executable, "-m", "lmlab", "report", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "neither a run directory" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_only_the_figures_module_imports_matplotlib():
    src = Path(__file__).resolve().parents[1] / "src" / "lmlab"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if re.search(r"^\s*(import|from)\s+matplotlib", p.read_text(), re.M))
    assert users and all(u.startswith("figures/") for u in users), users


def test_templates_are_package_data():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"lmlab.report" = ["templates/*"]' in pyproject


@pytest.mark.slow
@pytest.mark.parametrize("which", ["run", "study"])
def test_pages_in_a_real_browser(which, run_dir, study_dir, tmp_path):
    """Open report.html from disk in headless chromium: no errors, every image decoded, every section, and a
    screenshot with content."""
    page = (run_dir if which == "run" else study_dir) / "report.html"
    seen = browser.probe(page, tmp_path)
    assert seen["errors"] == []
    assert seen["sections"] == (RUN_SECTIONS if which == "run" else STUDY_SECTIONS)
    assert len(seen["images"]) == page.read_text().count("<img ") >= 3
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in seen["images"]), seen["images"]
    shot = browser.screenshot(page, tmp_path / f"{which}.png")
    inked, colours = browser.not_blank(shot)
    assert inked > 0.02 and colours > 50, (inked, colours)


def test_unreadable_files_become_notes_and_a_bad_config_is_refused(run_dir, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "report.*"))
    (copy / "model.json").write_text("{bad")
    (copy / "analysis" / "ablation.json").write_text("[1, 2")
    assert main(["report", str(copy)]) == 0
    page = (copy / "report.html").read_text()
    assert "./model.json: not readable JSON" not in page and "run/model.json: not readable JSON" in page
    assert "analysis/ablation.json: not readable JSON" in page and '<section id="training">' in page
    (copy / "report.html").unlink()
    (copy / "config.toml").write_text('name = "tiny"\n[model]\nn_layer = "two"\n')
    capsys.readouterr()
    assert main(["report", str(copy)]) == 2
    assert "config.toml: model.n_layer='two' is not valid" in capsys.readouterr().err
    assert not (copy / "report.html").exists()


def test_a_null_val_loss_in_metrics_is_reported_not_a_traceback(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with open(run / "metrics.jsonl", "a") as f:  # how a NaN loss reads back from JSON
        f.write('{"kind": "eval", "step": 99, "val_loss": null}\n')
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "nan at step 99" in page and "best val loss" in page


def test_a_metric_that_is_not_a_number_is_missing_with_a_warning(run_dir, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if '"kind": "train"' in line)
    record = json.loads(lines[first])
    record["loss"] = "high"  # an edit; summing it was a TypeError
    lines[first] = json.dumps(record)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"metrics.jsonl line {first + 1}: 'loss' is \"high\", not a number; read it as missing" in err
    assert err.count("\n") == 1 and (run / "report.html").is_file()
