"""Synthetic sources: text whose structure is known, so a model can be measured against it.

counting   "17 18 19 20 ..." from a random start (like the Pico-LLM seed's 3seqs.txt): a model that
           learned to count predicts every number after the first two.
markov     a random order-k Markov chain over `symbols` letters. Its entropy rate is computed
           exactly (`markov_entropy`), the floor that no model's loss on it can beat.
copy       a random string, "|", then the same string again: the second half is predictable only
           by looking back (attention, or a long enough recurrent state).
induction  a random string repeated twice, with no marker: the repeated half rewards induction
           heads (Olsson et al. 2022).

Symbols are single characters ("a".."z", then "0".."9"), so a `char` or `byte` tokenizer gives
one token per symbol and the entropy per symbol is the entropy per token (plus the
<|endoftext|> that separates documents). Everything is a pure function of the source's `seed`.
"""

from __future__ import annotations

import string

import numpy as np

ALPHABET = string.ascii_lowercase + string.digits
MAX_STATES = 1_000_000


def generate(src) -> list[str]:
    rng = np.random.default_rng(src.seed)
    return GENERATORS[src.generator](src, rng)


def counting(src, rng: np.random.Generator) -> list[str]:
    starts = rng.integers(0, 100, size=src.n_docs)
    lengths = rng.integers(max(src.length // 2, 1), src.length + 1, size=src.n_docs)
    return [" ".join(map(str, range(s, s + n))) for s, n in zip(starts.tolist(), lengths.tolist())]


def _random_strings(src, rng: np.random.Generator, length: int) -> list[str]:
    table = np.array(list(ALPHABET[:src.symbols]))
    codes = rng.integers(0, src.symbols, size=(src.n_docs, length))
    return ["".join(row) for row in table[codes]]


def copy(src, rng: np.random.Generator) -> list[str]:
    return [s + "|" + s for s in _random_strings(src, rng, max(src.length // 2, 1))]


def induction(src, rng: np.random.Generator) -> list[str]:
    return [s + s for s in _random_strings(src, rng, max(src.length // 2, 1))]


def markov_chain(src) -> tuple[np.ndarray, np.ndarray]:
    """(transition probabilities (A**k, A), stationary distribution over the A**k contexts)."""
    A, k = src.symbols, src.order
    n_states = A ** k
    if n_states > MAX_STATES:
        from lmlab.errors import UserError

        raise UserError(f"synthetic markov: symbols ** order = {A}**{k} = {n_states:,} contexts; "
                        f"at most {MAX_STATES:,} are supported")
    rng = np.random.default_rng([src.seed, 1])  # a stream apart from the sampling one
    probs = rng.dirichlet(np.full(A, src.alpha), size=n_states)
    shift = A ** (k - 1)
    nxt = (np.arange(n_states)[:, None] % shift) * A + np.arange(A)[None, :]  # context after emitting y
    pi = np.full(n_states, 1.0 / n_states)
    for _ in range(10_000):  # power iteration; the random chain is irreducible and aperiodic a.s.
        new = np.bincount(nxt.ravel(), weights=(pi[:, None] * probs).ravel(), minlength=n_states)
        if np.abs(new - pi).sum() < 1e-13:
            pi = new
            break
        pi = new
    return probs, pi / pi.sum()


def markov_entropy(src) -> float:
    """The chain's entropy rate in bits per symbol: sum over contexts of pi(c) * H(next | c)."""
    probs, pi = markov_chain(src)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(probs > 0, probs * np.log2(probs), 0.0).sum(axis=1)
    return float(pi @ h)


def markov(src, rng: np.random.Generator) -> list[str]:
    """Documents drawn from the stationary chain: every position has the entropy rate's law."""
    probs, pi = markov_chain(src)
    A, k = src.symbols, src.order
    shift = A ** (k - 1)
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    # The first k symbols come from the stationary law over contexts; each later one from the chain.
    state = rng.choice(len(pi), size=src.n_docs, p=pi)
    first = np.stack([(state // A ** (k - 1 - j)) % A for j in range(k)], axis=1)
    out = np.empty((src.n_docs, max(src.length, k)), dtype=np.int64)
    out[:, :k] = first
    for t in range(k, out.shape[1]):
        y = (cdf[state] < rng.random(src.n_docs)[:, None]).sum(axis=1)
        out[:, t] = y
        state = (state % shift) * A + y
    table = np.array(list(ALPHABET[:A]))
    return ["".join(row) for row in table[out[:, :src.length]]]


GENERATORS = {"counting": counting, "markov": markov, "copy": copy, "induction": induction}
