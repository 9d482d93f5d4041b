"""Learned and pretrained vocabularies on real text: bpe (trained with `tokenizers`), gpt2 and
cl100k_base (tiktoken, from the local files in shared/data/tokenizers)."""

import json
import math
import shutil

import numpy as np
import pytest

from lmlab.errors import UserError
from lmlab.tokenizer import TOKENIZERS, load_tokenizer, save_tokenizer
from lmlab.tokenizer.bpe import safe_pieces
from lmlab.tokenizer.pretrained import VOCABULARIES, bytes_per_token, parse_ranks

KINDS = ("char", "byte", "bpe", "gpt2", "cl100k_base")
TRICKY = ("naïve café — ∑ 🙂 日本語 Ünïcödé\n    indented  code(x, y)\n\tand\r\n trailing   \n\n"
          "it's 1234567 they'll I'M 3.14 <|endoftext|><|fim_prefix|>\u00a0nbsp\u3000ideographic\n"
          "sep!\x1c!\x1d\x1e\x1f!x\x85y!\u2028z\n")


def build(kind, text="", path="", **options):
    return TOKENIZERS.get(kind).from_corpus(text, path, **options)


@pytest.fixture(scope="module")
def files(shared_data):
    return shared_data / "tokenizers"


@pytest.fixture(scope="module")
def stories(shared_data):
    return (shared_data / "tinystories" / "tinystories_train_sample_2MiB.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def real_text(stories, shared_data):
    """~200 KB of Shakespeare and TinyStories (with its literal <|endoftext|> lines) and odd Unicode."""
    shakespeare = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    return shakespeare[:100_000] + TRICKY + stories[:100_000]


@pytest.fixture(scope="module")
def toks(files, stories, real_text):
    return {
        "char": build("char", real_text),
        "byte": build("byte"),
        "bpe": build("bpe", stories[:200_000], vocab_size=3000),
        "gpt2": build("gpt2", path=str(files / "gpt2")),  # encoder.json + vocab.bpe
        "cl100k_base": build("cl100k_base", path=str(files / "cl100k_base" / "cl100k_base.tiktoken")),
    }


def test_definitions_match_tiktoken(monkeypatch):
    """Our patterns, special ids, sizes and pinned hashes are tiktoken's own (no download)."""
    from tiktoken_ext import openai_public

    pinned = {}  # url -> the sha256 tiktoken expects of it
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe",
                        lambda url, expected_hash: pinned.update({url: expected_hash}) or {})
    monkeypatch.setattr(openai_public, "data_gym_to_mergeable_bpe_ranks", lambda **kwargs: {})
    # gpt2 is r50k_base (same ranks, pattern and specials); tiktoken pins the ranks file as r50k_base's
    for kind, pinned_as in (("gpt2", "r50k_base"), ("cl100k_base", "cl100k_base")):
        spec, theirs = VOCABULARIES[kind], getattr(openai_public, kind)()
        same_ranks = getattr(openai_public, pinned_as)()
        assert (spec.pattern, spec.special_tokens) == (theirs["pat_str"], theirs["special_tokens"])
        assert (spec.pattern, spec.special_tokens) == (same_ranks["pat_str"], same_ranks["special_tokens"])
        assert spec.vocab_size == max(spec.special_tokens.values()) + 1
        assert spec.vocab_size == theirs.get("explicit_n_vocab", spec.vocab_size)
        assert spec.sha256 == pinned[f"https://openaipublic.blob.core.windows.net/encodings/{pinned_as}.tiktoken"]
    assert VOCABULARIES["gpt2"].vocab_size == 50257 and VOCABULARIES["cl100k_base"].vocab_size == 100277


