"""Optional extras: the core (and `make demo`'s `.[plot]`) runs without them, and every verb or setting
that needs one says which in one line when it is absent. Absence is simulated by `sys.modules[name] =
None`, which makes `import name` fail as if the package were not installed."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.errors import EXTRAS

REPO = Path(__file__).resolve().parents[1]
TINY = ["--train.max_steps=2", "--eval.max_tokens=256", "--train.batch_size=4"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("extras")
    assert main(["train", "tiny", "--run-dir", str(root / "run"), *TINY]) == 0
    assert main(["export", str(root / "run"), "--out", str(root / "hf")]) == 0  # for `import`, with transformers
    (root / "variants.txt").write_text("the cat\nthe dog\n")
    (root / "t.toml").write_text('[[data.sources]]\nkind = "parquet"\npath = "x.parquet"\n')
    (root / "x.parquet").write_bytes(b"PAR1")  # there: what is missing is the package that reads it
    (root / "h.toml").write_text('[[data.sources]]\nkind = "hf"\ndataset = "roneneldan/TinyStories"\n')
    return root


def absent(monkeypatch, *names: str) -> None:
    """As if not installed, though an earlier test imported them: their submodules go too, since
    `import pkg.sub` finds a loaded pkg.sub without looking at pkg."""
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")] or [name]:
            monkeypatch.setitem(sys.modules, loaded, None)


CASES = [  # (id, argv, absent module, the extra the message names)
    ("export", ["export", "{run}", "--out", "{tmp}/o"], "transformers", "hf"),
    ("import", ["import", "{root}/hf", "--run-dir", "{tmp}/r"], "transformers", "hf"),
    ("lm-eval", ["lm-eval", "--model", "lmlab", "--model_args", "run={run}", "--tasks", "copa"], "lm_eval", "eval"),
    ("eval-tasks-hf", ["eval", "{run}", "--tasks", "copa", "--hf", "--limit", "2"], "datasets", "hf"),
    ("executor-ray", ["sweep", "tiny", "--grid", "model.n_layer=1,2", "--executor", "ray", "--out", "{tmp}/s"],
     "ray", "ray"),
    ("tensorboard", ["train", "tiny", "--run-dir", "{tmp}/r", "--train.loggers=jsonl,tensorboard", *TINY],
     "tensorboard", "track"),
    ("wandb", ["train", "tiny", "--run-dir", "{tmp}/r", "--train.loggers=jsonl,wandb", *TINY], "wandb", "track"),
    ("parquet-source", ["train", "{root}/t.toml", "--data.root={root}", "--run-dir", "{tmp}/r", *TINY], "pyarrow",
     "parquet"),
    ("hf-source", ["train", "{root}/h.toml", "--run-dir", "{tmp}/r", *TINY], "datasets", "hf"),
    ("plots", ["analyze", "{run}", "--out", "{tmp}/a"], "matplotlib", "plot"),
    ("bleu", ["sample", "{run}", "--prompt-variants", "{root}/variants.txt", "--max-new-tokens", "4"], "sacrebleu",
     "eval"),
]


@pytest.mark.parametrize("argv, module, extra", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_verb_needing_an_absent_extra_names_it_in_one_line(argv, module, extra, good, tmp_path, monkeypatch,
                                                             capsys):
    argv = [a.replace("{run}", str(good / "run")).replace("{root}", str(good)).replace("{tmp}", str(tmp_path))
            for a in argv]
    absent(monkeypatch, module)
    monkeypatch.delitem(sys.modules, "lmlab.eval.harness", raising=False)  # its import is where lm_eval is needed
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"pip install 'lmlab[{extra}]'" in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()  # refused before any folder is made


def test_the_real_process_names_the_extra_too(good, tmp_path):
    code = ("import sys; sys.modules['transformers'] = None; from lmlab.cli import main; "
            f"sys.exit(main(['export', {str(good / 'run')!r}, '--out', {str(tmp_path / 'o')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == ("lmlab: error: lmlab export needs transformers, which is not "
                                                    "installed: pip install 'lmlab[hf]'\n")
    assert not (tmp_path / "o").exists()


def test_what_is_only_left_out_without_an_extra_says_so(good, tmp_path, monkeypatch):
    from lmlab.report import write_page
    from lmlab.study.results import write_study_table

    absent(monkeypatch, "matplotlib", "pyarrow")
    write_study_table(tmp_path, "results", [{"run": "a", "loss": 1.0}], parquet=True)  # a sweep's table without pyarrow
    assert (tmp_path / "results.csv").is_file() and not (tmp_path / "results.parquet").exists()
    markdown = write_page(good / "run").with_suffix(".md").read_text()
    assert "figures left out: matplotlib is not installed (pip install 'lmlab[plot]')" in markdown
    from lmlab.errors import UserError
    from lmlab.figures import figure  # the one matplotlib set-up every figure goes through

    with pytest.raises(UserError, match=re.escape("pip install 'lmlab[plot]'")):
        figure()


def test_every_install_hint_names_a_real_extra_and_every_optional_package_has_one():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    hints = {(p.name, m) for p in (REPO / "src").rglob("*.py") for m in re.findall(r"lmlab\[(\w+)\]", p.read_text())}
    assert {(f, m) for f, m in hints if m not in extras} == set()
    assert not [p for p in (REPO / "src").rglob("*.py") if re.search(r"pip install (?!'lmlab\[)", p.read_text())]
    packages = {re.split(r"[<>=\[]", d)[0].replace("-", "_") for deps in extras.values() for d in deps}
    assert {module: extra for module, extra in EXTRAS.items() if extra not in extras or module not in packages} == {}
