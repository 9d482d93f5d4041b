"""Corpora: every source kind on real files, mixtures, layouts, splits, statistics, the token cache,
the CLI's `prepare`, and each bad input's one-line error."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from lmlab.cli import main
from lmlab.config import RunConfig, apply_overrides, load_config
from lmlab.data import Rows, Stream
from lmlab.data.prepare import prepare
from lmlab.data.config import DataConfig, SourceConfig
from lmlab.data.layout import pack, rows_layout
from lmlab.data.mixture import mixture_probs
from lmlab.data.sources import read_documents
from lmlab.data.synthetic import markov_chain, markov_entropy
from lmlab.errors import UserError
from lmlab.presets import get_preset
from lmlab.tokenizer import build_tokenizer

GSM8K = "mix/gsm8k/train.jsonl"
AG_NEWS = "mix/ag_news/test.csv"
TINYSTORIES = "tinystories/tinystories_train_sample_2MiB.txt"


def docs_of(shared_data, **fields) -> list[str]:
    data = DataConfig(root=str(shared_data))
    return read_documents(SourceConfig(**fields), data)


def config(*sources, **data) -> RunConfig:
    """A tiny char-level run over the given [[data.sources]] tables."""
    cfg = get_preset("tiny")
    return cfg.replace(data={"sources": list(sources), **data})


# --- sources ----------------------------------------------------------------------------------


def test_text_source_document_modes(shared_data, tmp_path):
    stories = docs_of(shared_data, path=TINYSTORIES, docs="delimiter")
    assert len(stories) == 2317  # 2,316 <|endoftext|> lines: 2,317 stories
    assert all("<|endoftext|>" not in s for s in stories)
    assert stories[0].startswith("One day, a little girl named Lily")
    lines = docs_of(shared_data, path="wikitext-2/test.txt", docs="line")
    assert len(lines) == 2891  # the non-blank lines (the raw export's row count, SOURCES.md)
    (tmp_path / "a.txt").write_text("p1 line1\np1 line2\n\n\np2\n")
    (tmp_path / "b.txt").write_text("second file\n")
    (tmp_path / ".hidden").write_text("never read\n")
    assert docs_of(tmp_path, path="a.txt", docs="paragraph") == ["p1 line1\np1 line2", "p2"]
    assert docs_of(tmp_path, path=".", docs="file") == ["p1 line1\np1 line2\n\n\np2\n", "second file\n"]
    assert docs_of(tmp_path, path="*.txt", docs="line", max_docs=2) == ["p1 line1", "p1 line2"]


def test_table_sources_render_fields_and_templates(shared_data, tmp_path):
    gsm = docs_of(shared_data, kind="jsonl", path=GSM8K, template="{question}\n{answer}")
    rows = [json.loads(line) for line in (shared_data / GSM8K).read_text().splitlines()]
    assert len(gsm) == len(rows) == 7473
    assert gsm[0] == rows[0]["question"] + "\n" + rows[0]["answer"]
    news = docs_of(shared_data, kind="csv", path=AG_NEWS, columns="label,title,description",
                   template="{title}. {description}", max_docs=3)
    assert news[0].startswith("Fears for T N pension after talks. Unions representing workers")
    (tmp_path / "rows.json").write_text(json.dumps({"data": [{"text": "one"}, {"text": "two"}]}))
    assert docs_of(tmp_path, kind="json", path="rows.json") == ["one", "two"]
    (tmp_path / "h.csv").write_text("title,body\nA,alpha\nB,beta\n")
    assert docs_of(tmp_path, kind="csv", path="h.csv", field="body") == ["alpha", "beta"]


def test_parquet_source(shared_data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (shared_data / GSM8K).read_text().splitlines()[:50]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "gsm.parquet")
    got = docs_of(tmp_path, kind="parquet", path="gsm.parquet", template="{question}\n{answer}")
    assert got == [r["question"] + "\n" + r["answer"] for r in rows]


def test_hf_source_through_datasets_on_local_files(shared_data, tmp_path, monkeypatch):
    """The real `datasets.load_dataset` path (json and text builders) on local files: no mock."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    via_hf = docs_of(shared_data, kind="hf", dataset="json", path=GSM8K, template="{question}\n{answer}",
                     max_docs=100)
    direct = docs_of(shared_data, kind="jsonl", path=GSM8K, template="{question}\n{answer}", max_docs=100)
    assert via_hf == direct
    streamed = docs_of(shared_data, kind="hf", dataset="json", path=GSM8K, field="question", streaming=True,
                       max_docs=5)
    assert streamed == [d.split("\n")[0] for d in direct[:5]]
    text = docs_of(shared_data, kind="hf", dataset="text", path="wikitext-2/valid.txt", max_docs=20)
    assert text == docs_of(shared_data, path="wikitext-2/valid.txt", docs="line", max_docs=20)
    with pytest.raises(UserError, match="no field 'missing'"):
        docs_of(shared_data, kind="hf", dataset="json", path=GSM8K, field="missing")


