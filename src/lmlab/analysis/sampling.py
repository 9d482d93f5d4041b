"""Sampling studies: the same prompts under a grid of settings (Mini GPT's temperature sweep,
Pico-LLM's top-p table), and prompt sensitivity (LLM-Lite's BLEU matrix between the
continuations of reworded prompts). Everything is generated batched (lmlab.generate.generate_batch).

Per setting, over all its samples:
  distinct_1 / distinct_2  unique unigrams / bigrams over all generated n-grams (Li et al. 2016)
  repetition               fraction of each sample's 4-grams already seen earlier in that sample
                           (the seq-rep-4 of Welleck et al. 2019), averaged over samples
  mean_logprob             mean log p per generated token under the model itself, at temperature 1
                           without filtering (how typical the text is for the model)
"""

from __future__ import annotations

import itertools
import math

from lmlab.errors import UserError, need


def parse_floats(text: str, flag: str, low: float, high: float, low_open: bool = False) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    ok = values and all((low < v if low_open else low <= v) and v <= high for v in values)
    if not ok:
        bound = "(" if low_open else "["
        raise UserError(f"{flag} {text!r}: expected comma-separated numbers in {bound}{low:g}, {high:g}]")
    return values


def parse_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise UserError(f"{flag} {text!r}: expected comma-separated non-negative integers (0 = off)")
    return values


