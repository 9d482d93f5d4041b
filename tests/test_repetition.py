"""Repetition penalty and no-repeat-n-gram blocking against Hugging Face transformers: the logits
transform against its two processors, greedy generation against `model.generate` on an export
(in memory and through `lmlab export` / `lmlab generate` / `lmlab sample`), the sliding-window
and sampling paths against a reference loop, and the flags' bad values."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import transformers
from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

from lmlab.cli import main
from lmlab.errors import UserError
from lmlab.generate import GREEDY, Request, Sampling, filtered_probs, generate, generate_batch, penalize
from lmlab.interop import to_hf_model
from lmlab.model import ModelConfig, build_model
from tree import snapshot

V = 61
GPT2 = ModelConfig(n_layer=2, n_head=4, d_model=32, context_len=32, vocab_size=V, mlp="gelu_tanh", attention="manual")
LLAMA = ModelConfig(n_layer=2, n_head=4, n_kv_head=2, d_model=32, context_len=32, vocab_size=V, position="rope",
                    norm="rmsnorm", mlp="swiglu", bias=False, tie_embeddings=False, d_mlp=48, norm_eps=1e-6,
                    rope_theta=500.0, attention="sdpa")
SETTINGS = [(1.3, 0), (1.0, 2), (1.3, 2), (0.7, 3), (1.0, 1)]  # (repetition_penalty, no_repeat_ngram)


def hf_processed(logits, seq, penalty: float, n: int):
    """What transformers' generate does to the scores: RepetitionPenalty, then NoRepeatNGram."""
    out = logits.clone()
    if penalty != 1.0:
        out = RepetitionPenaltyLogitsProcessor(float(penalty))(seq, out)
    if n > 0:
        out = NoRepeatNGramLogitsProcessor(n)(seq, out)
    return out


# ----------------------------------------------------------------------------- (a) the transform itself

def test_penalize_equals_transformers_processors_exactly():
    g = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(300):
        B, T = int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(1, 40, (1,), generator=g))
        vocab = int(torch.randint(2, 20, (1,), generator=g))
        seq = torch.randint(0, vocab, (B, T), generator=g)
        logits = torch.randn(B, vocab, generator=g) * 4  # both signs: divided when > 0, multiplied when < 0
        penalty = [1.0, 0.5, 1.3, 2.0, float(torch.rand(1, generator=g)) * 3 + 0.05][int(torch.randint(0, 5, (1,),
                                                                                                   generator=g))]
        n = int(torch.randint(0, 6, (1,), generator=g))
        expected = hf_processed(logits, seq, penalty, n)
        if torch.isneginf(expected).all(-1).any():  # every token banned: lmlab says so instead of emitting id 0
            with pytest.raises(UserError, match=f"no_repeat_ngram={n} leaves no token"):
                penalize(logits, seq, penalty, n)
            continue
        got = penalize(logits, seq, penalty, n)
        assert torch.equal(got, expected), (seq, penalty, n)
        checked += 1
    assert checked > 200
    # the transform is not a no-op: a seen token's positive logit falls and a seen bigram's end is banned
    seq, logits = torch.tensor([[1, 2, 1]]), torch.tensor([[0.5, 2.0, 1.0, -1.0]])
    assert penalize(logits, seq, 2.0).tolist() == [[0.5, 1.0, 0.5, -1.0]]
    assert penalize(logits, seq, 1.0, 2).tolist() == [[0.5, 2.0, float("-inf"), -1.0]]  # 1 -> 2 was seen
    assert penalize(logits, seq) is logits


@pytest.mark.parametrize("penalty, n, expect", [(0.0, 0, "repetition_penalty=0.0"), (-1.3, 0, "repetition_penalty"),
                                                (float("nan"), 0, "repetition_penalty=nan"),
                                                (1.0, -1, "no_repeat_ngram=-1"), (1.0, 2.5, "no_repeat_ngram=2.5")])
def test_python_api_refuses_bad_values(penalty, n, expect):
    model = build_model(dataclasses.replace(GPT2, n_layer=1))
    with pytest.raises(UserError, match=expect):
        generate(model, torch.tensor([[1, 2]]), 3, Sampling(repetition_penalty=penalty, no_repeat_ngram=n))
    with pytest.raises(UserError, match=expect):
        generate_batch(model, [Request([1, 2], Sampling(0.0, repetition_penalty=penalty, no_repeat_ngram=n))], 3)


# ----------------------------------------------------------------------------- (b) greedy text equals transformers'