def test_gpt2_tiktoken_and_tokenizers_give_the_same_ids(toks, files, real_text, stories):
    """GPT-2 two ways: tiktoken with its r50k pattern, and Hugging Face `tokenizers` built from
    OpenAI's encoder.json + vocab.bpe with GPT-2's original regex (ByteLevel)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    hf = Tokenizer(models.BPE.from_file(str(files / "gpt2" / "encoder.json"), str(files / "gpt2" / "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    text = real_text + stories[100_000:300_000]  # ~400 KB
    ids = toks["gpt2"].encode(text)
    assert ids == hf.encode(text, add_special_tokens=False).ids
    assert len(ids) > 80_000 and hf.decode(ids) == text


def test_gpt2_sources_agree(toks, files):
    """encoder.json + vocab.bpe, gpt2.tiktoken and the folder holding it give the same ranks."""
    ranks = toks["gpt2"].ranks_text
    assert build("gpt2", path=str(files / "gpt2" / "gpt2.tiktoken")).ranks_text == ranks
    assert len(parse_ranks(ranks)) == 50256


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_and_byte_lengths_on_real_text(kind, toks, real_text):
    tok = toks[kind]
    ids = tok.encode(real_text)
    assert np.array_equal(tok.encode_array(real_text), ids)
    assert tok.decode(ids) == real_text
    assert tok.eos_id not in ids  # "<|endoftext|>" in the data is plain text
    lengths = tok.token_byte_lengths()
    assert lengths.shape == (tok.vocab_size,) and lengths[tok.eos_id] == 0
    assert lengths[np.array(ids)].sum() == len(real_text.encode("utf-8"))


def test_cl100k_base(toks):
    tok = toks["cl100k_base"]
    assert (tok.vocab_size, tok.eos_id) == (100277, 100257)
    assert tok.decode([100258, 100276, tok.eos_id]) == "<|fim_prefix|><|endofprompt|><|endoftext|>"
    assert tok.decode([100256, 100261, 10**6, -1]) == ""  # ids that stand for no token
    assert tok.token_byte_lengths()[[100256, 100261, 100276]].sum() == 0
    assert tok.encode("hello world") == [15339, 1917]  # tiktoken's documented example


def test_bpe_trained_on_tinystories(toks, stories):
    tok, sample = toks["bpe"], stories[:200_000]
    assert tok.vocab_size == 3000 and tok.eos_id == 0 and tok.decode([0]) == "<|endoftext|>"
    assert bytes_per_token(tok, stories[200_000:400_000]) > 2.0 > bytes_per_token(toks["byte"], sample) == 1.0
    assert build("bpe", sample, vocab_size=3000).to_json() == tok.to_json()  # training is deterministic


def test_bpe_pieces_never_change_the_ids(toks):
    """encode_array cuts text only where GPT-2's pre-tokenizer would cut it anyway."""
    text, tk = TRICKY * 3, toks["bpe"].tk

    def words(part):  # GPT-2's pre-tokenization, which merges never cross
        return [word for word, _ in tk.pre_tokenizer.pre_tokenize_str(part)]

    for size in (1, 3, 17):
        pieces = safe_pieces(text, size)
        assert "".join(pieces) == text and len(pieces) > 10
        assert [word for p in pieces for word in words(p)] == words(text)
        assert [i for p in pieces for i in toks["bpe"].encode(p)] == toks["bpe"].encode(text)


def test_bpe_smaller_than_asked_warns():
    with pytest.warns(UserWarning, match="tokenizer.vocab_size=4096"):
        tok = build("bpe", "low lower lowest " * 50)
    assert 257 < tok.vocab_size < 4096


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_identical(kind, toks, real_text, tmp_path):
    tok = toks[kind]
    save_tokenizer(tok, tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.to_json() == tok.to_json() and again.vocab_size == tok.vocab_size
    assert again.encode(real_text) == tok.encode(real_text)
    assert np.array_equal(again.token_byte_lengths(), tok.token_byte_lengths())


def test_run_dir_needs_no_pretrained_file(files, tmp_path):
    """The ranks travel with the run: loading works after the source file is gone."""
    copy = tmp_path / "gpt2.tiktoken"
    shutil.copy(files / "gpt2" / "gpt2.tiktoken", copy)
    tok = build("gpt2", path=str(tmp_path))  # a folder holding gpt2.tiktoken
    save_tokenizer(tok, tmp_path / "run")
    copy.unlink()
    assert load_tokenizer(tmp_path / "run").encode("Hello world") == [15496, 995]


def test_damaged_saved_ranks_fail(toks, tmp_path):
    save_tokenizer(toks["gpt2"], tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    saved["ranks"] = saved["ranks"].replace(" 1000\n", " 1001\n", 1)
    (tmp_path / "tokenizer.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match="damaged"):
        load_tokenizer(tmp_path)


def test_by_name_uses_tiktoken_and_reports_failure(monkeypatch, files):
    from tiktoken_ext import openai_public

    ranks = parse_ranks((files / "cl100k_base" / "cl100k_base.tiktoken").read_text())
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda url, expected_hash: ranks)
    assert build("cl100k_base").to_json()["source"] == "tiktoken:cl100k_base"

    def offline(**kwargs):
        raise ConnectionError("no network\nsecond line")

    monkeypatch.setattr(openai_public, "data_gym_to_mergeable_bpe_ranks", offline)
    with pytest.raises(UserError, match=r"tokenizer\.path.*gpt2\.tiktoken") as err:
        build("gpt2")
    assert "\n" not in str(err.value) and "ConnectionError" in str(err.value)


@pytest.mark.parametrize("kind, path, options, field", [
    ("gpt2", "/nonexistent/gpt2.tiktoken", {}, "tokenizer.path"),
    ("cl100k_base", "/nonexistent", {}, "tokenizer.path"),
    ("cl100k_base", "GPT2_FILE", {}, "tokenizer.path"),  # the wrong vocabulary's file
    ("gpt2", "", {"vocab_size": 1000}, "tokenizer.vocab_size"),
    ("bpe", "", {"vocab_size": 100}, "tokenizer.vocab_size"),  # fewer than 256 bytes + <|endoftext|>
    ("bpe", "", {"vocab_size": 1}, "tokenizer.vocab_size"),
    ("bpe", "", {"min_frequency": 0}, "tokenizer.min_frequency"),
    ("bpe", "some.json", {}, "tokenizer.path"),
])
def test_bad_input_is_one_line_naming_the_field(kind, path, options, field, files):
    path = str(files / "gpt2" / "gpt2.tiktoken") if path == "GPT2_FILE" else path
    with pytest.raises(UserError) as err:
        build(kind, "some text", path, **options)
    message = str(err.value)
    assert message.startswith(field + "=") and "\n" not in message


def test_bytes_per_token_of_empty_text_is_nan(toks):
    assert math.isnan(bytes_per_token(toks["byte"], ""))