def distinct(samples: list[list[int]], n: int) -> float:
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition(sample: list[int], n: int = 4) -> float:
    grams = [tuple(sample[i:i + n]) for i in range(len(sample) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def setting_metrics(samples: list[list[int]], logprobs: list[list[float]]) -> dict:
    flat = [lp for row in logprobs for lp in row]
    return {"distinct_1": distinct(samples, 1), "distinct_2": distinct(samples, 2),
            "repetition": sum(repetition(s) for s in samples) / max(len(samples), 1),
            "mean_logprob": sum(flat) / len(flat) if flat else float("nan")}


def sampling_grid(temperatures=(0.5, 0.8, 1.0, 1.2), top_ps=(1.0,), top_ks=(0,), repetition_penalty: float = 1.0,
                  no_repeat_ngram: int = 0) -> list:
    """Every temperature x top-p x top-k, each with the same penalties: a sampling table's rows."""
    from lmlab.generate import Sampling

    return [Sampling(t, k, p, repetition_penalty, no_repeat_ngram)
            for t, p, k in itertools.product(temperatures, top_ps, top_ks)]


def sampling_study(model, tokenizer, prompts: list[str], settings: list | None = None, seeds: int = 1,
                   max_new_tokens: int = 100, batch_size: int = 64) -> dict:
    """Every prompt x setting (lmlab.generate.Sampling; default `sampling_grid()`) x seed,
    generated in batches; a row per setting with its samples. Sample j of prompt i draws with
    generator seed i x seeds + j: no two prompts share their random draws (shared draws would
    correlate the pooled distinct-n), while every setting reuses the same seeds (common random
    numbers make the settings' differences less noisy). mean_logprob stays the model's own log p of
    the tokens drawn, before any penalty."""
    from lmlab.generate import Request, generate_batch, never_sampled

    settings = settings if settings is not None else sampling_grid()
    encoded = [_encode(tokenizer, p, model.config.context_len) for p in prompts]
    reqs, keys = [], []
    for s_i, sampling in enumerate(settings):
        for p_i, ids in enumerate(encoded):
            for seed in range(p_i * seeds, (p_i + 1) * seeds):
                reqs.append(Request(ids, sampling, seed))
                keys.append((s_i, p_i, seed))
    out = generate_batch(model, reqs, max_new_tokens, tokenizer.vocab_size, batch_size,
                         never=never_sampled(tokenizer))
    rows = []
    for s_i, sampling in enumerate(settings):
        mine = [(key, g) for key, g in zip(keys, out) if key[0] == s_i]
        samples = [{"prompt": prompts[key[1]], "seed": key[2], "text": tokenizer.decode(g.ids)} for key, g in mine]
        rows.append({"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                     "samples": samples,
                     **setting_metrics([g.ids for _, g in mine], [g.logprobs for _, g in mine])})
    return {"prompts": prompts, "seeds": seeds, "max_new_tokens": max_new_tokens, **_penalties(settings),
            "settings": rows}


def _penalties(settings: list) -> dict:
    """The penalties the settings share (a sampling table states them once), or none."""
    shared = {(s.repetition_penalty, s.no_repeat_ngram) for s in settings}
    if len(shared) != 1:
        return {}
    penalty, ngram = shared.pop()
    return {"repetition_penalty": penalty, "no_repeat_ngram": ngram}


def _encode(tokenizer, text: str, context_len: int) -> list[int]:
    from lmlab.analysis.maps import encode_prompt

    return encode_prompt(tokenizer, text, context_len, what=f"prompt {text[:30]!r}")


def bleu_matrix(texts: list[str]) -> list[list[float]]:
    """Pairwise sentence BLEU (sacrebleu): row i as hypothesis, column j as reference."""
    sacrebleu = need("sacrebleu", "BLEU between samples")
    return [[sacrebleu.sentence_bleu(h, [r]).score for r in texts] for h in texts]


def prompt_sensitivity(model, tokenizer, variants: list[str], sampling=None, seed: int = 0,
                       max_new_tokens: int = 50) -> dict:
    """The continuation of each prompt variant (greedy unless `sampling` says otherwise), the
    pairwise BLEU matrix and its off-diagonal mean."""
    from dataclasses import asdict

    from lmlab.generate import GREEDY, Request, generate_batch, never_sampled

    sampling = sampling or GREEDY
    if len(variants) < 2:
        raise UserError("--prompt-variants needs at least two prompts (one per line)")
    reqs = [Request(_encode(tokenizer, v, model.config.context_len), sampling, seed) for v in variants]
    outs = generate_batch(model, reqs, max_new_tokens, tokenizer.vocab_size, never=never_sampled(tokenizer))
    texts = [tokenizer.decode(g.ids) for g in outs]
    matrix = bleu_matrix(texts)
    off = [matrix[i][j] for i in range(len(texts)) for j in range(len(texts)) if i != j]
    return {"variants": variants, "continuations": texts, "bleu": matrix, "mean_bleu": sum(off) / len(off),
            **asdict(sampling), "seed": seed, "max_new_tokens": max_new_tokens}


def penalty_note(result: dict) -> str:
    """'repetition penalty 1.3, no repeated 2-grams' for a study or sensitivity result that used them, else ''."""
    parts = []
    if result.get("repetition_penalty", 1.0) != 1.0:
        parts.append(f"repetition penalty {result['repetition_penalty']:g}")
    if result.get("no_repeat_ngram", 0):
        parts.append(f"no repeated {result['no_repeat_ngram']}-grams")
    return ", ".join(parts)


def format_study(study: dict, width: int = 70) -> str:
    note = penalty_note(study)
    lines = [f"every setting with {note}"] if note else []
    lines += [f"{'temp':>5} {'top_p':>6} {'top_k':>5} {'dist-1':>7} {'dist-2':>7} {'rep-4':>6} {'logp/tok':>9}  sample"]
    for r in study["settings"]:
        text = r["samples"][0]["text"].replace("\n", " ")[:width]
        lines.append(f"{r['temperature']:>5g} {r['top_p']:>6g} {r['top_k']:>5d} {r['distinct_1']:>7.3f} "
                     f"{r['distinct_2']:>7.3f} {r['repetition']:>6.3f} {r['mean_logprob']:>9.3f}  {text}")
    return "\n".join(lines)


def study_markdown(study: dict) -> str:
    """samples/sampling.md: the table, then every sample."""
    note = penalty_note(study)
    lines = [f"Every setting with {note}.\n"] if note else []
    lines += ["| temperature | top_p | top_k | distinct-1 | distinct-2 | rep-4 | log p / token |", "|---|---|---|---|---|---|---|"]
    for r in study["settings"]:
        lines.append(f"| {r['temperature']:g} | {r['top_p']:g} | {r['top_k']} | {r['distinct_1']:.3f} | "
                     f"{r['distinct_2']:.3f} | {r['repetition']:.3f} | {r['mean_logprob']:.3f} |")
    for r in study["settings"]:
        lines.append(f"\n### temperature {r['temperature']:g}, top-p {r['top_p']:g}, top-k {r['top_k']}\n")
        for s in r["samples"]:
            lines.append(f"- seed {s['seed']}: **{s['prompt']}**{s['text']}".replace("\n", " "))
    return "\n".join(lines) + "\n"


def format_sensitivity(result: dict) -> str:
    note = penalty_note(result)
    lines = [f"continuations with {note}"] if note else []
    lines += [f"{i}: {v!r} -> {c[:60]!r}".replace("\\n", " ") for i, (v, c) in
             enumerate(zip(result["variants"], result["continuations"]))]
    n = len(result["bleu"])
    lines.append("BLEU (row = hypothesis, column = reference):")
    lines.append("     " + " ".join(f"{j:>6}" for j in range(n)))
    lines += [f"{i:>4} " + " ".join(f"{v:>6.1f}" for v in row) for i, row in enumerate(result["bleu"])]
    lines.append(f"mean pairwise BLEU: {result['mean_bleu']:.2f}" if math.isfinite(result["mean_bleu"]) else "")
    return "\n".join(lines)
