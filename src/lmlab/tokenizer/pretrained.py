"""OpenAI's pretrained BPE vocabularies through tiktoken: kinds `gpt2` and `cl100k_base`.

Where the vocabulary comes from (`tokenizer.path`):
- a ranks file in tiktoken's format, one `<base64 token bytes> <rank>` per line (gpt2.tiktoken,
  cl100k_base.tiktoken), or a folder holding one named after the kind;
- for gpt2 also a folder with OpenAI's original encoder.json + vocab.bpe;
- empty: fetched by name through tiktoken (needs the network or tiktoken's cache).
The ranks must be the published ones: their sha256 is checked against the hash tiktoken pins, so
`gpt2` can never quietly run on another file. The pattern strings and special ids are tiktoken's
(tiktoken_ext/openai_public.py); a test checks them against the installed package.

Run directories are self-contained: `to_json` embeds the ranks (0.8 MB for gpt2, 1.7 MB for
cl100k_base) with their sha256, so a run reloads with identical ids on any machine without the
original file, and a damaged or edited copy fails on load instead of changing the ids.

Special-token text in data is plain text: `encode` treats a literal "<|endoftext|>" inside a
document as the 13 characters it is (tiktoken's `disallowed_special=()`), never as `eos_id`, so data
can never forge a control token; code that means a document boundary inserts `eos_id` itself.
`decode` writes special ids as their text and drops ids that stand for no token (cl100k_base
leaves 100256 and 100261-100275 unused).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import UserError
from lmlab.tokenizer.base import TOKENIZERS, Tokenizer
from lmlab.tokenizer.alphabet import byte_alphabet

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Vocabulary:
    """One published vocabulary, as tiktoken_ext/openai_public.py defines it."""

    pattern: str  # the pre-tokenizer regex that splits text before merging
    special_tokens: dict[str, int]
    vocab_size: int  # highest id + 1 (cl100k_base has unused ids)
    sha256: str  # of the ranks in tiktoken's file format; tiktoken pins the same hash


# GPT-2's published regex is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+;
# tiktoken's r50k pattern below is equivalent and faster (the tests check the ids agree).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                  r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")

VOCABULARIES = {
    "gpt2": Vocabulary(GPT2_PATTERN, {EOS: 50256}, 50257,
                       "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "cl100k_base": Vocabulary(
        CL100K_PATTERN,
        {EOS: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
         "<|endofprompt|>": 100276},
        100277, "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


def bytes_per_token(tokenizer: Tokenizer, text: str) -> float:
    """Compression of `text` by `tokenizer`: UTF-8 bytes per token (1.0 for bytes; NaN for no tokens)."""
    n_tokens = len(tokenizer.encode_array(text))
    return len(text.encode("utf-8")) / n_tokens if n_tokens else float("nan")


# ---- ranks: bytes -> rank, as text in tiktoken's file format ----------------------------------

def parse_ranks(text: str) -> dict[bytes, int]:
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in text.splitlines() if line)}


def format_ranks(ranks: dict[bytes, int]) -> str:
    """tiktoken's file format, in rank order; byte for byte what OpenAI publishes."""
    return "".join(f"{base64.b64encode(token).decode()} {rank}\n"
                   for token, rank in sorted(ranks.items(), key=lambda item: item[1]))


def ranks_from_data_gym(folder: Path) -> str:
    """GPT-2's original files: encoder.json (token -> id, in GPT-2's printable byte alphabet) and
    vocab.bpe (merges in priority order). tiktoken needs the id of each token to be its merge rank,
    so merge n must produce the token with id 256 + n, as tiktoken itself checks."""
    to_byte = {char: byte for byte, char in byte_alphabet().items()}
    try:
        def raw(token: str) -> bytes:
            return bytes(to_byte[char] for char in token)

        encoder = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        ranks = {raw(token): rank for token, rank in encoder.items() if token != EOS}
        merges = (folder / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]  # after "#version"
        for rank, line in enumerate((m for m in merges if m), start=256):
            first, second = line.split()
            if ranks.get(raw(first) + raw(second)) != rank:
                raise ValueError(f"merge {line!r} does not give the token with id {rank}")
    except (ValueError, KeyError, AttributeError) as err:
        raise UserError(f"tokenizer.path={str(folder)!r}: encoder.json and vocab.bpe are not a GPT-2 "
                        f"vocabulary ({err})") from None
    return format_ranks(ranks)


def fetch_ranks(kind: str) -> str:
    """The published ranks by name, through tiktoken's own loader (network, or its cache)."""
    try:
        from tiktoken_ext import openai_public

        return format_ranks(getattr(openai_public, kind)()["mergeable_ranks"])
    except (OSError, ValueError, ImportError) as err:  # no network (requests' errors are OSErrors), bad hash
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:160]
        raise UserError(f"tokenizer.kind={kind!r} with an empty tokenizer.path fetches the vocabulary through "
                        f"tiktoken, which failed ({reason}); set tokenizer.path to a local {kind}.tiktoken") from None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("latin-1")).hexdigest()


# ---- the tokenizers --------------------------------------------------------------------------

