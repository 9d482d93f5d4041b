"""Sampling: greedy, temperature, top-k and top-p (nucleus), with the model's KV cache.

Repetition penalty and no-repeat-n-gram blocking have the semantics of Hugging Face
transformers' `generate(repetition_penalty=..., no_repeat_ngram_size=...)`: they act on the
raw logits over the whole sequence so far (prompt included), before temperature, top-k and
top-p, in that order (transformers' `_get_logits_processor`), and greedy decoding uses them too.

The cache holds keys and values of the tokens seen so far, so each new token costs one
position's work instead of the whole prefix. Once the text is longer than the model's
context, the oldest tokens must drop out and absolute positions shift, so from then on each
step recomputes the last `context_len` tokens (exactly what a cache-less loop would do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from lmlab.errors import UserError


def check_sampling(max_new_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    """Refuse settings that would sample nonsense (a negative temperature flips the distribution)."""
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens={max_new_tokens} is invalid; expected 0 or more")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature={temperature} is invalid; expected a finite number >= 0 (0 = greedy)")
    if top_k < 0:
        raise UserError(f"top_k={top_k} is invalid; expected 0 (all tokens) or a positive integer")
    if not (math.isfinite(top_p) and 0.0 < top_p <= 1.0):
        raise UserError(f"top_p={top_p} is invalid; expected a float in (0, 1]")


def check_penalties(repetition_penalty: float, no_repeat_ngram: int) -> None:
    """A penalty <= 0 would flip or zero the logits of seen tokens; an n-gram size is a count."""
    if not (isinstance(repetition_penalty, (int, float)) and math.isfinite(repetition_penalty)
            and repetition_penalty > 0):
        raise UserError(f"repetition_penalty={repetition_penalty} is invalid; expected a finite number > 0 "
                        f"(1 = off, > 1 discourages repeats)")
    if isinstance(no_repeat_ngram, bool) or not isinstance(no_repeat_ngram, int) or no_repeat_ngram < 0:
        raise UserError(f"no_repeat_ngram={no_repeat_ngram} is invalid; expected an integer >= 0 (0 = off)")


@dataclass(frozen=True)
class Sampling:
    """How each next token is chosen: temperature (0 = greedy), top-k (0 = all tokens), top-p
    (1 = off), then transformers' repetition_penalty (1 = off) and no_repeat_ngram_size (0 = off).
    The settings that travel together through generate, sampling tables and prompt sensitivity."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram: int = 0

    def check(self, max_new_tokens: int = 0) -> "Sampling":
        check_sampling(max_new_tokens, self.temperature, self.top_k, self.top_p)
        check_penalties(self.repetition_penalty, self.no_repeat_ngram)
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


GREEDY = Sampling(temperature=0.0)


