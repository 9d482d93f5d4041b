"""The lm-evaluation-harness adapter, offline: a task in a local YAML over a local jsonl, scored (a) by the
harness through the `lmlab` model and (b) by the harness's own `hf` model on an HF export of the same run,
against lmlab's in-process scorer on the same items; continuations longer than the context and unknown
characters, scored and counted by the adapter as by the in-process path."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lmlab.cli import main
from lmlab.eval.tasks import Item, score_task
from lmlab.eval.tasks.harness_yaml import local_task_yaml
from lmlab.eval.tasks.scoring import Scoring, encode_pair, score_requests
from lmlab.load import load_run
from lmlab.tokenizer.char import CharTokenizer

N_ITEMS = 12

@pytest.fixture(scope="module")
def offline():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shakespeare, shared_data, offline):
    """A GPT-2-shaped char run (learned positions, LayerNorm, GELU), its HF export, and a local task of ARC-Easy
    items its tokenizer can encode."""
    root = tmp_path_factory.mktemp("harness")
    run = root / "run"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run), "--train.max_steps=20",
                 "--model.context_len=128"]) == 0
    assert main(["export", str(run), "--out", str(root / "hf")]) == 0
    tok = load_run(run).tokenizer
    rows = []
    for line in (shared_data / "eval/arc_easy/arc_easy.jsonl").read_text().splitlines():
        r = json.loads(line)
        if all(tok.unk_id not in tok.encode(t) for t in [r["query"], *r["choices"]]):
            rows.append(r)
        if len(rows) == N_ITEMS:
            break
    data = root / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "lmlab_local_arc.yaml").write_text(local_task_yaml("lmlab_local_arc", data, "arc_easy"))
    return run, root / "hf", tasks, rows


def in_process(run, rows):
    loaded = load_run(run, device="cpu")
    items = [Item(r["query"] + "\nAnswer:", r["choices"], r["gold"]) for r in rows]
    scoring = Scoring(loaded.cfg.model.context_len)
    metrics = score_task(loaded.model, loaded.tokenizer, items, "multiple_choice", scoring)
    pairs = [encode_pair(loaded.tokenizer, it.context, " " + c) for it in items for c in it.choices]
    lls = [s.logprob for s in score_requests(loaded.model, pairs, scoring)]
    return metrics, lls


def harness(model, model_args, tasks):
    import lm_eval
    from lm_eval.tasks import TaskManager

    import lmlab.eval.harness  # noqa: F401  (registers "lmlab")

    out = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["lmlab_local_arc"], device="cpu",
                                  batch_size=16, task_manager=TaskManager(include_path=str(tasks)), log_samples=True)
    res = out["results"]["lmlab_local_arc"]
    samples = sorted(out["samples"]["lmlab_local_arc"], key=lambda s: s["doc_id"])
    lls = [float(resp[0][0]) for s in samples for resp in s["resps"]]
    return res, lls


@pytest.mark.slow
def test_harness_agrees_with_in_process_scores(setup):
    run, hf_dir, tasks, rows = setup
    metrics, lls = in_process(run, rows)
    assert metrics["items"] == N_ITEMS
    # (a) the harness through the lmlab adapter: the same log-likelihoods, so the same acc and acc_norm
    res, h_lls = harness("lmlab", f"run={run}", tasks)
    assert h_lls == pytest.approx(lls, abs=1e-4)
    assert res["acc,none"] == metrics["acc"] and res["acc_norm,none"] == metrics["acc_norm"]
    assert res["acc_stderr,none"] == pytest.approx(metrics["acc_stderr"])
    # (b) the harness's own hf model on the HF export: equal acc and acc_norm on the same items
    res_hf, hf_lls = harness("hf", f"pretrained={hf_dir},dtype=float32", tasks)
    assert hf_lls == pytest.approx(lls, abs=1e-3)
    assert res_hf["acc,none"] == metrics["acc"] and res_hf["acc_norm,none"] == metrics["acc_norm"]


@pytest.mark.slow
def test_lm_eval_command_and_the_other_request_types(setup, tmp_path, capsys):
    run, _, tasks, _ = setup
    out = tmp_path / "out"
    assert main(["lm-eval", "--model", "lmlab", "--model_args", f"run={run}", "--tasks", "lmlab_local_arc",
                 "--include_path", str(tasks), "--output_path", str(out), "--limit", "4"]) == 0
    assert "lmlab_local_arc" in capsys.readouterr().out
    (result,) = out.rglob("results*.json")
    assert json.loads(result.read_text())["results"]["lmlab_local_arc"]["acc,none"] is not None

    from lm_eval.api.instance import Instance

    from lmlab.eval.harness import LmlabLM
    from lmlab.generate import GREEDY, generate

    lm = LmlabLM(run=str(run), device="cpu")
    text = "First Citizen:\nBefore we proceed any further, hear me speak."
    (rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ids = [lm.eot_token_id] + lm.tok_encode(text)
    with torch.no_grad():
        logp = lm.model(torch.tensor([ids[:-1]]))[0][0].log_softmax(-1)  # (T, V)
    assert rolling == pytest.approx(float(logp.gather(1, torch.tensor(ids[1:])[:, None]).sum()), abs=1e-3)
    (gen,) = lm.generate_until([Instance("generate_until", {}, ("ROMEO:", {"until": ["\n\n"], "max_gen_toks": 12}), 0)])
    ref = generate(lm.model, torch.tensor([lm.tok_encode("ROMEO:")]), 12, GREEDY)
    new = ref[0, 6:].tolist()
    new = new[:new.index(lm.eot_token_id)] if lm.eot_token_id in new else new  # end of text stops generation
    assert gen == lm.tok_decode(new).split("\n\n")[0]


@pytest.fixture
def short_lm(tiny_cfg):
    """The adapter around an in-memory transformer with an 8-token context and a 6-character vocabulary."""
    from lmlab.eval.harness import LmlabLM
    from lmlab.model import build_model

    tok = CharTokenizer("ab xyz")
    model = build_model(dataclasses.replace(tiny_cfg.model, context_len=8), tok.vocab_size).eval()
    return LmlabLM(model=model, tokenizer=tok, context_len=8)


def rolling_reference(model, ctx: list[int], cont: list[int], C: int) -> float:
    """The continuation scored by lm-eval's own rolling windows (`loglikelihood_rolling`'s), the context's
    last token standing in for its prefix token, each window one plain forward pass."""
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    total = 0.0
    for inp, targets in map(make_disjoint_window, get_rolling_token_windows(cont, ctx[-1], C, 1)):
        with torch.no_grad():
            logp = model(torch.tensor([inp + targets[:-1]]))[0][0].log_softmax(-1)  # (T, V)
        total += float(logp[-len(targets):].gather(1, torch.tensor(targets)[:, None]).sum())
    return total


def test_adapter_scores_a_long_continuation_as_the_in_process_path(short_lm, capsys):
    from lm_eval.api.instance import Instance

    lm, tok = short_lm, short_lm.tokenizer_lmlab
    reqs = [("ab ba", " xyzzy abba xyzab ba"),  # 20 continuation tokens > 8: windows
            ("ab" * 10, " x"),  # the context cut from the left
            ("ab", " xQ"),  # Q is not in the vocabulary: scored as <unk>
            ("ab", " y")]
    got = lm.loglikelihood([Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)], disable_tqdm=True)
    pairs = [encode_pair(tok, c, t) for c, t in reqs]
    in_process = score_requests(lm.model, pairs, Scoring(8))
    assert [lp for lp, _ in got] == pytest.approx([s.logprob for s in in_process], abs=1e-5)
    assert got[0][0] == pytest.approx(rolling_reference(lm.model, *pairs[0], 8), abs=1e-4)
    # the adapter counts what lm-eval's results cannot show, and says so on stderr
    assert lm.counts == {"requests": 4, "continuation_windowed": 1, "truncated": 1, "unknown_ids": 1}
    err = capsys.readouterr().err
    assert "4 loglikelihood requests: 1 continuations longer than the 8-token context scored whole in windows, " \
           "1 contexts cut from the left, 1 hold <unk> ids" in err


def test_rolling_loglikelihood_uses_the_same_windows(short_lm):
    from lm_eval.api.instance import Instance

    lm = short_lm
    text = "ab xyz ba zyx abba xx yy zz"  # 27 tokens: four windows of 8 targets at most
    (rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)], disable_tqdm=True)
    assert rolling == pytest.approx(rolling_reference(lm.model, [lm.eot_token_id], lm.tok_encode(text), 8), abs=1e-4)
def test_a_task_whose_dataset_cannot_be_downloaded_is_named_with_the_ways_to_run_it(tmp_path):
    import os
    import re
    import subprocess
    import sys

    run = tmp_path / "run"
    assert main(["train", "tiny", "--run-dir", str(run), "--train.max_steps=2", "--eval.max_tokens=256"]) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "lmlab", "lm-eval", "--model", "lmlab", "--model_args", f"run={run}",
                           "--tasks", "piqa,arc_easy", "--limit", "2"], capture_output=True, text=True, env=env)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.match(r"lmlab: error: lm-eval task (piqa|arc_easy) needs its dataset downloaded, and that failed "
                    r"\(Couldn't reach .* on the Hub", last), last  # the one task, found in the traceback
    assert "network access" in last and "--include_path" in last