def test_builtin_and_synthetic_sources():
    from lmlab.data.builtin import builtin_text

    assert read_documents(SourceConfig(kind="builtin"), DataConfig()) == [builtin_text()]
    counting = read_documents(SourceConfig(kind="synthetic", generator="counting", n_docs=50, seed=3), DataConfig())
    for doc in counting:
        numbers = list(map(int, doc.split()))
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and 32 <= len(numbers) <= 64
    assert counting == read_documents(SourceConfig(kind="synthetic", n_docs=50, seed=3), DataConfig())
    copy = read_documents(SourceConfig(kind="synthetic", generator="copy", n_docs=5, length=20), DataConfig())
    assert all(d.split("|")[0] == d.split("|")[1] and len(d) == 21 for d in copy)
    ind = read_documents(SourceConfig(kind="synthetic", generator="induction", n_docs=5, length=20), DataConfig())
    assert all(d[:10] == d[10:] for d in ind)


def test_markov_entropy_matches_the_formula_and_the_samples():
    src = SourceConfig(kind="synthetic", generator="markov", symbols=3, order=1, alpha=1.0, n_docs=50,
                       length=4000, seed=5)
    probs, pi = markov_chain(src)
    np.testing.assert_allclose(pi @ probs, pi, atol=1e-12)  # stationary
    expected = -sum(pi[i] * probs[i, j] * math.log2(probs[i, j]) for i in range(3) for j in range(3))
    assert markov_entropy(src) == pytest.approx(expected, rel=1e-12)
    # The empirical conditional entropy of the samples agrees with the rate.
    text = "".join(read_documents(src, DataConfig()))
    ids = np.frombuffer(text.encode(), dtype=np.uint8) - ord("a")
    pairs = np.zeros((3, 3))
    np.add.at(pairs, (ids[:-1], ids[1:]), 1)
    cond = pairs / pairs.sum(1, keepdims=True)
    empirical = -(pairs / pairs.sum() * np.log2(cond)).sum()
    assert empirical == pytest.approx(expected, abs=0.01)


# --- layouts ----------------------------------------------------------------------------------


def test_pack_joins_documents_with_end_of_text():
    part = pack(np.array([1, 2, 3, 4, 5]), np.array([2, 3]), eos_id=9, dtype=np.uint16)
    assert part.tokens.tolist() == [1, 2, 9, 3, 4, 5] and part.tokens.dtype == np.uint16
    x, y, mask = part.sample(torch.Generator().manual_seed(0), 4, 3)
    assert mask is None and torch.equal(x[:, 1:], y[:, :-1])


