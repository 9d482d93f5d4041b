"""Pico-LLM's own instruments (seeds/pico-llm.md), run on a variant's best checkpoint by the `pico`
study (lmlab.study.instruments):

  counting   greedy continuation of "s s+1 s+2": the share of the next numbers it gets right (the
             seed's 3seqs table: greedy continues "0 1 2 ... 24" perfectly)
  top_p      the seed's nucleus table (greedy, then top-p 0.2 ... 1.0 at temperature 1), with per-top-p
             metrics: how long a sample stays on the greedy path, and its distinct bigrams
  kv_cache   greedy text with the KV cache equals the text recomputed without it, and the speed-up
  memorized  sampled continuations and the share of their word n-grams found in the training text
             (the seed's "evidence of memorization"), against the same share in the validation text

Torch is imported inside the functions: the CLI must not load it to list instruments."""

from __future__ import annotations

import time
from pathlib import Path

from lmlab.study.instruments import NotApplicable, instrument

COUNTING = {"starts": [0, 7, 18, 45, 83, 96], "given": 3, "numbers": 12}


def _open(run_dir: Path):
    """The run's best checkpoint; a run that never evaluated has only its last."""
    from lmlab.analysis.source import open_run
    from lmlab.errors import UserError

    try:
        return open_run(run_dir, "best", "cpu")
    except UserError:
        return open_run(run_dir, "last", "cpu")


def _greedy(loaded, prompt: str, max_new_tokens: int, use_cache: bool = True) -> str:
    import torch

    from lmlab.generate import GREEDY, generate, never_sampled

    ids = loaded.tokenizer.encode(prompt)[-loaded.cfg.model.context_len:]
    out = generate(loaded.model, torch.tensor([ids]), max_new_tokens, GREEDY, use_cache=use_cache,
                   vocab_size=loaded.tokenizer.vocab_size, never=never_sampled(loaded.tokenizer))
    return loaded.tokenizer.decode(out[0, len(ids):].tolist())


def count_score(start: int, given: int, numbers: int, continuation: str) -> int:
    """How many of the `numbers` numbers after start..start+given-1 the continuation gets right,
    position by position (a wrong or missing number scores 0; the rest still count)."""
    words = continuation.split()
    want = [str(start + given + i) for i in range(numbers)]
    return sum(1 for got, expected in zip(words, want) if got == expected)


@instrument("counting", COUNTING, lambda p: ["accuracy", "perfect"])
def counting(run_dir: Path, folder: Path, p: dict) -> dict:
    """greedy counting: the share of the next numbers right after "s s+1 s+2" (the seed's 3seqs table)"""
    loaded = _open(run_dir)
    given, numbers = int(p["given"]), int(p["numbers"])
    lines, right, perfect = [], 0, 0
    for s in p["starts"]:
        prompt = " ".join(str(s + i) for i in range(given))
        # 4 tokens a number is enough for a byte tokenizer ("123 "); GPT-2 needs fewer.
        text = _greedy(loaded, prompt, 4 * numbers)
        score = count_score(int(s), given, numbers, text)
        right, perfect = right + score, perfect + (score == numbers)
        lines.append(f"{score:>2}/{numbers}  {prompt}|{text}".replace("\n", "\\n"))
    n = len(p["starts"])
    metrics = {"accuracy": right / (n * numbers), "perfect": perfect / n}
    head = f"greedy counting: {metrics['accuracy']:.3f} of the next {numbers} numbers right, " \
           f"{perfect}/{n} prompts perfect ('|' marks where the prompt ends)"
    return {"metrics": metrics, "text": "\n".join([head, *lines]), "files": []}


TOP_P = {"prompts": ["Once upon a time"], "top_ps": [0.2, 0.5, 0.75, 0.95, 1.0], "temperature": 1.0, "samples": 3,
         "max_new_tokens": 60}


def p_key(top_p: float) -> str:
    return f"p{round(float(top_p) * 100):d}"


def _top_p_metrics(p: dict) -> list[str]:
    return [f"{m}_{p_key(x)}" for x in p["top_ps"] for m in ("on_greedy", "distinct_2")] + ["distinct_2_greedy"]


def on_greedy(sample: list[int], greedy: list[int]) -> float:
    """The share of the greedy continuation a sample reproduces before it first departs from it."""
    n = 0
    for a, b in zip(sample, greedy):
        if a != b:
            break
        n += 1
    return n / max(len(greedy), 1)


