"""Zero-shot tasks in-process: scoring on a hand-built model, acc vs acc_norm, standard errors,
truncation, continuations longer than the context (windows), every task's loader (local files and the
Hugging Face schema), and bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lmlab.cli import main
from lmlab.errors import UserError
from lmlab.eval.tasks import TASKS, Item, score_task
from lmlab.eval.tasks.loading import load_hf_items, load_items, parse_task_names, read_hellaswag_text
from lmlab.eval.tasks.run import binomial_stderr
from lmlab.eval.tasks.commands import format_table, tasks_csv
from lmlab.eval.tasks.scoring import Scoring, encode_pair, score_requests
from lmlab.tokenizer.char import CharTokenizer

ALL = ["arc_challenge", "arc_easy", "boolq", "copa", "hellaswag", "lambada", "openbook_qa", "piqa", "siqa",
       "winogrande"]


class Bigram(nn.Module):
    """A hand-built model: log p(next | previous) is a fixed table, so any log-likelihood is a hand sum."""

    def __init__(self, table: torch.Tensor, context_len: int = 64):
        super().__init__()
        self.table = table  # (V, V) log-probabilities, rows sum to 1 in probability
        self.config = SimpleNamespace(vocab_size=table.size(0), context_len=context_len)
        self.seen_lengths = []

    def forward(self, idx, targets=None, cache=None):
        assert idx.size(1) <= self.config.context_len  # contexts are truncated before the model
        self.seen_lengths.append(idx.size(1))
        return self.table[idx], None  # (B, T, V)


@pytest.fixture
def toy():
    tok = CharTokenizer("ab xyz")  # chars sorted: ' ', a, b, x, y, z; then <unk>, <eos>
    g = torch.Generator().manual_seed(0)
    table = torch.randn(tok.vocab_size, tok.vocab_size, generator=g).log_softmax(-1)
    return tok, Bigram(table)


def hand_ll(tok, table, context: str, continuation: str) -> float:
    ids = tok.encode(context + continuation)
    start = len(context)
    return float(sum(table[ids[i - 1], ids[i]] for i in range(start, len(ids))))


def test_loglikelihood_equals_hand_sum_and_greedy(toy):
    tok, model = toy
    pairs = [("ab", " xyz"), ("ba", " a"), ("", "ab")]
    scored = score_requests(model, [encode_pair(tok, c, t) for c, t in pairs], Scoring(64))
    for (c, t), s in zip(pairs[:2], scored[:2]):
        assert s.logprob == pytest.approx(hand_ll(tok, model.table, c, t), abs=1e-5)
        assert not s.truncated
    ids = tok.encode("ab")  # empty context: scored after the end-of-text token
    assert scored[2].logprob == pytest.approx(float(model.table[tok.eos_id, ids[0]] + model.table[ids[0], ids[1]]),
                                              abs=1e-5)
    greedy_next = int(model.table[tok.encode("a")[0]].argmax())
    greedy = score_requests(model, [(tok.encode("a"), [greedy_next])], Scoring(64))[0]
    assert greedy.greedy


def test_right_answer_is_found_and_acc_norm_can_disagree():
    tok = CharTokenizer("ab xyz")
    V = tok.vocab_size
    s, a, x = tok.encode(" ")[0], tok.encode("a")[0], tok.encode("x")[0]
    table = torch.full((V, V), math.log(1e-3))
    table[a, s] = math.log(0.5)   # after "a": a space half the time
    table[s, a] = math.log(0.4)   # " a": likely in total (-1.6 nats), unlikely per character
    table[s, x] = math.log(0.3)
    table[x, x] = math.log(0.7)   # " xxxx": -3.0 nats in total, -0.74 per character
    model = Bigram(table.log_softmax(-1))
    item = Item("a", ["a", "xxxx", "b"], gold=0)
    lls = [hand_ll(tok, model.table, "a", " " + c) for c in item.choices]
    acc_pick = max(range(3), key=lambda i: lls[i])
    norm_pick = max(range(3), key=lambda i: lls[i] / len(item.choices[i]))
    assert acc_pick != norm_pick  # the case is built so that they disagree
    for gold, acc, acc_norm in ((acc_pick, 1.0, 0.0), (norm_pick, 0.0, 1.0)):
        out = score_task(model, tok, [Item("a", item.choices, gold)], "multiple_choice", Scoring(64))
        assert (out["acc"], out["acc_norm"]) == (acc, acc_norm)
        assert out["chance"] == pytest.approx(1 / 3)


def test_partial_and_last_word_scoring(toy):
    tok, model = toy
    # WinoGrande: the shared continuation after each filled context; the better context wins
    contexts = ["ab x", "ab y"]
    lls = [hand_ll(tok, model.table, c, " zz") for c in contexts]
    gold = int(lls[1] > lls[0])
    out = score_task(model, tok, [Item(contexts[0], ["zz"], gold, contexts=contexts)], "partial", Scoring(64))
    assert out["acc"] == 1.0 and out["acc_norm"] == 1.0 and out["chance"] == 0.5
    # LAMBADA: perplexity = exp(-mean log-prob of " word")
    items = [Item("ab", ["xy"], 0), Item("ba", ["zz"], 0)]
    out = score_task(model, tok, items, "last_word", Scoring(64))
    mean_ll = (hand_ll(tok, model.table, "ab", " xy") + hand_ll(tok, model.table, "ba", " zz")) / 2
    assert out["perplexity"] == pytest.approx(math.exp(-mean_ll), rel=1e-5)
    assert out["chance"] == 0.0 and out["acc_norm"] is None


def test_binomial_stderr_by_hand(toy):
    assert binomial_stderr([1, 0, 1, 1]) == pytest.approx(math.sqrt(0.75 * 0.25 / 3))
    assert binomial_stderr([1]) is None
    tok, model = toy
    items = [Item("a", ["x", "y"], g) for g in (0, 1, 0, 0, 1)]
    out = score_task(model, tok, items, "multiple_choice", Scoring(64))
    p = out["acc"]
    assert out["acc_stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 4))


def test_contexts_are_left_truncated_and_counted(toy):
    tok, _ = toy
    model = Bigram(toy[1].table, context_len=8)
    long_ctx = "ab" * 20
    items = [Item(long_ctx, ["x", "yz"], 0), Item("a", ["x", "y"], 0)]
    out = score_task(model, tok, items, "multiple_choice", Scoring(8))
    assert out["truncated"] == 1
    assert max(model.seen_lengths) <= 8
    # a bigram only looks one token back, so truncation keeps the score: compare with the hand sum
    s = score_requests(model, [encode_pair(tok, long_ctx, " yz")], Scoring(8))[0]
    assert s.truncated and s.logprob == pytest.approx(hand_ll(tok, model.table, long_ctx, " yz"), abs=1e-5)


def windowed_reference(model, ctx: list[int], cont: list[int], C: int) -> float:
    """The rule for a continuation longer than the context, written out: its tokens in consecutive windows
    of C targets (the last one shorter), each window fed the C tokens before its last target (context, then
    earlier continuation tokens); every continuation token counts once."""
    whole = ctx + cont
    total, start = 0.0, len(ctx)
    while start < len(whole):
        end = min(start + C, len(whole))
        first = max(0, end - 1 - C)
        with torch.no_grad():
            logp = model(torch.tensor([whole[first:end - 1]]))[0][0].log_softmax(-1)  # row i predicts whole[first+i+1]
        total += sum(float(logp[p - first - 1, whole[p]]) for p in range(start, end))
        start = end
    return total


def test_a_continuation_longer_than_the_context_is_scored_in_windows(tiny_cfg):
    from lmlab.model import build_model

    tok, C = CharTokenizer("ab xyz"), 8
    model = build_model(dataclasses.replace(tiny_cfg.model, context_len=C), tok.vocab_size).eval()
    cases = [("ab ba", " xyzzy abba xyzab ba"),  # 20 continuation tokens: windows of 8, 8 and 4
             ("ab ba", " xyzzy a"),  # 8 tokens: one window, the context cut to its last token
             ("a", " xyzzy abb")]  # 10 tokens after a 1-token context: 8 and 2
    pairs = [encode_pair(tok, c, t) for c, t in cases]
    assert [len(t) for _, t in pairs] == [20, 8, 10]
    scored = score_requests(model, pairs, Scoring(C))
    for (ctx, cont), s in zip(pairs, scored):
        assert s.logprob == pytest.approx(windowed_reference(model, ctx, cont, C), abs=1e-4)
    assert [s.windowed for s in scored] == [True, False, True]
    assert [s.truncated for s in scored] == [False, True, False]  # a windowed continuation is not "truncated"


def test_acc_norm_divides_the_whole_windowed_continuation():
    """A long choice whose first token is very unlikely: scoring only its last context_len tokens (and still
    dividing by its full length) would pick it; the whole continuation loses to the short gold choice."""
    tok = CharTokenizer("ab xyz")
    V = tok.vocab_size
    s, a, x, y = (tok.encode(c)[0] for c in " axy")
    table = torch.full((V, V), math.log(1e-3))
    table[a, s] = math.log(0.5)
    table[s, x] = math.log(1e-18)  # " x...": the first token costs ~41 nats
    table[x, x] = math.log(0.9)
    table[s, y] = math.log(0.5)
    model = Bigram(table.log_softmax(-1), context_len=8)
    item = Item("a", ["x" * 20, "y"], gold=1)
    # a bigram only looks one token back, and every window is fed the token before its first target
    lls = [hand_ll(tok, model.table, "a", " " + c) for c in item.choices]
    out = score_task(model, tok, [item], "multiple_choice", Scoring(8))
    assert out["acc"] == float(max(range(2), key=lambda i: lls[i]) == 1) == 1.0
    assert out["acc_norm"] == float(max(range(2), key=lambda i: lls[i] / len(item.choices[i])) == 1) == 1.0
    assert out["continuation_windowed"] == 1 and out["truncated"] == 0


def test_windowed_continuations_are_counted_apart_from_cut_contexts(toy):
    tok, _ = toy
    model = Bigram(toy[1].table, context_len=8)
    items = [Item("ab" * 20, ["x", "yz"], 0),  # the context is cut from the left
             Item("a", ["xyzxyzxyz", "y"], 0),  # " xyzxyzxyz": 10 tokens > 8, scored in two windows
             Item("ab" * 20, ["xyzxyzxyz", "y"], 0),  # both, in different choices
             Item("a", ["x", "y"], 0)]
    out = score_task(model, tok, items, "multiple_choice", Scoring(8))
    assert (out["truncated"], out["continuation_windowed"]) == (2, 2)
    assert max(model.seen_lengths) <= 8
    assert "continuation_windowed" in tasks_csv({"t": out}).splitlines()[0].split(",")
    table = format_table({"tasks": {"t": out}, "checkpoint": "last", "step": 1, "stderr": "", "context_len": 8})
    assert "windowed" in table.splitlines()[0]
    assert score_task(model, tok, [Item("ABC", ["x"], 0)], "multiple_choice", Scoring(8))["continuation_windowed"] == 0


def test_one_token_continuations_share_a_row(toy):
    tok, model = toy
    ctx = tok.encode("abab")
    reqs = [(ctx, [c]) for c in tok.encode("xyz")]
    model.seen_lengths.clear()
    scored = score_requests(model, reqs, Scoring(64))
    assert model.seen_lengths == [len(ctx)]  # one forward row for the three choices
    for (c, t), s in zip(reqs, scored):
        assert s.logprob == pytest.approx(float(model.table[c[-1], t[0]]), abs=1e-6)


def test_unencodable_items_are_skipped_and_counted(toy):
    tok, model = toy
    items = [Item("ab", ["x", "y"], 0), Item("ABC?", ["x", "y"], 0)]
    out = score_task(model, tok, items, "multiple_choice", Scoring(64))
    assert out["items"] == 1 and out["skipped_unencodable"] == 1
    none = score_task(model, tok, items[1:], "multiple_choice", Scoring(64), name="t")
    assert none["items"] == 0 and none["skipped_unencodable"] == 1 and none["acc"] is None


@pytest.mark.parametrize("name", ALL)
def test_every_task_loads_from_shared_data(name, shared_data):
    spec = TASKS.get(name)
    items, path = load_items(spec, shared_data / "eval", limit=3)
    assert len(items) == 3 and path.is_file()
    for it in items:
        assert 0 <= it.gold < it.n_options
        if spec.kind == "partial":
            assert len(it.contexts) == 2 and len(it.choices) == 1
        elif spec.kind == "last_word":
            assert len(it.choices) == 1 and " " not in it.choices[0]
    if name in ("arc_easy", "arc_challenge", "boolq"):
        assert items[0].context.endswith("\nAnswer:")


def test_hellaswag_jsonl_cleaning_matches_the_preprocessed_text(shared_data):
    """Original rows through lm-eval's preprocess equal the same items in the preprocessed 6-line file,
    except that the file keeps ctx_b's first letter as it was (lm-eval capitalizes it) and strips the endings
    (lm-eval's preprocess can leave a leading space where a [tag] opened the text)."""
    spec = TASKS.get("hellaswag")
    from lmlab.eval.tasks.loading import read_jsonl

    rows = read_jsonl(shared_data / "eval/hellaswag/hellaswag_val_sample1000.jsonl", spec.row, spec.required, 20,
                      "hellaswag")
    full = {tuple(c.strip() for c in it.choices): it for it in read_hellaswag_text(shared_data / "eval/hellaswag/hellaswag_val_full.txt")}
    for r in rows:
        f = full[tuple(c.strip() for c in r.choices)]
        assert f.gold == r.gold and f.context.lower() == r.context.lower()


def test_hugging_face_schema_through_datasets_json_builder(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = json.loads((shared_data / "eval/arc_easy/arc_easy.jsonl").read_text().splitlines()[0])
    rows = {
        "arc_easy": {"question": local["query"].removeprefix("Question: "), "answerKey": "C",
                     "choices": {"label": ["A", "B", "C", "D"], "text": local["choices"]}},
        "winogrande": {"sentence": "Sarah was a better surgeon than Maria so _ got the easier cases.",
                       "option1": "Sarah", "option2": "Maria", "answer": "2"},
        "boolq": {"question": "is it", "passage": "It is.", "answer": True},
        "lambada": {"text": "the cat sat on the mat"},
        "siqa": {"context": "C.", "question": "Q?", "answerA": "a", "answerB": "b", "answerC": "c", "label": "3"},
        "copa": {"premise": "The man fell.", "choice1": "He tripped.", "choice2": "He won.", "question": "cause",
                 "label": 0},
    }
    got = {}
    for name, row in rows.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        (got[name],) = load_hf_items(TASKS.get(name), data_files=str(path))
    assert got["arc_easy"].context == local["query"] + "\nAnswer:" and got["arc_easy"].choices == local["choices"]
    assert got["arc_easy"].gold == 2
    w = got["winogrande"]
    assert w.contexts == ["Sarah was a better surgeon than Maria so Sarah",
                          "Sarah was a better surgeon than Maria so Maria"]
    assert w.choices == ["got the easier cases."] and w.gold == 1
    assert got["boolq"].gold == 1 and got["boolq"].choices == ["no", "yes"]
    assert got["lambada"].context == "the cat sat on the" and got["lambada"].choices == ["mat"]
    assert got["siqa"].gold == 2 and got["copa"].context == "The man fell because"
    assert got["copa"].choices == ["he tripped.", "he won."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(UserError, match="row 0: missing field 'choices'"):
        load_hf_items(TASKS.get("arc_easy"), data_files=str(bad))


def test_task_names_are_checked():
    assert parse_task_names("arc_easy, hellaswag,arc_easy") == ["arc_easy", "hellaswag"]
    with pytest.raises(UserError, match="unknown task 'mmlu'; valid tasks: arc_challenge, arc_easy"):
        parse_task_names("arc_easy,mmlu")
    assert TASKS.names() == ALL


# ----------------------------------------------------------------------------- CLI on a real run

@pytest.fixture(scope="module")
def char_run(tmp_path_factory, shakespeare):
    run = tmp_path_factory.mktemp("evaltasks") / "run"
    assert main(["train", "tiny", "--data", str(shakespeare), "--run-dir", str(run),
                 "--train.max_steps=3", "--model.context_len=64"]) == 0
    return run


def test_cli_eval_tasks_writes_the_contract(char_run, capsys):
    assert main(["eval", str(char_run), "--tasks", "arc_easy,winogrande,lambada,copa", "--limit", "6"]) == 0
    printed = capsys.readouterr().out
    assert "chance" in printed and "±" in printed and "winogrande" in printed
    out = json.loads((char_run / "eval" / "tasks.json").read_text())
    assert out["limit"] == 6 and out["checkpoint"] == "last"
    for name, r in out["tasks"].items():
        for key in ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "chance", "items", "truncated"):
            assert key in r, (name, key)
        assert r["items"] + r["skipped_unencodable"] == 6
    assert out["tasks"]["copa"]["chance"] == 0.5
    # LAMBADA's quotes are not in Shakespeare's alphabet: every item is skipped, the other tasks still count
    assert out["tasks"]["lambada"]["items"] == 0 and out["tasks"]["lambada"]["skipped_unencodable"] == 6
    assert (char_run / "eval" / "tasks.csv").read_text().startswith("task,items,chance,acc")
    assert main(["eval", str(char_run), "--tasks", "copa", "--limit", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"]["copa"]["items"] == 3


def test_cli_eval_tasks_adds_to_the_results_saved_before(char_run, capsys):
    saved = char_run / "eval" / "tasks.json"
    saved.unlink(missing_ok=True)
    assert main(["eval", str(char_run), "--tasks", "arc_easy,copa", "--limit", "4"]) == 0
    assert main(["eval", str(char_run), "--tasks", "copa", "--limit", "2", "--checkpoint", "best"]) == 0
    out = json.loads(saved.read_text())
    assert sorted(out["tasks"]) == ["arc_easy", "copa"]  # arc_easy kept, copa replaced by the second call
    arc, copa = out["tasks"]["arc_easy"], out["tasks"]["copa"]
    assert (arc["limit"], arc["checkpoint"], copa["limit"], copa["checkpoint"]) == (4, "last", 2, "best")
    assert copa["items"] + copa["skipped_unencodable"] == 2
    assert [row.split(",")[0] for row in (char_run / "eval" / "tasks.csv").read_text().splitlines()[1:]] == \
        ["arc_easy", "copa"]


@pytest.mark.parametrize("args, message", [
    (["--tasks", "arc_easy,nosuch"], "unknown task 'nosuch'; valid tasks: arc_challenge, arc_easy, boolq"),
    (["--tasks", "arc_easy", "--limit", "0"], "--limit must be a positive number of items per task (got 0)"),
    (["--tasks", "arc_easy", "--tasks-dir", "/no/such/dir"], "task arc_easy: no file found"),
    (["--limit", "5"], "--limit, --tasks-dir and --hf go with --tasks"),
])
def test_cli_bad_input(char_run, capsys, args, message):
    (char_run / "eval" / "tasks.json").unlink(missing_ok=True)
    assert main(["eval", str(char_run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (char_run / "eval" / "tasks.json").exists()


def test_cli_wrong_schema_names_file_line_and_field(char_run, tmp_path, capsys):
    (tmp_path / "copa").mkdir()
    good = json.dumps({"query": "It rained, therefore", "choices": ["the ground was wet."], "gold": 0})
    (tmp_path / "copa" / "copa.jsonl").write_text(good + "\n" + json.dumps({"query": "x", "gold": 0}) + "\n")
    (char_run / "eval" / "tasks.json").unlink(missing_ok=True)
    assert main(["eval", str(char_run), "--tasks", "copa", "--tasks-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'copa' / 'copa.jsonl'}:2: missing field 'choices'" in err
    assert not (char_run / "eval" / "tasks.json").exists()


def test_cli_refuses_a_task_the_tokenizer_cannot_encode(char_run, tmp_path, capsys):
    (tmp_path / "copa").mkdir()
    row = {"query": "\u4e2d\u6587, therefore", "choices": ["\u4e2d", "\u6587"], "gold": 0}
    (tmp_path / "copa" / "copa.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["eval", str(char_run), "--tasks", "copa", "--tasks-dir", str(tmp_path)]) == 2
    assert "the tokenizer cannot encode any item of copa" in capsys.readouterr().err


def test_head_only_on_scored_positions_equals_the_full_forward(tiny_cfg):
    from lmlab.model import build_model

    model = build_model(tiny_cfg.model, 40).eval()

    class ForwardOnly(nn.Module):  # the same model seen only through forward()
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, idx, targets=None, cache=None):
            return self.inner(idx)

    g = torch.Generator().manual_seed(1)
    reqs = [(torch.randint(0, 40, (int(n),), generator=g).tolist(), torch.randint(0, 40, (k,), generator=g).tolist())
            for n, k in ((5, 3), (20, 1), (9, 4), (30, 2))]
    ctx = tiny_cfg.model.context_len
    fast = score_requests(model, reqs, Scoring(ctx))
    slow = score_requests(ForwardOnly(model), reqs, Scoring(ctx))
    for a, b in zip(fast, slow):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5) and a.greedy == b.greedy