def test_pad_rows_mask_padding_and_cut_long_documents():
    flat = np.arange(1, 1 + 3 + 12)
    part, counts = rows_layout(flat, np.array([3, 12]), eos_id=0, T=8, stride=4, layout="pad", dtype=np.uint16)
    assert part.rows.tolist()[0] == [1, 2, 3, 0, 0, 0, 0, 0, 0]  # doc, eos, pads (eos id)
    assert part.n_real.tolist() == [4, 9]
    assert counts == {"rows": 2, "padded_rows": 1, "chunked_docs": 0, "truncated_docs": 1}
    x, y, mask = part._batch(np.array([0, 1]))
    assert mask[0].tolist() == [True] * 3 + [False] * 5  # targets 2, 3, eos
    assert mask[1].all()
    part.score_pads = True  # data.score_pads: the known mistake, every pad target scored too
    assert part._batch(np.array([0, 1]))[2].all()


def test_score_pads_is_refused_without_padding_and_shares_the_cache():
    with pytest.raises(UserError, match="data.score_pads=true needs padding to score"):
        prepare(get_preset("tiny").replace(data={"score_pads": True}))
    cfg = config({"kind": "synthetic", "generator": "counting", "n_docs": 60, "length": 6}, layout="pad")
    honest, mistaken = prepare(cfg), prepare(cfg.replace(data={"score_pads": True}))
    assert mistaken.directory == honest.directory  # the arrays are the same; only the masks differ
    assert not honest.splits["val"]["counting"].score_pads and mistaken.splits["val"]["counting"].score_pads


def test_chunk_windows_overlap_by_stride_and_score_every_token_once():
    L, T, S = 600, 256, 128
    flat = np.arange(1, L + 1)
    part, counts = rows_layout(flat, np.array([L]), eos_id=0, T=T, stride=S, layout="chunk", dtype=np.uint16)
    assert [r[0] for r in part.rows.tolist()] == [1, 129, 257, 385]  # starts every stride
    assert counts["chunked_docs"] == 1 and counts["rows"] == 4
    x, y, mask = part._batch(np.arange(4))
    scored = y[mask]
    assert sorted(scored.tolist()) == [0] + list(range(2, L + 1))  # each token (and the eos) once
    assert part.scored == L  # L-1 tokens after the first, plus the end-of-text


def test_pad_layout_trains_with_the_mask(tmp_path):
    from lmlab.train import train

    cfg = config({"kind": "synthetic", "generator": "counting", "n_docs": 300, "length": 6}, layout="pad")
    result = train(cfg.replace(train={"max_steps": 30}, eval={"max_tokens": 0}), tmp_path / "run")
    stats = json.loads((tmp_path / "run" / "data" / "stats.json").read_text())
    assert stats["layout"]["padded_rows"] == stats["layout"]["rows"]  # every document is shorter than 33
    assert stats["layout"]["utilization"] < 1.0
    val = prepare(cfg).splits["val"]["counting"]
    assert result.metrics["tokens"] == val.scored  # padding is not scored
    assert result.metrics["pad_targets"] == 0  # and the evaluation records it (lmlab.sanity reads it)
    assert result.metrics["loss"] < math.log(prepare(cfg).tokenizer.vocab_size) - 0.5


# --- mixtures and splits ------------------------------------------------------------------------


def test_mixture_probabilities_hit_token_and_document_shares():
    T = 16
    a = Stream(np.zeros(10_000, np.uint16), docs=100)  # 100 tokens per document
    b = Rows(np.ones((500, T + 1), np.uint16), np.full(500, 5, np.int32), np.zeros(500, np.int32), 500, "pad")
    parts = {"a": a, "b": b}
    for weight_by, measure in (("tokens", lambda p: p.tokens_per_unit(T)), ("docs", lambda p: p.docs_per_unit(T))):
        probs = mixture_probs(parts, {"a": 3.0, "b": 1.0}, weight_by, T)
        share = {n: probs[n] * measure(p) for n, p in parts.items()}
        assert share["a"] / (share["a"] + share["b"]) == pytest.approx(0.75)
    size = mixture_probs(parts, {"a": 1.0, "b": 1.0}, "size", T)
    tokens = {n: size[n] * p.tokens_per_unit(T) for n, p in parts.items()}
    assert tokens["a"] / tokens["b"] == pytest.approx(a.real_tokens / b.scored)