def perturbed(cfg: ModelConfig, seed: int):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():  # norms and biases off their init values, and sharper logits than at init
        for p in model.parameters():
            p.add_((0.1 if p.dim() == 1 else 0.05) * torch.randn_like(p))
    return model.eval()


def hf_greedy(hf_model, prompt: list[int], n: int, penalty: float, ngram: int, suppress=None) -> list[int]:
    x = torch.tensor([prompt])
    out = hf_model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, num_beams=1, max_new_tokens=n,
                            min_new_tokens=n, repetition_penalty=penalty, no_repeat_ngram_size=ngram,
                            suppress_tokens=suppress, eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def bigrams_repeat(ids: list[int]) -> bool:
    grams = list(zip(ids, ids[1:]))
    return len(set(grams)) < len(grams)


def repeats_after(ids: list[int], start: int, n: int) -> bool:
    """Whether a token at `start` or later completes an n-gram seen before it (prompt included)."""
    return any(tuple(ids[i - n + 1:i + 1]) in {tuple(ids[j:j + n]) for j in range(i - n + 1)}
               for i in range(max(start, n - 1), len(ids)))


@pytest.mark.parametrize("cfg", [GPT2, LLAMA], ids=["gpt2", "llama"])
def test_greedy_generation_equals_transformers_generate(cfg):
    model = perturbed(cfg, 4)
    hf_model = to_hf_model(model).eval()
    prompts, n = [[8, 3, 7, 3, 7], [5, 9, 11, 9]], 24  # prompt + new tokens within the context (HF's positions)
    changed = set()
    for prompt in prompts:
        plain = hf_greedy(hf_model, prompt, n, 1.0, 0)
        ours = generate(model, torch.tensor([prompt]), n, GREEDY)[0, len(prompt):].tolist()
        assert ours == plain and bigrams_repeat(prompt + plain)  # greedy alone repeats itself here
        for penalty, ngram in SETTINGS:
            expected = hf_greedy(hf_model, prompt, n, penalty, ngram)
            if expected != plain:
                changed.add((penalty, ngram))
            for use_cache in (True, False):
                got = generate(model, torch.tensor([prompt]), n, Sampling(0.0, repetition_penalty=penalty,
                               no_repeat_ngram=ngram), use_cache=use_cache)
                assert got[0, len(prompt):].tolist() == expected, (prompt, penalty, ngram, use_cache)
        reqs = [Request(prompt, Sampling(0.0, repetition_penalty=p, no_repeat_ngram=k)) for p, k in SETTINGS]
        batched = generate_batch(model, reqs, n)  # rows with different settings side by side
        assert [g.ids for g in batched] == [hf_greedy(hf_model, prompt, n, p, k) for p, k in SETTINGS]
        assert not repeats_after(prompt + batched[1].ids, len(prompt), 2)  # no new token repeats a bigram
        assert repeats_after(prompt + plain, len(prompt), 2)
    assert changed == set(SETTINGS)  # every setting changes some text: the comparison can fail


