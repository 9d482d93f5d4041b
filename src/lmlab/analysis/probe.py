"""Embedding probes on the input embedding matrix (the rows a token id looks up).

A word is looked up as one token when it is one: for BPE vocabularies the form with a leading
space (" king", as it appears mid-sentence) is tried first, then the bare word (the token that
starts a text or sits inside a longer word; the results carry a note saying so). A word that is
several tokens in both forms is the MEAN of its tokens' embeddings (with a note as well). A
char-level run probes characters: each "word" must be a single character. Similarity is cosine;
analogy answers exclude the query words' own tokens, as usual (Mikolov et al. 2013).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmlab.errors import UserError


def embedding_matrix(model, vocab_size: int) -> torch.Tensor:
    """(V, D) input embeddings, cut to the tokenizer's vocabulary (a padded table has extra rows)."""
    emb = getattr(model, "tok_emb", None)
    if not isinstance(emb, nn.Embedding):
        emb = next((m for m in model.modules() if isinstance(m, nn.Embedding) and m.num_embeddings >= vocab_size),
                   None)
    if emb is None:
        raise UserError("this model has no input embedding table to probe (e.g. one-hot inputs)")
    return emb.weight.detach().float().cpu()[:vocab_size]


@dataclass
class Word:
    text: str
    ids: list[int]
    bare: bool = False  # the token without a leading space, because the spaced form is several tokens

    @property
    def note(self) -> str:
        if len(self.ids) > 1:
            return f"{self.text!r} is {len(self.ids)} tokens: the mean of their embeddings"
        if self.bare:
            return (f"' {self.text}' is not one token: this is the token {self.text!r} without a leading space, "
                    f"as at the start of a text or inside a longer word")
        return ""


def lookup(tokenizer, word: str) -> Word:
    """A word's token ids (see the module docstring); unknown words fail with one line."""
    if not word:
        raise UserError("an empty word cannot be probed")
    unk = getattr(tokenizer, "unk_id", None)
    if getattr(tokenizer, "is_char_level", False):
        ids = tokenizer.encode(word)
        if len(ids) != 1 or ids[0] == unk:
            raise UserError(f"{word!r} is not in the vocabulary of this char-level run; probe single characters "
                            f"it knows, e.g. {tokenizer.decode(list(range(min(5, tokenizer.vocab_size))))!r}")
        return Word(word, ids)
    spaced, bare = (f if f and (unk is None or unk not in f) else None
                    for f in (tokenizer.encode(" " + word), tokenizer.encode(word)))
    if spaced is None and bare is None:
        raise UserError(f"{word!r} is not in the vocabulary (it encodes to unknown tokens)")
    if spaced is not None and (len(spaced) == 1 or bare is None or len(spaced) <= len(bare)):
        return Word(word, spaced)
    return Word(word, bare, bare=len(bare) == 1)


def vector(emb: torch.Tensor, word: Word) -> torch.Tensor:
    return emb[word.ids].mean(0)  # (D,)


def nearest(emb: torch.Tensor, query: torch.Tensor, k: int, exclude: set[int], tokenizer) -> list[dict]:
    """The k tokens most cosine-similar to `query`, skipping `exclude`."""
    sims = F.cosine_similarity(emb, query[None], dim=-1)  # (V,)
    if exclude:
        sims[list(exclude)] = -float("inf")
    vals, ids = torch.topk(sims, min(k, emb.size(0) - len(exclude)))
    return [{"id": int(i), "token": tokenizer.decode([int(i)]), "cosine": float(v)} for v, i in zip(vals, ids)]


def neighbours(emb: torch.Tensor, tokenizer, words: list[str], k: int = 10) -> dict:
    """Top-k cosine neighbours of each word (its own tokens excluded)."""
    if k < 1:
        raise UserError(f"--k {k} is not valid; expected a positive integer")
    out = {}
    for text in words:
        word = lookup(tokenizer, text)
        out[text] = {"ids": word.ids, "note": word.note,
                     "neighbours": nearest(emb, vector(emb, word), k, set(word.ids), tokenizer)}
    return out