def test_sampled_mixture_matches_weights_and_is_deterministic():
    letters = {"kind": "synthetic", "name": "letters", "generator": "copy", "n_docs": 400, "length": 40,
               "weight": 3.0}
    digits = {"kind": "synthetic", "name": "digits", "generator": "counting", "n_docs": 400, "weight": 1.0}
    cfg = config(letters, digits)
    data = prepare(cfg)
    tok = data.tokenizer
    digit_ids = torch.tensor([tok.encode(d)[0] for d in "0123456789 "])
    batches = data.train_batches(32, 32, seed=1)
    rows_from_digits = sum(int(torch.isin(batches.batch(s)[0][:, :8], digit_ids).all(1).sum()) for s in range(200))
    assert rows_from_digits / (200 * 32) == pytest.approx(0.25, abs=0.02)
    again = prepare(cfg).train_batches(32, 32, seed=1)
    assert torch.equal(again.batch(7)[0], batches.batch(7)[0])


def test_splits_are_seeded_and_stable_when_a_source_is_added():
    stories = {"kind": "text", "name": "stories", "path": TINYSTORIES, "docs": "delimiter", "max_docs": 300}
    one = prepare(config(stories))
    same = prepare(config(stories, cache=False))
    other_seed = prepare(config(stories, seed=99, cache=False))
    two = prepare(config(stories, {"kind": "synthetic", "generator": "counting", "n_docs": 100}).replace(
        tokenizer={"kind": "byte"}))
    one_byte = prepare(config(stories).replace(tokenizer={"kind": "byte"}))
    val = one.splits["val"]["stories"].tokens
    assert np.array_equal(val, same.splits["val"]["stories"].tokens)
    assert not np.array_equal(val, other_seed.splits["val"]["stories"].tokens)
    assert np.array_equal(one_byte.splits["val"]["stories"].tokens, two.splits["val"]["stories"].tokens)
    assert one.splits["val"]["stories"].docs == 30  # 10% of 300 documents


def test_explicit_split_sources_and_the_test_split(tmp_path):
    train_src = {"kind": "text", "name": "wt_train", "path": "wikitext-2/test.txt", "docs": "line", "split": "train"}
    val_src = {"kind": "text", "name": "wt_valid", "path": "wikitext-2/valid.txt", "docs": "line", "split": "val"}
    data = prepare(config(train_src, val_src))
    assert list(data.splits["train"]) == ["wt_train"] and list(data.splits["val"]) == ["wt_valid"]
    assert data.stats["sources"][1]["train_share"] == 0.0
    cut = prepare(config({"kind": "builtin"}, test_fraction=0.1))
    sizes = cut.stats["splits"]["tokens"]
    assert sizes["test"] / sum(sizes.values()) == pytest.approx(0.1, abs=0.01)


# --- statistics -----------------------------------------------------------------------------------


def test_statistics_of_a_small_corpus_by_hand(tmp_path):
    rows = [{"t": "ab"}, {"t": "abcdef"}, {"t": "a" * 20}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "val.jsonl").write_text(json.dumps({"t": "ba"}))
    cfg = config({"kind": "jsonl", "name": "tr", "path": str(tmp_path / "train.jsonl"), "field": "t",
                  "split": "train"},
                 {"kind": "jsonl", "name": "va", "path": str(tmp_path / "val.jsonl"), "field": "t", "split": "val"},
                 layout="chunk", stride=4).replace(model={"context_len": 8})
    stats = prepare(cfg).stats
    tr, va = stats["sources"]
    assert (tr["samples"], tr["tokens"], tr["avg_tokens"]) == (3, 28, pytest.approx(28 / 3))
    assert tr["p50"] == 6 and tr["max"] == 20 and tr["pct_tokens"] == pytest.approx(100 * 28 / 30)
    assert (va["samples"], va["tokens"], va["train_share"]) == (1, 2, 0.0)
    lay = stats["layout"]
    # "ab"+eos and "abcdef"+eos fit in 9; "a"*20+eos = 21 tokens -> windows at 0, 4, 8, 12 (12+9 >= 21);
    # val "ba"+eos: 1 row. Rows: 2 + 4 + 1 = 7, padded: 3 short rows + the last chunk (9 of 9? 21-12 = 9: full)
    assert lay["rows"] == 7 and lay["chunked_docs"] == 1 and lay["padded_rows"] == 3
    assert lay["utilization"] == pytest.approx((3 + 7 + 4 * 9 + 3) / (7 * 9))
    assert stats["tokenizer"]["vocab_coverage"] == pytest.approx(len({"a", "b", "c", "d", "e", "f", "<eos>"})
                                                                 / stats["tokenizer"]["vocab_size"])


