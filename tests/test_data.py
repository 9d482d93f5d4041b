import pytest
import torch

from lmlab.config import DataConfig
from lmlab.data import random_windows, eval_windows
from lmlab.data.builtin import builtin_text
from lmlab.data.split import cut_tail
from lmlab.data.sources import read_documents
from lmlab.errors import UserError


def test_builtin_corpus_is_deterministic_english():
    text = builtin_text()
    assert text == builtin_text()
    assert len(text) > 300_000
    assert "statement" in text and "class" in text


def test_split_cuts_at_a_line_break_near_the_fraction():
    text = "".join(f"line {i}\n" for i in range(1000))
    train, val, test = cut_tail(text, 0.1)
    assert train + val == text and test == ""
    assert train.endswith("\n")
    assert abs(len(val) / len(text) - 0.1) < 0.01


def _docs(data):
    return read_documents(data.source_list()[0], data)


def test_text_source_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        _docs(DataConfig(source="text", path=str(tmp_path / "missing.txt")))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(UserError, match="is empty"):
        _docs(DataConfig(source="text", path=str(tmp_path / "empty.txt")))
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(UserError, match="looks binary"):
        _docs(DataConfig(source="text", path=str(tmp_path / "bin.dat")))
    with pytest.raises(UserError, match="needs a file"):
        _docs(DataConfig(source="text"))


def test_invalid_utf8_is_refused_unless_an_encoding_says_how_to_read_it(tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello \xff\xfe world\n" * 50)
    with pytest.raises(UserError, match=r"bad.txt is not valid utf-8 \(byte 0xff at offset 6, line 1\); .*latin-1"):
        _docs(DataConfig(source="text", path=str(path)))
    assert _docs(DataConfig(source="text", path=str(path), encoding="latin-1"))[0].startswith("hello \xff\xfe world")
    docs = _docs(DataConfig(source="text", path=str(path), encoding="utf-8-replace"))
    assert "\ufffd" in docs[0]
    assert "100 invalid UTF-8 sequence(s) replaced" in capsys.readouterr().err


def test_random_windows_are_a_pure_function_of_step():
    tokens = torch.arange(1000)
    a = random_windows(tokens, 4, 16, seed=7)
    b = random_windows(tokens, 4, 16, seed=7)
    x5, y5, mask = a.batch(5)
    assert mask is None
    assert torch.equal(x5, b.batch(5)[0]) and torch.equal(y5, b.batch(5)[1])
    assert torch.equal(y5, x5 + 1)  # targets are inputs shifted by one
    assert x5.shape == (4, 16) and x5.dtype == torch.long
    assert not torch.equal(a.batch(5)[0], a.batch(6)[0])
    assert not torch.equal(a.batch(5)[0], random_windows(tokens, 4, 16, seed=8).batch(5)[0])
    two = random_windows(tokens, 4, 16, seed=7).split(2)  # a step of 2 micro-batches: different rows each
    assert not torch.equal(two.batch(5, micro=0)[0], two.batch(5, micro=1)[0])
    resumed = next(a.iterate(5))
    assert torch.equal(resumed[0], x5)


def test_eval_windows_score_each_token_once():
    tokens = torch.arange(101)
    seen = torch.cat([y.flatten() for _, y, _ in eval_windows(tokens, 3, 10)])
    assert torch.equal(seen, torch.arange(1, 101))
    capped = torch.cat([y.flatten() for _, y, _ in eval_windows(tokens, 3, 10, max_tokens=40)])
    # a cap spreads the windows over the whole split: 4 windows of the 10, from start to end
    assert torch.equal(capped, torch.cat([torch.arange(s + 1, s + 11) for s in (0, 30, 60, 90)]))