def parse_analogy(expr: str) -> list[tuple[int, str]]:
    """"princess - girl + boy" -> [(+1, 'princess'), (-1, 'girl'), (+1, 'boy')]."""
    bad = UserError(f"--analogy {expr!r}: expected words joined by + and -, e.g. 'princess - girl + boy'")
    terms, sign, want_word = [], 1, True
    for piece in (p.strip() for p in re.findall(r"[+-]|[^+-]+", expr)):
        if not piece:
            continue
        if piece in "+-":
            if not want_word and terms:
                sign, want_word = (-1 if piece == "-" else 1), True
            elif not terms and piece == "-":
                sign = -1
            else:
                raise bad
        elif want_word and " " not in piece:
            terms.append((sign, piece))
            sign, want_word = 1, False
        else:
            raise bad
    if len(terms) < 2 or want_word:
        raise bad
    return terms


def analogy(emb: torch.Tensor, tokenizer, expr: str, k: int = 10) -> dict:
    """Nearest tokens to the signed sum of the words' vectors, the query words excluded."""
    terms = parse_analogy(expr)
    words = [(sign, lookup(tokenizer, w)) for sign, w in terms]
    target = sum(sign * vector(emb, w) for sign, w in words)
    exclude = {i for _, w in words for i in w.ids}
    return {"expression": expr, "notes": [w.note for _, w in words if w.note],
            "answers": nearest(emb, target, k, exclude, tokenizer)}


def answer_rank(answers: list[dict], expect: str, tokenizer) -> int | None:
    """The expected word's rank (1-based, case-insensitive) among an analogy's answers, k + 1 when it
    is not among them; None when the tokenizer splits it, since answers are single tokens and no
    rank could be found (a claim on it is then not tested, not failed); likewise a word outside a
    character vocabulary."""
    want = expect.strip().lower()
    try:
        if len(lookup(tokenizer, want).ids) != 1:
            return None
    except UserError:
        return None
    found = [a["token"].strip().lower() for a in answers]
    return found.index(want) + 1 if want in found else len(found) + 1


def rank_note(expect: str, rank: int | None, k: int) -> str:
    if rank is None:
        return f"expected answer {expect.strip()!r} is several tokens here: its rank is not measured"
    return f"{expect.strip()!r} at rank {rank}" + (f" (not in the top {k})" if rank > k else "")


def pca(emb: torch.Tensor, tokenizer, words: list[str]) -> dict:
    """2-D principal-component coordinates of the words' vectors (centred on their mean)."""
    if len(words) < 2:
        raise UserError("--pca needs at least two words, e.g. --pca king,queen,man,woman")
    looked = [lookup(tokenizer, w) for w in words]
    X = torch.stack([vector(emb, w) for w in looked]).double()  # (N, D)
    X = X - X.mean(0)
    _, S, Vt = torch.linalg.svd(X, full_matrices=False)
    coords = (X @ Vt[:2].T).numpy()  # (N, 2)
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    var = (S ** 2 / (S ** 2).sum().clamp(min=1e-12)).numpy()
    return {"words": words, "coords": coords.tolist(), "explained_variance": var[:2].tolist(),
            "notes": [w.note for w in looked if w.note]}


def format_neighbours(result: dict) -> str:
    lines = []
    for word, r in result.items():
        lines.append(f"{word!r}: " + ", ".join(f"{n['token']!r} {n['cosine']:.3f}" for n in r["neighbours"]))
        if r["note"]:
            lines.append(f"  note: {r['note']}")
    return "\n".join(lines)


def format_analogy(result: dict) -> str:
    lines = [f"{result['expression']} ~ " + ", ".join(f"{n['token']!r} {n['cosine']:.3f}" for n in result["answers"])]
    lines += [f"  note: {n}" for n in result["notes"]]
    return "\n".join(lines)