def test_prepare_cli_prints_the_seed_table_and_writes_files(tmp_path, capsys):
    assert main(["prepare", "llmini_mix", "--out", str(tmp_path / "stats")]) == 0
    out = capsys.readouterr().out
    assert "| Dataset | Samples | Tokens | % Tokens | Avg Tok/Sample |" in out
    for name in ("tinystories", "squad", "wikitext2", "sciq", "ag_news", "gsm8k", "commonsense_qa", "**Total**",
                 "Token utilization"):
        assert name in out
    assert "| gsm8k | 7,473 |" in out and "| commonsense_qa | 1,221 |" in out
    written = {p.name for p in (tmp_path / "stats").iterdir()}
    assert written == {"stats.json", "stats.csv", "lengths.png"}
    assert (tmp_path / "stats" / "stats.csv").read_text().startswith("name,kind,weight,split,samples,tokens")
    assert main(["prepare", "markov", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sources"][0]["entropy_bits_per_symbol"] == pytest.approx(
        markov_entropy(SourceConfig(**get_preset("markov").data.sources[0].to_dict())))


# --- cache ----------------------------------------------------------------------------------------


def test_cache_reuses_and_invalidates(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 500)
    cfg = config({"kind": "text", "path": str(corpus)}, cache_dir=str(tmp_path / "cache"))
    first = prepare(cfg)
    assert not first.stats.get("cached") and first.directory.is_dir()
    second = prepare(cfg)
    assert second.stats["cached"] and second.directory == first.directory
    assert isinstance(second.splits["train"][first.stats["sources"][0]["name"]].tokens, np.memmap)
    assert second.splits["train"]["corpus"].tokens.dtype == np.uint16
    corpus.write_text("changed text\n" * 500)
    os.utime(corpus, ns=(1, 1))
    third = prepare(cfg)
    assert not third.stats.get("cached") and third.directory != first.directory
    other_tok = prepare(cfg.replace(tokenizer={"kind": "byte"}))
    assert other_tok.directory not in (first.directory, third.directory)
    (third.directory / "train-0.tokens.npy").unlink()  # a damaged entry is rebuilt
    assert not prepare(cfg).stats.get("cached")
    assert not [p for p in (tmp_path / "cache" / "tokens").iterdir() if ".tmp" in p.name]


def _damage(entry, change, rehash: bool = False) -> None:
    """Rewrite the entry's training tokens; with `rehash`, also the hash meta.json keeps of them."""
    import hashlib

    file = entry / "train-0.tokens.npy"
    tokens = np.load(file)
    change(tokens)
    np.save(file, tokens)
    if rehash:
        meta = json.loads((entry / "meta.json").read_text())
        meta["sha256"][file.name] = hashlib.sha256(file.read_bytes()).hexdigest()
        (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change,rehash,why", [
    (lambda t: t.__setitem__(slice(None, None, 3), 0), False, "train-0.tokens.npy does not match its SHA-256"),
    (lambda t: t.__setitem__(5, 60000), True, "train-0 holds id 60000, past the vocabulary of"),
])
def test_a_damaged_cache_entry_is_prepared_again_with_a_warning(tmp_path, capsys, change, rehash, why):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 500)
    cfg = config({"kind": "text", "path": str(corpus)}, cache_dir=str(tmp_path / "cache"))
    first = prepare(cfg)
    clean = np.array(first.splits["train"]["corpus"].tokens)
    _damage(first.directory, change, rehash)  # ids that still look valid, or one past the vocabulary
    capsys.readouterr()
    again = prepare(cfg)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"token cache entry {first.directory} was damaged ({why}" in err
    assert not again.stats.get("cached") and np.array_equal(again.splits["train"]["corpus"].tokens, clean)
    assert prepare(cfg).stats["cached"] and capsys.readouterr().err == ""  # the rebuilt entry verifies


