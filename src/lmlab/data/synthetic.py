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

from typing import Callable

import numpy as np

from lmlab.registry import Registry

# `[[data.sources]] generator = ...` of a synthetic source (validated by SourceConfig).
GENERATORS: Registry = Registry("data.sources.generator", config_field=False)
ALPHABET = string.ascii_lowercase + string.digits
MAX_STATES = 1_000_000


def generator(name: str, entropy: Callable | None = None) -> Callable:
    """Register a generator `fn(src, rng) -> documents`; `entropy(src)` gives its exact entropy
    rate in bits per symbol when it has one (the floor a model's loss approaches)."""
    def add(fn: Callable) -> Callable:
        fn.entropy_bits = entropy
        return GENERATORS.register(name)(fn)

    return add


def generate(src) -> list[str]:
    rng = np.random.default_rng(src.seed)
    return GENERATORS.get(src.generator)(src, rng)


def facts(src) -> dict:
    """What is known about a synthetic source in closed form (its entropy rate), for statistics."""
    entropy = GENERATORS.get(src.generator).entropy_bits
    return {"entropy_bits_per_symbol": entropy(src)} if entropy else {}


@generator("counting")
def counting(src, rng: np.random.Generator) -> list[str]:
    """runs of consecutive numbers from a random start (Pico-LLM's 3seqs)"""
    starts = rng.integers(0, 100, size=src.n_docs)
    lengths = rng.integers(max(src.length // 2, 1), src.length + 1, size=src.n_docs)
    return [" ".join(map(str, range(s, s + n))) for s, n in zip(starts.tolist(), lengths.tolist())]


def _random_strings(src, rng: np.random.Generator, length: int) -> list[str]:
    table = np.array(list(ALPHABET[:src.symbols]))
    codes = rng.integers(0, src.symbols, size=(src.n_docs, length))
    return ["".join(row) for row in table[codes]]


@generator("copy")
def copy(src, rng: np.random.Generator) -> list[str]:
    """a random string, "|", the same string again"""
    return [s + "|" + s for s in _random_strings(src, rng, max(src.length // 2, 1))]


@generator("induction")
def induction(src, rng: np.random.Generator) -> list[str]:
    """a random string repeated twice, no marker (induction heads)"""
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


@generator("markov", entropy=markov_entropy)
def markov(src, rng: np.random.Generator) -> list[str]:
    """a random order-k Markov chain over `symbols` letters (exact entropy rate)

    Documents drawn from the stationary chain: every position has the entropy rate's law."""
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
