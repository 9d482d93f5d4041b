import numpy as np

from lmlab.tokenizer import build_tokenizer, load_tokenizer, save_tokenizer


def test_char_round_trip_on_real_text(shakespeare):
    text = shakespeare.read_text()
    tok = build_tokenizer("char", text)
    assert tok.vocab_size == 65 + 2  # 65 characters, <unk>, <|endoftext|>
    ids = tok.encode(text[:5000])
    assert tok.decode(ids) == text[:5000]
    assert np.array_equal(tok.encode_array(text[:5000]), np.array(ids))


def test_char_unknown_characters_map_to_unk():
    tok = build_tokenizer("char", "abc")
    ids = tok.encode("abz€")
    assert ids[2] == ids[3] == tok.unk_id
    assert tok.decode(ids) == "ab\ufffd\ufffd"
    assert tok.decode([tok.eos_id]) == ""


def test_byte_round_trip_utf8():
    tok = build_tokenizer("byte", "")
    text = "héllo wörld — ∑ 🙂"
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text.encode("utf-8"))
    assert tok.vocab_size == 257 and tok.eos_id == 256


def test_byte_lengths_sum_to_utf8_length():
    text = "naïve café ∑"
    for kind in ("char", "byte"):
        tok = build_tokenizer(kind, text)
        lengths = tok.token_byte_lengths()
        assert lengths.shape == (tok.vocab_size,)
        assert lengths[tok.encode_array(text)].sum() == len(text.encode("utf-8"))
        assert lengths[tok.eos_id] == 0


def test_save_load(tmp_path, shakespeare):
    text = shakespeare.read_text()[:20000]
    for kind in ("char", "byte"):
        tok = build_tokenizer(kind, text)
        save_tokenizer(tok, tmp_path / kind)
        again = load_tokenizer(tmp_path / kind)
        assert again.encode(text) == tok.encode(text) and again.vocab_size == tok.vocab_size