def test_a_damaged_cache_entry_whose_sources_cannot_be_read_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    import importlib

    prep = importlib.import_module("lmlab.data.prepare")  # the module, not the function lmlab.data exports
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 500)
    cfg = config({"kind": "text", "path": str(corpus)}, cache_dir=str(tmp_path / "cache"))
    entry = prepare(cfg).directory
    _damage(entry, lambda t: t.__setitem__(0, 1))

    def offline(*args, **kwargs):
        raise UserError("the dataset cannot be downloaded (offline)")

    monkeypatch.setattr(prep, "read_documents", offline)
    capsys.readouterr()
    with pytest.raises(UserError, match=f"token cache entry {entry} is damaged .*offline"):
        prepare(cfg)
    assert capsys.readouterr().err == ""


def test_a_packed_entry_shared_across_context_lengths_states_each_ones_windows(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 500)
    cfg = config({"kind": "text", "path": str(corpus)}, cache_dir=str(tmp_path / "cache")).replace(data={"layout": "pack"})
    wide = prepare(cfg.replace(model={"context_len": 64}))
    narrow = prepare(cfg.replace(model={"context_len": 16}))
    assert narrow.stats["cached"] and narrow.directory == wide.directory  # one entry for both
    tokens = sum(p.real_tokens for p in narrow.splits["train"].values())
    assert narrow.stats["layout"]["context_len"] == 16 and narrow.stats["layout"]["rows"] == tokens // 16
    assert wide.stats["layout"]["rows"] == tokens // 64
    assert narrow.stats["layout"]["padding_overhead"] == 0.0


