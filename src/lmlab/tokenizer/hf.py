"""Hugging Face `tokenizers` interop: any tokenizer.json as an lmlab tokenizer (kind `hf`), and
lmlab's char / byte vocabularies as tokenizer.json files that `transformers` loads offline
with the same ids."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import UserError
from lmlab.tokenizer.base import TOKENIZERS, concat_ids, no_vocab_size

EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")
BOS_NAMES = ("<s>", "<bos>", "<|begin_of_text|>")


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map: printable Latin-1 bytes map to
    themselves, the other 68 to code points from 256 upwards, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@TOKENIZERS.register("hf", "any Hugging Face tokenizer.json, given by tokenizer.path")
class HFTokenizer:
    kind = "hf"
    is_char_level = False
    pad_id = None

    def __init__(self, json_text: str):
        from tokenizers import Tokenizer

        self.json_text = json_text
        self.tk = Tokenizer.from_str(json_text)
        self.vocab_size = self.tk.get_vocab_size(with_added_tokens=True)
        self.eos_id = self._first_id(EOS_NAMES)
        self.bos_id = self._first_id(BOS_NAMES)

    def _first_id(self, names) -> int | None:
        for name in names:
            found = self.tk.token_to_id(name)
            if found is not None:
                return found
        return None

    @classmethod
    def from_corpus(cls, text: str, path: str = "", vocab_size: int = 0, min_frequency: int = 2) -> "HFTokenizer":
        no_vocab_size(cls.kind, vocab_size)
        if not path:
            raise UserError("tokenizer.kind='hf' needs tokenizer.path=PATH/tokenizer.json")
        file = Path(path).expanduser()
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise UserError(f"tokenizer.path={path!r}: {file} does not exist")
        return cls(file.read_text(encoding="utf-8"))

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        # The whole text at once: cutting it (at line ends, say) can change what an arbitrary
        # tokenizer.json's pre-tokenizer does at the cuts.
        return np.asarray(self.tk.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batch = getattr(self.tk, "encode_batch_fast", self.tk.encode_batch)  # _fast: no offsets (0.20+)
        return concat_ids([e.ids for e in batch(texts, add_special_tokens=False)])  # parallel, in Rust

    def decode(self, ids: list[int]) -> str:
        return self.tk.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_byte_lengths(self) -> np.ndarray:
        """Byte-level vocabularies: one byte per alphabet character; others: the decoded length."""
        reverse = set(byte_alphabet().values())
        special = {t.content for t in self.tk.get_added_tokens_decoder().values() if t.special}
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token, i in self.tk.get_vocab(with_added_tokens=True).items():
            if token in special:
                continue
            lengths[i] = len(token) if set(token) <= reverse else len(self.tk.decode([i]).encode("utf-8"))
        return lengths

    def to_json(self) -> dict[str, Any]:
        return {"tokenizer_json": self.json_text}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "HFTokenizer":
        return cls(values["tokenizer_json"])


def tiktoken_to_hf(tok):
    """A byte-level BPE `tokenizers` model equal to a tiktoken vocabulary: the ranks become the
    vocabulary (bytes written in GPT-2's byte alphabet) and the merges (every split of a token
    into two tokens, in the order of the merged token's rank); tiktoken's split regex becomes the
    pre-tokenizer. Special tokens keep their ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    from lmlab.tokenizer.pretrained import VOCABULARIES, parse_ranks

    spec = VOCABULARIES[tok.kind]
    ranks = parse_ranks(tok.ranks_text)
    alphabet = byte_alphabet()

    def show(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    vocab = {show(token): rank for token, rank in ranks.items()} | dict(spec.special_tokens)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        splits = [(token[:i], token[i:]) for i in range(1, len(token))
                  if token[:i] in ranks and token[i:] in ranks]
        splits.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges += [(show(a), show(b)) for a, b in splits]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    # Oniguruma (tokenizers' regex engine) reads `{1,3}+` as "one or more of {1,3}", not as a
    # possessive {1,3}: "2000" would stay one piece. Plain {1,3} is what tiktoken means there.
    pattern = spec.pattern.replace("{1,3}+", "{1,3}")
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    return tk


def to_hf_tokenizer(tok):
    """A transformers PreTrainedTokenizerFast with exactly the ids of an lmlab tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if tok.kind in ("hf", "bpe"):
        tk = Tokenizer.from_str(tok.json_text)
    elif tok.kind == "char":
        vocab = {c: i for i, c in enumerate(tok.chars)} | {"<unk>": tok.unk_id, "<|endoftext|>": tok.eos_id}
        tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
        tk.decoder = decoders.Fuse()
    elif tok.kind == "byte":
        vocab = {ch: b for b, ch in byte_alphabet().items()} | {"<|endoftext|>": tok.eos_id}
        tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tk.decoder = decoders.ByteLevel()
    elif tok.kind in ("gpt2", "cl100k_base"):
        tk = tiktoken_to_hf(tok)
    else:
        raise UserError(f"tokenizer.kind={tok.kind!r} has no Hugging Face export")
    eos = tok.decode([tok.eos_id]) if tok.kind in ("hf", "bpe") and tok.eos_id is not None else "<|endoftext|>"
    tk.add_special_tokens([eos] if tok.eos_id is not None else [])
    if tok.kind in ("gpt2", "cl100k_base"):
        from lmlab.tokenizer.pretrained import VOCABULARIES

        tk.add_special_tokens([t for t in VOCABULARIES[tok.kind].special_tokens if t != eos])
    unk = {"unk_token": "<unk>"} if tok.kind == "char" else {}
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos if tok.eos_id is not None else None, **unk)
