"""lmlab tokenizers as Hugging Face tokenizers that `transformers` loads offline with the same ids.

One exporter per tokenizer kind in TOKENIZER_EXPORTS: it builds the `tokenizers` model and names
the end-of-text token, extra special tokens and the unknown token; `to_hf_tokenizer` wraps the
result. A tokenizer kind without an exporter cannot be exported (the error names those that can).

Special tokens are ids, not text: lmlab's char, byte, bpe and tiktoken kinds encode a literal
"<|endoftext|>" or "<unk>" in the data (WikiText writes <unk> for rare words) as the characters
or bytes it is made of, so the export sets `split_special_tokens`, which tokenizer_config.json keeps
and AutoTokenizer reads back. Kind `hf` keeps whatever its tokenizer.json does, as lmlab does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from lmlab.registry import Registry
from lmlab.tokenizer.alphabet import byte_alphabet

EOS = "<|endoftext|>"
TOKENIZER_EXPORTS: Registry = Registry("hf tokenizer export", config_field=False)


@dataclass
class Exported:
    """A `tokenizers.Tokenizer` plus the special tokens transformers must know about."""

    tk: Any
    eos: str = EOS
    specials: list[str] = field(default_factory=list)  # added after eos, in id order
    unk: str | None = None
    split_specials: bool = True  # special-token text in user text is plain text (lmlab's encode)


def exporter(*kinds: str) -> Callable:
    def add(fn: Callable) -> Callable:
        for kind in kinds:
            TOKENIZER_EXPORTS.register(kind, (fn.__doc__ or "").strip().split("\n")[0])(fn)
        return fn

    return add


@exporter("hf", "bpe")
def from_json_text(tok) -> Exported:
    """the saved tokenizer.json, as it is"""
    from tokenizers import Tokenizer

    eos = tok.decode([tok.eos_id]) if tok.eos_id is not None else EOS
    # bpe sets encode_special_tokens (it is not saved in the JSON); a loaded tokenizer.json does not
    return Exported(Tokenizer.from_str(tok.json_text), eos, split_specials=tok.tk.encode_special_tokens)


@exporter("char")
def from_chars(tok) -> Exported:
    """a word-level vocabulary of single characters, <unk> and <|endoftext|>"""
    # Each character is looked up alone, so an unseen one becomes unk_id, as in CharTokenizer.
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(tok.chars)} | {"<unk>": tok.unk_id, EOS: tok.eos_id}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
    tk.decoder = decoders.Fuse()
    return Exported(tk, unk="<unk>")


@exporter("byte")
def from_bytes(tok) -> Exported:
    """a byte-level BPE without merges"""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: b for b, ch in byte_alphabet().items()} | {EOS: tok.eos_id}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    return Exported(tk)


@exporter("gpt2", "cl100k_base")
def from_tiktoken(tok) -> Exported:
    """a byte-level BPE equal to the tiktoken ranks"""
    return Exported(tiktoken_to_hf(tok), specials=[t for t in tok.vocabulary.special_tokens if t != EOS])


def tiktoken_to_hf(tok):
    """A byte-level BPE `tokenizers` model equal to a tiktoken vocabulary: the ranks become the
    vocabulary (bytes written in GPT-2's byte alphabet) and the merges (every split of a token
    into two tokens, in the order of the merged token's rank); tiktoken's split regex becomes the
    pre-tokenizer. Special tokens keep their ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    from lmlab.tokenizer.pretrained import parse_ranks

    spec = tok.vocabulary
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
    from transformers import PreTrainedTokenizerFast

    from lmlab.errors import UserError

    if tok.kind not in TOKENIZER_EXPORTS:
        raise UserError(f"tokenizer.kind={tok.kind!r} has no Hugging Face export; "
                        f"exportable: {', '.join(TOKENIZER_EXPORTS.names())}")
    out = TOKENIZER_EXPORTS[tok.kind](tok)
    has_eos = tok.eos_id is not None
    out.tk.add_special_tokens([out.eos] if has_eos else [])
    if out.specials:
        out.tk.add_special_tokens(out.specials)
    unk = {"unk_token": out.unk} if out.unk else {}
    return PreTrainedTokenizerFast(tokenizer_object=out.tk, eos_token=out.eos if has_eos else None,
                                   split_special_tokens=out.split_specials, **unk)