def test_a_packed_entry_shorter_than_a_later_context_is_refused_in_one_line(tmp_path):
    """The entry serves every context length, so the check that a build makes is made on load too
    (it was a ValueError traceback from the batches)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 250)
    cfg = config({"kind": "text", "path": str(corpus)}, cache_dir=str(tmp_path / "cache")).replace(data={"layout": "pack"})
    prepare(cfg.replace(model={"context_len": 16}))
    with pytest.raises(UserError, match="training tokens, fewer than model.context_len=3000 \\+ 2"):
        prepare(cfg.replace(model={"context_len": 3000}))


def test_large_vocabularies_are_stored_as_uint32(tmp_path):
    cfg = config({"kind": "builtin"}).replace(tokenizer={"kind": "cl100k_base",
                                                         "path": "tokenizers/cl100k_base/cl100k_base.tiktoken"})
    assert prepare(cfg).splits["train"]["builtin"].tokens.dtype == np.uint32


def test_a_failed_preparation_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    import lmlab.data.stats as stats

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stats, "write_stats", boom)
    cfg = config({"kind": "builtin"}, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(RuntimeError):
        prepare(cfg)
    assert list((tmp_path / "cache" / "tokens").iterdir()) == []


# --- config -----------------------------------------------------------------------------------------


def test_sources_round_trip_through_toml_and_overrides(tmp_path):
    cfg = get_preset("tinystories_counting")
    path = tmp_path / "c.toml"
    cfg.save(path)
    assert "[[data.sources]]" in path.read_text()
    assert load_config(path) == cfg
    changed = apply_overrides(cfg, {"data.sources.1.weight": "0.5"})
    assert changed.data.sources[1].weight == 0.5
    with pytest.raises(UserError, match=r"--data.sources.N.FIELD with N in 0..1"):
        apply_overrides(cfg, {"data.sources.5.weight": "1"})


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source, data, message", [
    ({"path": "no/such/file.txt"}, {}, r"data.sources\[0\] \(file\): .*does not exist"),
    ({"kind": "jsonl", "path": GSM8K, "field": "text"}, {}, r"row 1 has no field 'text'; its fields: question, answer"),
    ({"kind": "jsonl", "path": GSM8K, "template": "{question} {solution}"}, {}, r"has no template key 'solution'"),
    ({"kind": "csv", "path": AG_NEWS, "columns": "a,b,c", "template": "{title}"}, {}, "template key 'title'"),
    ({"kind": "hf"}, {}, "needs `dataset`"),
    ({"kind": "text", "path": "eval/hellaswag/hellaswag_val_full.txt"}, {}, "looks like the hellaswag benchmark"),
    ({"kind": "synthetic", "weight": 0.0}, {}, "the total weight is 0"),
    ({"kind": "synthetic", "symbols": 40}, {}, r"symbols=40 is invalid"),
    ({"kind": "synthetic"}, {"val_fraction": 0.7}, r"data.val_fraction=0.7 is invalid; expected a float in \(0, 0.5\)"),
    ({"kind": "nope"}, {}, r"data.sources\[0\]: data.source='nope' is not known; valid: builtin, csv"),
])
def test_bad_sources_fail_with_one_line(shared_data, source, data, message):
    with pytest.raises(UserError, match=message) as err:
        prepare(config({"kind": "text", **source}, **data))
    assert "\n" not in str(err.value)


def test_bad_files_fail_with_one_line(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01" * 100)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n')
    (tmp_path / "bad_utf8.txt").write_bytes(b"caf\xe9 au lait\n" * 200)
    for path, message in (("empty.txt", "is empty"), ("bin.dat", "looks binary"),
                          ("bad.jsonl", r"bad.jsonl:2: not valid JSON")):
        kind = "jsonl" if path.endswith("jsonl") else "text"
        with pytest.raises(UserError, match=message):
            prepare(config({"kind": kind, "path": str(tmp_path / path)}))
    with pytest.raises(UserError, match="is not valid utf-8"):
        prepare(config({"kind": "text", "path": str(tmp_path / "bad_utf8.txt")}))
    data = prepare(config({"kind": "text", "path": str(tmp_path / "bad_utf8.txt"), "encoding": "utf-8-replace"}))
    assert "200 invalid UTF-8 sequence(s) replaced" in capsys.readouterr().err
    assert "\ufffd" in data.tokenizer.decode(data.splits["train"]["bad_utf8"].tokens[:10].tolist())


def test_cli_bad_input_exits_2_without_traceback_or_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "tiny", "--run-dir", str(run), "--data.sources.0.weight=1"])
    assert code == 2
    code = main(["prepare", "tiny", "--data", str(tmp_path / "missing.txt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") <= 2 and "Traceback" not in err
    (tmp_path / "empty.txt").write_text("")
    assert main(["train", "tiny", "--data", str(tmp_path / "empty.txt"), "--run-dir", str(run)]) == 2
    assert not run.exists()  # nothing half-made
    assert main(["train", "tiny", "--tokenizer.kind=bpe", "--tokenizer.vocab_size=100",
                 "--run-dir", str(run)]) == 2
    assert "too small for kind='bpe'" in capsys.readouterr().err


# --- training on the presets ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llmini_mix", "tinystories_bpe3000", "wikitext2_bpe", "tinystories_counting",
                                  "shakespeare_char", "shakespeare_gpt2", "shakespeare_cl100k"])
def test_train_runs_on_each_corpus_preset(name, tmp_path):
    from lmlab.train import train

    cfg = get_preset(name).replace(model={"n_layer": 1, "d_model": 32, "n_head": 2},
                                   train={"max_steps": 3, "batch_size": 4, "progress": False},
                                   eval={"max_tokens": 2048})
    result = train(cfg, tmp_path / name)
    assert result.steps == 3 and math.isfinite(result.metrics["loss"])
    val_sources = {s.label for s in cfg.data.sources if s.split in ("auto", "val")}
    if len(val_sources) > 1:  # evaluation reports each validation source of a mixture
        assert set(result.metrics["by_source"]) == val_sources


@pytest.mark.slow
def test_markov_val_loss_lands_just_above_its_entropy_rate(tmp_path):
    from lmlab.train import train

    cfg = get_preset("markov").replace(train={"progress": False})
    floor = markov_entropy(cfg.data.sources[0]) * math.log(2)
    result = train(cfg, tmp_path / "markov")
    assert floor < result.metrics["loss"] < floor + 0.08, (result.metrics["loss"], floor)


@pytest.mark.slow
def test_chunk_layout_mixture_resumes_exactly(tmp_path):
    """Two sources, chunk rows with masks: 10 steps, then 10 more after a resume, equal 20 straight."""
    from lmlab.runs import RunDir
    from lmlab.train import resume, train

    cfg = config({"kind": "synthetic", "name": "c", "generator": "counting", "n_docs": 300, "length": 12},
                 {"kind": "synthetic", "name": "m", "generator": "markov", "n_docs": 100, "length": 50},
                 layout="chunk", stride=16).replace(train={"max_steps": 20, "decay_steps": 20}, eval={"every": 10})
    straight = train(cfg, tmp_path / "a")
    train(cfg.replace(train={"max_steps": 10}), tmp_path / "b")
    config_file = tmp_path / "b" / "config.toml"
    config_file.write_text(config_file.read_text().replace("max_steps = 10", "max_steps = 20"))
    resumed = resume(tmp_path / "b")
    assert resumed.steps == 20 and resumed.metrics["loss"] == straight.metrics["loss"]
    losses = [[r["loss"] for r in RunDir(tmp_path / d).read_metrics("train")] for d in "ab"]
    assert losses[0] == losses[1]


def test_every_tokenizer_encodes_a_batch_like_one_by_one(shared_data):
    texts = (shared_data / TINYSTORIES).read_text().split("<|endoftext|>")[:50] + [""]
    kinds = {"char": "", "byte": "", "bpe": "", "gpt2": "tokenizers/gpt2/gpt2.tiktoken",
             "cl100k_base": "tokenizers/cl100k_base/cl100k_base.tiktoken"}
    for kind, path in kinds.items():
        tok = build_tokenizer(kind, "".join(texts), str(shared_data / path) if path else "",
                              **({"vocab_size": 600} if kind == "bpe" else {}))
        flat, lengths = tok.encode_batch(texts)
        assert lengths.tolist() == [len(tok.encode_array(t)) for t in texts], kind
        assert flat.tolist() == [i for t in texts for i in tok.encode_array(t).tolist()], kind


def test_squad_source_gives_a_document_per_question_and_names_a_wrong_layout(tmp_path):
    squad = {"data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"question": "Where is Paris?", "answers": [{"text": "France"}]},
                                                   {"question": "What is Paris?", "answers": [{"text": "a city"}]}]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad))
    spec = {"kind": "squad", "path": str(path), "template": "{context} Q: {question} A: {answer}"}
    docs = read_documents(SourceConfig(**spec), DataConfig())
    assert docs == ["Paris is in France. Q: Where is Paris? A: France",
                    "Paris is in France. Q: What is Paris? A: a city"]
    path.write_text(json.dumps({"data": [{"title": "T"}]}))
    with pytest.raises(UserError, match="not SQuAD's layout .*missing 'paragraphs'"):
        read_documents(SourceConfig(**spec), DataConfig())