@instrument("top_p", TOP_P, _top_p_metrics)
def top_p_table(run_dir: Path, folder: Path, p: dict) -> dict:
    """the seed's nucleus-sampling table: greedy, then each top-p; per top-p the share on the greedy path"""
    from lmlab.analysis.sampling import distinct, sampling_grid, sampling_study
    from lmlab.generate import GREEDY
    from lmlab.tables import markdown

    loaded = _open(run_dir)
    model, tok, n = loaded.model, loaded.tokenizer, int(p["max_new_tokens"])
    prompts = list(p["prompts"])
    greedy = sampling_study(model, tok, prompts, [GREEDY], 1, n)["settings"][0]["samples"]
    greedy_ids = {s["prompt"]: tok.encode(s["text"]) for s in greedy}
    study = sampling_study(model, tok, prompts, sampling_grid((float(p["temperature"]),), tuple(p["top_ps"])),
                           int(p["samples"]), n)
    metrics = {"distinct_2_greedy": distinct(list(greedy_ids.values()), 2)}
    rows = [{"top-p": "greedy", "generated output (first prompt, seed 0)": prompts[0] + greedy[0]["text"],
             "on greedy path": 1.0, "distinct-2": metrics["distinct_2_greedy"]}]
    for setting in study["settings"]:
        ids = [tok.encode(s["text"]) for s in setting["samples"]]
        key = p_key(setting["top_p"])
        metrics[f"on_greedy_{key}"] = sum(on_greedy(i, greedy_ids[s["prompt"]]) for i, s in
                                          zip(ids, setting["samples"])) / len(ids)
        metrics[f"distinct_2_{key}"] = setting["distinct_2"]
        first = setting["samples"][0]
        rows.append({"top-p": f"{setting['top_p']:g}", "generated output (first prompt, seed 0)":
                     first["prompt"] + first["text"], "on greedy path": metrics[f"on_greedy_{key}"],
                     "distinct-2": metrics[f"distinct_2_{key}"]})
    for r in rows:
        r["generated output (first prompt, seed 0)"] = r["generated output (first prompt, seed 0)"].replace("\n", " ")
    text = (f"temperature {p['temperature']:g}, {p['samples']} samples per prompt and top-p, {n} new tokens; "
            f"'on greedy path' = the share of the greedy continuation a sample keeps before departing\n\n"
            + markdown(rows))
    return {"metrics": metrics, "text": text, "files": []}


@instrument("kv_cache", {"prompt": "Once upon a time", "max_new_tokens": 48}, lambda p: ["same_text", "speedup"])
def kv_cache(run_dir: Path, folder: Path, p: dict) -> dict:
    """greedy generation with the KV cache against recomputing the prefix every step: same text, speed-up"""
    loaded = _open(run_dir)
    if loaded.model.new_cache(1) is None:
        raise NotApplicable(f"{loaded.cfg.model.arch} keeps no state between generation steps")
    prompt, n = str(p["prompt"]), int(p["max_new_tokens"])
    _greedy(loaded, prompt, 2)  # warm-up: the first call pays for allocations
    times, texts = {}, {}
    for cached in (True, False):
        t0 = time.perf_counter()
        texts[cached] = _greedy(loaded, prompt, n, use_cache=cached)
        times[cached] = time.perf_counter() - t0
    same = texts[True] == texts[False]
    metrics = {"same_text": float(same), "speedup": times[False] / max(times[True], 1e-9)}
    text = (f"{n} greedy tokens: with the cache {times[True]:.3f} s, recomputed {times[False]:.3f} s "
            f"({metrics['speedup']:.2f}x); texts {'identical' if same else 'DIFFER'}\n"
            f"cached:     {prompt}{texts[True]}\nrecomputed: {prompt}{texts[False]}")
    return {"metrics": metrics, "text": text.replace("\r", ""), "files": []}


MEMORIZED = {"prompts": ["Once upon a time"], "n": 6, "temperature": 1.0, "top_p": 1.0, "samples": 3,
             "max_new_tokens": 200}


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copied_share(text: str, reference: set[tuple[str, ...]], n: int) -> float:
    grams = [tuple(g) for g in (text.split()[i:i + n] for i in range(len(text.split()) - n + 1))]
    return sum(g in reference for g in grams) / len(grams) if grams else 0.0


def split_text(loaded, split: str) -> str:
    from lmlab.data.prepare import prepare

    parts = prepare(loaded.cfg, loaded.tokenizer, progress=False).splits.get(split) or {}
    return "\n".join(loaded.tokenizer.decode(part.tokens.tolist()) for part in parts.values()
                     if hasattr(part, "tokens"))


@instrument("memorized", MEMORIZED, lambda p: ["copied", "copied_val", "excess"])
def memorized(run_dir: Path, folder: Path, p: dict) -> dict:
    """sampled continuations and the share of their word n-grams found in the training text (vs validation)"""
    from lmlab.analysis.sampling import sampling_study
    from lmlab.generate import Sampling

    loaded = _open(run_dir)
    n = int(p["n"])
    train, val = (ngrams(split_text(loaded, s).split(), n) for s in ("train", "val"))
    setting = Sampling(float(p["temperature"]), top_p=float(p["top_p"]))
    study = sampling_study(loaded.model, loaded.tokenizer, list(p["prompts"]), [setting], int(p["samples"]),
                           int(p["max_new_tokens"]))
    samples = study["settings"][0]["samples"]
    copied = [copied_share(s["text"], train, n) for s in samples]
    copied_val = [copied_share(s["text"], val, n) for s in samples]
    metrics = {"copied": sum(copied) / len(copied), "copied_val": sum(copied_val) / len(copied_val)}
    metrics["excess"] = metrics["copied"] - metrics["copied_val"]
    lines = [f"word {n}-grams of each sample found in the training text (validation text in brackets); "
             f"mean {metrics['copied']:.3f} ({metrics['copied_val']:.3f})"]
    lines += [f"- {c:.2f} ({v:.2f}) seed {s['seed']}: **{s['prompt']}**{s['text']}".replace("\n", " ")
              for c, v, s in zip(copied, copied_val, samples)]
    return {"metrics": metrics, "text": "\n".join(lines), "files": []}
