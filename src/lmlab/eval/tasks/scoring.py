"""Log-likelihood of continuations given contexts, batched, the way lm-evaluation-harness scores them.

A request is (context ids, continuation ids). Its sequence is context + continuation, left-truncated
to the model's context length + 1 (the harness's `[-(max_length + 1):][:-1]`), fed without its last
token; the continuation's log-probability is the sum over its tokens, and it is greedy when every
token is the arg-max. A request whose context was cut this way is `truncated`.

A continuation longer than the context length cannot be scored in one pass (lm-eval's `hf` model
refuses it; scoring only its last tokens while acc_norm divides by its whole length would be
dishonest). It is scored in windows, as a rolling log-likelihood is: consecutive windows of at most
context_len targets from the continuation's start, each fed the context_len tokens before its last
target (context, then earlier continuation tokens), so every continuation token counts exactly once.
These are lm-eval's `loglikelihood_rolling` windows of the continuation with the context's last token
as the prefix token. Such a request is `windowed` (not `truncated`). Requests whose model inputs are
identical (the choices of a question whose continuations are one token each: BoolQ's " no"/" yes",
SIQa's letters) share one forward row. Rows are sorted by length and right-padded (causal models never
see the padding).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from lmlab.progress import track


@dataclass(frozen=True)
class Scoring:
    """How requests are scored, the settings that travel together from the caller to the batches: the
    model's context (longer requests are cut or windowed), tokens per batch (0 = sized to the vocabulary),
    the device the inputs go to, an autocast context factory (or None) and whether a bar shows."""

    context_len: int
    batch_tokens: int = 0
    device: object = "cpu"
    autocast: object = None
    progress: bool = False


@dataclass
class Scored:
    logprob: float
    greedy: bool
    truncated: bool  # the context was cut from the left (the continuation fit in one window)
    windows: int = 1  # forward windows the continuation was scored in; more than 1: longer than the context

    @property
    def windowed(self) -> bool:
        return self.windows > 1


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The harness's `_encode_pair`: trailing spaces move from the context to the continuation, the
    whole string is encoded and split after the context's tokens (so BPE merges across the boundary
    match what the model saw in training). An empty context becomes the end-of-text token."""
    if not context:
        eos = tokenizer.eos_id if tokenizer.eos_id is not None else 0
        return [eos], list(tokenizer.encode(continuation))
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = list(tokenizer.encode(context + continuation))
    ctx = list(tokenizer.encode(context))
    return ctx, whole[len(ctx):]


def default_batch_tokens(vocab_size: int) -> int:
    """Tokens per forward pass: the logits (tokens x vocabulary, fp32) stay near 512 MB."""
    return int(min(16384, max(1024, 2 ** 27 // max(vocab_size, 1))))


def windows(ctx: list[int], cont: list[int], context_len: int) -> list[tuple[list[int], list[int]]]:
    """(model input, scored targets) of each window of one request (see the module docstring); one window
    when the continuation fits, none when it is empty."""
    whole = list(ctx) + list(cont)
    out, start = [], len(ctx)
    while start < len(whole):
        end = min(start + context_len, len(whole))
        out.append((whole[max(0, end - 1 - context_len):end - 1], whole[start:end]))
        start = end
    return out


@torch.no_grad()
def score_requests(model, requests: list[tuple[list[int], list[int]]], scoring: Scoring,
                   desc: str = "scoring") -> list[Scored]:
    """Sum of log-probabilities of each continuation given its context (see the module docstring). Both
    `lmlab eval --tasks` and the lm-eval adapter score through here, so their rules cannot drift apart."""
    rows: dict[tuple[int, ...], int] = {}  # model input -> row index
    row_inputs: list[list[int]] = []
    row_requests: list[list[tuple[int, list[int]]]] = []  # per row: (window index, target ids)
    owner: list[int] = []  # window index -> request index
    for k, (ctx, cont) in enumerate(requests):
        if not ctx:  # the first continuation token would have nothing to condition on
            raise ValueError(f"request {k} has an empty context; give the end-of-text token as context")
        for inp, targets in windows(ctx, cont, scoring.context_len):
            key = tuple(inp)
            if key not in rows:
                rows[key] = len(row_inputs)
                row_inputs.append(inp)
                row_requests.append([])
            row_requests[rows[key]].append((len(owner), targets))
            owner.append(k)
    vocab = getattr(getattr(model, "config", None), "vocab_size", 0) or 50257
    batch_tokens = scoring.batch_tokens or default_batch_tokens(vocab)
    scores = _score_rows(model, row_inputs, row_requests, len(owner), batch_tokens, scoring, desc)
    out = [Scored(0.0, True, len(ctx) + len(cont) > scoring.context_len + 1, 0) for ctx, cont in requests]
    for k, (lp, greedy) in zip(owner, scores):
        s = out[k]
        s.logprob, s.greedy, s.windows = s.logprob + lp, s.greedy and greedy, s.windows + 1
    for s in out:
        s.truncated = s.truncated and s.windows <= 1  # a windowed continuation is counted apart
    return out


def _score_rows(model, inputs: list[list[int]], row_requests, n_windows: int, batch_tokens: int,
                scoring: Scoring, desc: str) -> list[tuple[float, bool]]:
    """(log-prob, greedy) of every window, from length-sorted batches of rows."""
    order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
    batches, start = [], 0
    while start < len(order):
        longest = len(inputs[order[start]])
        size = max(1, batch_tokens // max(longest, 1))
        batches.append(order[start:start + size])
        start += size
    out: list[tuple[float, bool]] = [(0.0, True)] * n_windows
    was_training = model.training
    model.eval()
    try:
        for batch in track(batches, desc=desc, unit="batch", enabled=scoring.progress):
            T = len(inputs[batch[0]])
            x = torch.zeros(len(batch), T, dtype=torch.long)  # (B, T) right-padded
            for b, i in enumerate(batch):
                x[b, :len(inputs[i])] = torch.tensor(inputs[i], dtype=torch.long)
            spans = [(len(inputs[i]), max(len(t) for _, t in row_requests[i])) for i in batch]  # (length, scored)
            with scoring.autocast() if scoring.autocast else contextlib.nullcontext():
                logits = _span_logits(model, x.to(scoring.device), spans)  # per row (n, V)
            for b, i in enumerate(batch):
                n = spans[b][1]
                lp = logits[b].float().log_softmax(-1).cpu()  # (n, V) predicting the last n tokens
                for k, targets in row_requests[i]:
                    t = torch.tensor(targets, dtype=torch.long)
                    part = lp[n - len(t):]
                    out[k] = (float(part.gather(1, t[:, None]).sum()), bool((part.argmax(-1) == t).all()))
    finally:
        model.train(was_training)
    return out


def _span_logits(model, x: torch.Tensor, spans: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Logits at the last n real positions of each row. A model with a separate head (the transformer's
    trunk -> ln_f -> head, as in its forward) gets the head applied to those positions only: with a
    50k vocabulary the head over every context position is most of the work. Others run forward."""
    if all(hasattr(model, a) for a in ("trunk", "ln_f", "lm_head", "head", "hook_final")):
        h = model.trunk(x)  # (B, T, D)
        picked = torch.cat([h[b, L - n:L] for b, (L, n) in enumerate(spans)])  # (sum n, D)
        flat = model.head(model.hook_final(model.ln_f(picked)))  # (sum n, V): a padded vocabulary's rows cut off
        return list(flat.split([n for _, n in spans]))
    logits, _ = model(x)  # (B, T, V)
    return [logits[b, L - n:L] for b, (L, n) in enumerate(spans)]