def reference(model, prompt: list[int], n: int, penalty: float, ngram: int, temperature: float = 0.0,
              top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> list[int]:
    """A plain loop: the model on the last context_len tokens, transformers' processors over the
    whole sequence, then temperature / top-k / top-p."""
    seq, g = torch.tensor([prompt]), torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(n):
            logits = hf_processed(model(seq[:, -model.config.context_len:])[0][:, -1].float(), seq, penalty, ngram)
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                nxt = torch.multinomial(filtered_probs(logits, temperature, top_k, top_p), 1, generator=g)
            seq = torch.cat([seq, nxt], 1)
    return seq[0, len(prompt):].tolist()


def test_past_the_context_and_when_sampling_the_whole_sequence_counts():
    """Beyond the context the window slides, yet seen tokens and n-grams are those of the whole
    text; with temperature, the penalties come before temperature, top-k and top-p."""
    model = perturbed(dataclasses.replace(GPT2, context_len=8), 5)
    prompt, n = [1, 2, 3], 30
    for penalty, ngram in SETTINGS:
        for t, k, p in [(0.0, 0, 1.0), (0.9, 0, 1.0), (1.2, 5, 1.0), (1.0, 0, 0.8)]:
            expected = reference(model, prompt, n, penalty, ngram, t, k, p, seed=7)
            for use_cache in (True, False):
                got = generate(model, torch.tensor([prompt]), n, Sampling(t, k, p, penalty, ngram), seed=7,
                               use_cache=use_cache)
                assert got[0, len(prompt):].tolist() == expected, (penalty, ngram, t, k, p, use_cache)
            batched = generate_batch(model, [Request(prompt, Sampling(t, k, p, penalty, ngram), 7)], n)[0]
            assert batched.ids == expected
    window_only = reference(model, prompt, n, 1.0, 0)
    assert window_only != reference(model, prompt, n, 1.0, 2)


def test_no_token_left_is_one_clear_error():
    model = perturbed(dataclasses.replace(GPT2, vocab_size=5, context_len=16), 6)
    with pytest.raises(UserError, match="no_repeat_ngram=1 leaves no token to choose after 5 tokens"):
        generate(model, torch.tensor([[0]]), 10, Sampling(0.0, no_repeat_ngram=1))


# ----------------------------------------------------------------------------- the CLI on a trained, exported run

TINY = ["--train.max_steps=30", "--eval.every=30", "--eval.max_tokens=256", "--train.batch_size=4"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained char run, its lmlab load and its `lmlab export` loaded by transformers."""
    from lmlab.load import load_run

    root = tmp_path_factory.mktemp("repetition")
    run_dir, out = root / "run", root / "hf"
    assert main(["train", "tiny", "--run-dir", str(run_dir), *TINY]) == 0
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    return run_dir, load_run(run_dir, device="cpu"), hf_model


def test_cli_generate_and_sample_equal_transformers_on_the_export(exported, tmp_path, capsys):
    from lmlab.generate import never_sampled

    run_dir, ours, hf_model = exported
    tok = ours.tokenizer
    prompt, n = "ROMEO: the", 20
    ids = tok.encode(prompt)
    assert len(ids) + n <= ours.cfg.model.context_len
    suppress = list(never_sampled(tok)) + list(range(tok.vocab_size, ours.model.config.vocab_size))
    texts = {}
    for penalty, ngram in [(1.0, 0), (1.3, 0), (1.0, 2), (1.3, 2), (2.0, 0), (2.0, 3)]:
        flags = ["--repetition-penalty", str(penalty), "--no-repeat-ngram", str(ngram)]
        expected = tok.decode(hf_greedy(hf_model, ids, n, penalty, ngram, suppress or None))
        capsys.readouterr()
        assert main(["generate", str(run_dir), "--prompt", prompt, "--temperature", "0",
                     "--max-new-tokens", str(n), *flags]) == 0
        assert capsys.readouterr().out == prompt + expected + "\n", (penalty, ngram)
        out = tmp_path / f"s{penalty}-{ngram}"
        assert main(["sample", str(run_dir), "--prompt", prompt, "--temperature", "0", "--max-new-tokens", str(n),
                     "--out", str(out), *flags]) == 0
        study = json.loads((out / "sampling.json").read_text())
        assert study["settings"][0]["samples"][0]["text"] == expected
        assert (study["repetition_penalty"], study["no_repeat_ngram"]) == (penalty, ngram)
        texts[penalty, ngram] = expected
    plain = texts[1.0, 0]  # greedy alone: spaces; 1.3 is too mild to change that on this run, 2.0 is not
    assert texts[2.0, 0] != plain and texts[1.0, 2] != plain and texts[2.0, 3] not in (plain, texts[2.0, 0]), texts


@pytest.mark.parametrize("verb", ["generate", "sample"])
@pytest.mark.parametrize("flag, value, expect", [
    ("--repetition-penalty", "0", "'0' is not valid; expected a number > 0"),
    ("--repetition-penalty", "-1.3", "'-1.3' is not valid"),
    ("--repetition-penalty", "abc", "'abc' is not valid"),
    ("--repetition-penalty", "inf", "'inf' is not valid"),
    ("--no-repeat-ngram", "-1", "'-1' is not valid; expected an integer >= 0"),
    ("--no-repeat-ngram", "2.5", "'2.5' is not valid"),
    ("--no-repeat-ngram", "two", "'two' is not valid")])
def test_bad_flag_values_are_one_line_exit_2_and_write_nothing(exported, verb, flag, value, expect, tmp_path,
                                                                 monkeypatch, capsys):
    run_dir = exported[0]
    before, run_before = snapshot(tmp_path), snapshot(run_dir)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    argv = [verb, str(run_dir), "--prompt", "the", flag, value] + (["--out", str(tmp_path / "o")] if verb == "sample"
                                                                  else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("lmlab: error: ") and f"argument {flag}: {expect}" in err, err
    assert snapshot(tmp_path) == before and snapshot(run_dir) == run_before