class TiktokenTokenizer:
    """A published vocabulary, encoded by tiktoken. Subclasses name the kind."""

    kind = ""
    vocabulary: Vocabulary  # set by each subclass
    path_hint = ""  # other forms tokenizer.path may take, for the error message
    bos_id = None
    pad_id = None
    is_char_level = False

    def __init__(self, ranks_text: str, source: str):
        import tiktoken

        spec = self.vocabulary
        self.ranks_text, self.source = ranks_text, source
        ranks = parse_ranks(ranks_text)
        self.enc = tiktoken.Encoding(self.kind, pat_str=spec.pattern, mergeable_ranks=ranks,
                                     special_tokens=spec.special_tokens)
        self.vocab_size = self.enc.n_vocab
        if self.vocab_size != spec.vocab_size:  # the hash makes this impossible short of a code error
            raise UserError(f"tokenizer.kind={self.kind!r}: {self.vocab_size} ids, expected {spec.vocab_size}")
        self.eos_id = spec.special_tokens[EOS]
        self._lengths = np.zeros(self.vocab_size, dtype=np.int64)  # specials and unused ids: 0
        self._lengths[list(ranks.values())] = [len(token) for token in ranks]
        self._valid = self._lengths > 0
        self._valid[list(spec.special_tokens.values())] = True

    @classmethod
    def from_corpus(cls, text: str, path: str = "", *, vocab_size: int = 0, min_frequency: int = 2):
        """Read the vocabulary (the training text is not used; nor is min_frequency, which is bpe's)."""
        size = cls.vocabulary.vocab_size
        if vocab_size not in (0, size):
            raise UserError(f"tokenizer.vocab_size={vocab_size} does not apply to tokenizer.kind={cls.kind!r}, "
                            f"whose vocabulary has {size} ids; use 0")
        return cls(cls.read_ranks(path), source=path or f"tiktoken:{cls.kind}")

    @classmethod
    def read_ranks(cls, path: str) -> str:
        """The ranks text named by `tokenizer.path` (see the module docstring), checked against the pin."""
        text = cls.local_ranks(Path(path).expanduser(), path) if path else fetch_ranks(cls.kind)
        expected = cls.vocabulary.sha256
        if sha256(text) != expected:
            raise UserError(f"tokenizer.path={path!r} is not OpenAI's {cls.kind} vocabulary: sha256 "
                            f"{sha256(text)[:16]}..., expected {expected[:16]}...")
        return text

    @classmethod
    def local_ranks(cls, file: Path, path: str) -> str:
        """A {kind}.tiktoken file, or a folder holding one."""
        if file.is_dir() and (file / f"{cls.kind}.tiktoken").is_file():
            file = file / f"{cls.kind}.tiktoken"
        if file.is_file():
            return file.read_bytes().decode("latin-1")  # a ranks file is ASCII; anything else fails the hash
        problem = f"has no {cls.kind}.tiktoken" if file.is_dir() else "does not exist"
        raise UserError(f"tokenizer.path={path!r}: {file} {problem}; expected a {cls.kind}.tiktoken file "
                        f"or a folder holding it{cls.path_hint}")

    def encode(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)  # special-token text stays plain text

    def encode_array(self, text: str) -> np.ndarray:
        return self.enc.encode_to_numpy(text, disallowed_special=()).astype(np.int64)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Groups of documents on all cores (tiktoken releases the GIL), each straight to numpy.
        (tiktoken's own encode_ordinary_batch submits one task per document: slower on many short ones.)"""
        import os
        from concurrent.futures import ThreadPoolExecutor

        def run(group: list[str]) -> list[np.ndarray]:
            return [self.enc.encode_to_numpy(t, disallowed_special=()) for t in group]

        groups, size, current = [], 0, []
        for text in texts:
            current.append(text)
            size += len(text)
            if size >= 262_144:
                groups.append(current)
                current, size = [], 0
        groups.append(current)
        with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, len(groups))) as pool:
            arrays = [a for part in pool.map(run, groups) for a in part]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        flat = np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)
        return flat, lengths

    def decode(self, ids: list[int]) -> str:
        valid, n = self._valid, self.vocab_size
        return self.enc.decode([i for i in map(int, ids) if 0 <= i < n and valid[i]])

    def token_byte_lengths(self) -> np.ndarray:
        return self._lengths.copy()

    @cached_property
    def _sha256(self) -> str:
        return sha256(self.ranks_text)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self._sha256, "ranks": self.ranks_text}

    @classmethod
    def from_json(cls, values: dict[str, Any]):
        text = values.get("ranks", "")
        if sha256(text) != values.get("sha256") or values.get("sha256") != cls.vocabulary.sha256:
            raise UserError(f"the saved {cls.kind} tokenizer (from {values.get('source')!r}) is damaged: its "
                            f"ranks do not match OpenAI's sha256; rebuild it from tokenizer.path")
        return cls(text, values.get("source", ""))


@TOKENIZERS.register("gpt2", "GPT-2's 50,257-token BPE (tiktoken; tokenizer.path: gpt2.tiktoken or "
                             "encoder.json + vocab.bpe; empty = download)")
class GPT2Tokenizer(TiktokenTokenizer):
    kind = "gpt2"
    vocabulary = VOCABULARIES["gpt2"]
    path_hint = " or a folder with encoder.json + vocab.bpe"

    @classmethod
    def local_ranks(cls, file: Path, path: str) -> str:
        """Also GPT-2's original encoder.json + vocab.bpe, when the folder has no gpt2.tiktoken."""
        if (file.is_dir() and not (file / "gpt2.tiktoken").is_file() and (file / "encoder.json").is_file()
                and (file / "vocab.bpe").is_file()):
            return ranks_from_data_gym(file)
        return super().local_ranks(file, path)


@TOKENIZERS.register("cl100k_base", "GPT-4's cl100k_base BPE, 100,277 ids (tiktoken; tokenizer.path: "
                                    "cl100k_base.tiktoken; empty = download)")
class CL100kTokenizer(TiktokenTokenizer):
    kind = "cl100k_base"
    vocabulary = VOCABULARIES["cl100k_base"]