def penalize(logits: torch.Tensor, seq: torch.Tensor, repetition_penalty: float = 1.0,
             no_repeat_ngram: int = 0) -> torch.Tensor:
    """(B, V) next-token logits after the sequence so far `seq` (B, T), prompt included, with
    transformers' RepetitionPenaltyLogitsProcessor then NoRepeatNGramLogitsProcessor applied:
      repetition_penalty  the logit of every id present in `seq` is divided by the penalty if
                          positive and multiplied by it if negative (1 = off)
      no_repeat_ngram     n: an id that would complete an n-gram already in `seq` gets -inf (0 = off)
    Both work in float32, as transformers' sampling loop does."""
    if repetition_penalty == 1.0 and no_repeat_ngram == 0:
        return logits
    logits = logits.float()
    vocab = logits.size(-1)
    seq = seq.to(logits.device)
    if repetition_penalty != 1.0:
        ids = seq.clamp(max=vocab)  # ids past the output table (cannot be drawn) go to a spare column
        padded = torch.nn.functional.pad(logits, (0, 1))
        score = padded.gather(1, ids)
        score = torch.where(score < 0, score * repetition_penalty, score / repetition_penalty)
        logits = padded.scatter(1, ids, score)[:, :vocab]
    n, length = no_repeat_ngram, seq.size(1)
    if n > 0 and length >= n:
        prefix = seq[:, length + 1 - n:]  # the last n - 1 ids: a window starting with them is completed next
        windows = seq.unfold(1, n, 1)  # (B, length - n + 1, n): every n-gram seen
        matches = (windows[..., :-1] == prefix[:, None]).all(-1)
        banned = torch.zeros(seq.size(0), vocab + 1, dtype=torch.bool, device=logits.device)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab), vocab), True)
        logits = logits.masked_fill(banned[:, :vocab], float("-inf"))
        if torch.isneginf(logits).all(-1).any():
            raise UserError(f"no_repeat_ngram={n} leaves no token to choose after {length} tokens (each would "
                            f"repeat a {n}-gram already there); use a larger n-gram size or fewer new tokens")
    return logits


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0 is greedy (arg-max)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = filtered_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def filtered_probs(logits: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(B, V) sampling distribution after temperature, top-k and top-p (temperature > 0)."""
    logits = logits.float() / temperature
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, sampling: Sampling = Sampling(),
             seed: int | None = None, use_cache: bool = True, on_token: Callable[[int], None] | None = None,
             autocast=None, vocab_size: int | None = None, never: tuple[int, ...] = ()) -> torch.Tensor:
    """Extend idx (B, T) by max_new_tokens drawn with `sampling`; returns (B, T + max_new_tokens).
    `on_token(id)` is called for each new token of the first sequence (for streaming).
    `vocab_size` (the tokenizer's) keeps ids of a padded output table from being sampled, and
    `never` other ids (`never_sampled(tokenizer)`: the <unk> of a character vocabulary). The
    repetition penalty and n-gram blocking (see `penalize`) see all of idx, even once it outgrows
    the context."""
    sampling.check(max_new_tokens)
    was_training = model.training
    model.eval()
    device = idx.device
    generator = None
    if seed is not None and not sampling.greedy:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    context = model.config.context_len
    cache = model.new_cache(idx.size(0), device=device) if use_cache else None
    pending = idx[:, -context:]  # tokens not yet seen by the cache
    try:
        for _ in range(max_new_tokens):
            logits = limit_vocab(_forward(model, pending, cache, autocast), vocab_size, never)  # (B, V)
            logits = penalize(logits, idx, sampling.repetition_penalty, sampling.no_repeat_ngram)
            nxt = sample_next(logits, sampling.temperature, sampling.top_k, sampling.top_p, generator)[:, None]
            idx = torch.cat([idx, nxt], dim=1)
            if on_token is not None:
                on_token(int(nxt[0, 0]))
            if cache is not None and cache.pos < context:
                pending = nxt
            else:  # the window slides: recompute it (positions shift)
                cache = None
                pending = idx[:, -context:]
    finally:
        model.train(was_training)
    return idx


def _forward(model, tokens: torch.Tensor, cache, autocast) -> torch.Tensor:
    if autocast is None:
        return model.next_logits(tokens, cache)
    with autocast():
        return model.next_logits(tokens, cache)


def limit_vocab(logits: torch.Tensor, vocab_size: int | None, never: tuple[int, ...] = ()) -> torch.Tensor:
    """Logits of ids >= vocab_size (rows a padded output table adds) and of the ids in `never` set to -inf."""
    if vocab_size is not None and vocab_size < logits.size(-1):
        logits = logits.masked_fill(torch.arange(logits.size(-1), device=logits.device) >= vocab_size, float("-inf"))
    if never:
        logits = logits.index_fill(-1, torch.tensor(never, device=logits.device), float("-inf"))
    return logits


def never_sampled(tokenizer) -> tuple[int, ...]:
    """Ids a sampler must not draw: a character vocabulary's <unk> (it decodes to U+FFFD)."""
    unk = getattr(tokenizer, "unk_id", None)
    return () if unk is None else (unk,)


# ----------------------------------------------------------------------------- batched generation

@dataclass
class Request:
    """One sequence to generate: its prompt ids, how it samples and its generator's seed."""

    prompt: list[int]
    sampling: Sampling = Sampling()
    seed: int | None = None


@dataclass
class Generated:
    ids: list[int]  # the new tokens only
    logprobs: list[float]  # log p of each new token under the model (temperature 1, unfiltered)


@torch.no_grad()
def generate_batch(model, requests: list[Request], max_new_tokens: int, vocab_size: int | None = None,
                   batch_size: int = 64, autocast=None, never: tuple[int, ...] = ()) -> list[Generated]:
    """Many sequences at once with one KV cache per group, each equal to
    `generate(model, prompt, max_new_tokens, request.sampling, request.seed, ...)` run alone.

    The model has no padding mask (positions are absolute and every key is attended), so rather
    than pad, prompts are grouped by length: rows of a group share positions exactly and decode
    in lock-step. Each row keeps its own seeded generator, so a row's sample does not depend on
    the rows beside it."""
    for r in requests:
        r.sampling.check(max_new_tokens)
    out: list[Generated | None] = [None] * len(requests)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(len(r.prompt), []).append(i)
    was_training = model.training
    model.eval()
    try:
        for rows in groups.values():
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                for i, g in zip(chunk, _decode_group(model, [requests[i] for i in chunk], max_new_tokens,
                                                     vocab_size, autocast, never)):
                    out[i] = g
    finally:
        model.train(was_training)
    return out


def _decode_group(model, reqs: list[Request], max_new_tokens: int, vocab_size, autocast,
                  never: tuple[int, ...] = ()) -> list[Generated]:
    device = next(model.parameters()).device
    context = model.config.context_len
    idx = torch.tensor([r.prompt for r in reqs], dtype=torch.long, device=device)  # (B, T)
    gens = [_generator(r, device) for r in reqs]
    cache = model.new_cache(idx.size(0), device=device)
    pending = idx[:, -context:]
    new, logps = [], []
    for _ in range(max_new_tokens):
        logits = limit_vocab(_forward(model, pending, cache, autocast), vocab_size, never).float()  # (B, V)
        nxt = _sample_rows(_penalize_rows(logits, idx, reqs), reqs, gens)  # (B,)
        logps.append(torch.log_softmax(logits, -1).gather(-1, nxt[:, None])[:, 0])
        new.append(nxt)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
        if cache is not None and cache.pos < context:
            pending = nxt[:, None]
        else:  # the window slides: recompute it, as generate() does
            cache, pending = None, idx[:, -context:]
    ids = torch.stack(new, 1).tolist() if new else [[] for _ in reqs]
    lps = torch.stack(logps, 1).tolist() if logps else [[] for _ in reqs]
    return [Generated(i, l) for i, l in zip(ids, lps)]


def _generator(r: Request, device) -> torch.Generator | None:
    if r.seed is None or r.sampling.greedy:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(r.seed)
    return g


def _penalize_rows(logits: torch.Tensor, idx: torch.Tensor, reqs: list[Request]) -> torch.Tensor:
    """`penalize` each row with its own request's settings; the log-probs stay the model's own."""
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(reqs):
        settings.setdefault((r.sampling.repetition_penalty, r.sampling.no_repeat_ngram), []).append(i)
    if list(settings) == [(1.0, 0)]:
        return logits
    out = logits.clone()
    for (penalty, n), rows in settings.items():
        out[rows] = penalize(logits[rows], idx[rows], penalty, n)
    return out


def _sample_rows(logits: torch.Tensor, reqs: list[Request], gens: list) -> torch.Tensor:
    """Rows sharing (temperature, top_k, top_p) are filtered together; each draws with its own generator."""
    nxt = torch.empty(logits.size(0), dtype=torch.long, device=logits.device)
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(reqs):
        settings.setdefault((r.sampling.temperature, r.sampling.top_k, r.sampling.top_p), []).append(i)
    for (t, k, p), rows in settings.items():
        if t <= 0:
            nxt[rows] = logits[rows].argmax(-1)
            continue
        probs = filtered_probs(logits[rows], t, k, p)  # (b, V)
        for j, i in enumerate(rows):
            nxt[i] = torch.multinomial(probs[j:j + 1], 1, generator=gens[i])[0, 0]
    return nxt
