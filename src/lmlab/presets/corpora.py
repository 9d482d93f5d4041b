"""Presets for the seed studies' corpora and vocabularies, each a `[[data.sources]]` list.

Paths are relative: lmlab looks them up under `data.root`, or $LMLAB_DATA when that is empty.
Point it at a folder laid out like this project's shared data (tinystories/, wikitext-2/,
mix/gsm8k/, mix/ag_news/, mix/commonsense_qa/, tinyshakespeare/, tokenizers/gpt2/...):

    LMLAB_DATA=~/data lmlab prepare llmini_mix

The pretrained vocabularies are read from tokenizers/gpt2/gpt2.tiktoken and
tokenizers/cl100k_base/cl100k_base.tiktoken under the same root; set `--tokenizer.path=` (empty)
to download them by name instead.

Benchmarks that lmlab evaluates on (HellaSwag, ARC, BoolQ, PIQA, WinoGrande) are not in any
training mixture: LLmini's seed trained on four of them, which makes zero-shot scores on them
meaningless, so `llmini_mix` keeps its other seven sources. Two of them differ from the seed's
split: SQuAD is its v1.1 dev set (the train set has no local copy) and CommonsenseQA its dev set.
"""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.basic import shakespeare_char
from lmlab.presets.registry import get_preset, preset

GPT2_FILE = "tokenizers/gpt2/gpt2.tiktoken"
CL100K_FILE = "tokenizers/cl100k_base/cl100k_base.tiktoken"
GPT2_VOCAB = 50257  # GPT-2 BPE / tiktoken "gpt2": LLmini, Pico-LLM
CL100K_VOCAB = 100277  # tiktoken cl100k_base (100,256 ranks + special tokens): the ladder from stage 07
MINIGPT_VOCAB = 3000  # Mini GPT's own BPE


def corpus(preset_name: str) -> dict:
    """The data section of a data preset, to train a seed architecture on its seed's corpus."""
    return get_preset(preset_name).to_dict()["data"]

TINYSTORIES = {"kind": "text", "name": "tinystories", "path": "tinystories/tinystories_train_sample_2MiB.txt",
               "docs": "delimiter"}
TINYSTORIES_VAL = {"kind": "text", "name": "tinystories_val", "path": "tinystories/tinystories_valid_sample.txt",
                   "docs": "paragraph", "split": "val"}
WIKITEXT_TEST = {"kind": "text", "name": "wikitext2", "path": "wikitext-2/test.txt", "docs": "line"}
WIKITEXT_TRAIN = {**WIKITEXT_TEST, "path": "wikitext-2/train.txt"}
SQUAD = {"kind": "squad", "name": "squad", "path": "mix/squad/dev-v1.1.json",
         "template": "{context}\nQuestion: {question}\nAnswer: {answer}"}
SCIQ = {"kind": "json", "name": "sciq", "path": "mix/sciq/train.json",
        "template": "{support}\nQuestion: {question}\nAnswer: {correct_answer}"}
GSM8K = {"kind": "jsonl", "name": "gsm8k", "path": "mix/gsm8k/train.jsonl", "template": "{question}\n{answer}"}
AG_NEWS = {"kind": "csv", "name": "ag_news", "path": "mix/ag_news/test.csv", "columns": "label,title,description",
           "template": "{title}. {description}"}
COMMONSENSE_QA = {"kind": "jsonl", "name": "commonsense_qa", "path": "mix/commonsense_qa/dev_rand_split.jsonl",
                  "field": "question"}


def small_gpt(name: str, context_len: int) -> RunConfig:
    """A 4-layer, 256-wide GPT that trains on any of these corpora in minutes on a CPU."""
    return RunConfig(name=name).replace(
        model={"n_layer": 4, "n_head": 4, "d_model": 256, "context_len": context_len},
        train={"max_steps": 1000, "batch_size": 16, "lr": 1e-3, "warmup_steps": 50},
        eval={"every": 250, "max_tokens": 65536},
    )


@preset
def llmini_mix() -> RunConfig:
    """LLmini's mixture from local copies: TinyStories, SQuAD, WikiText-2, SciQ, AG News, GSM8K,
    CommonsenseQA (the seed's order); caps of 20,000 samples, GPT-2 vocabulary, chunk layout 256/128."""
    caps = {"max_docs": 20000}
    sources = (TINYSTORIES, SQUAD, WIKITEXT_TRAIN, SCIQ, AG_NEWS, GSM8K, COMMONSENSE_QA)
    return small_gpt("llmini_mix", 256).replace(
        data={"sources": [{**s, **caps} for s in sources],
              "weight_by": "size", "layout": "chunk", "stride": 128, "val_fraction": 0.05},
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
    )


@preset
def tinystories_bpe3000() -> RunConfig:
    """TinyStories (2 MiB train sample; the validation sample as val) with a 3000-token BPE, packed."""
    return small_gpt("tinystories_bpe3000", 256).replace(
        data={"sources": [{**TINYSTORIES, "split": "train"}, TINYSTORIES_VAL]},
        tokenizer={"kind": "bpe", "vocab_size": 3000},
    )


@preset
def wikitext2_bpe() -> RunConfig:
    """WikiText-2 with a 4096-token BPE trained on it: its own train / valid / test files as the
    train / val / test splits (wiki.*.tokens, the tokenized release)."""
    return small_gpt("wikitext2_bpe", 128).replace(
        data={"sources": [{**WIKITEXT_TRAIN, "split": "train"},
                          {**WIKITEXT_TEST, "name": "wikitext2_valid", "path": "wikitext-2/valid.txt",
                           "split": "val"},
                          {**WIKITEXT_TEST, "name": "wikitext2_test", "split": "test"}]},
        tokenizer={"kind": "bpe", "vocab_size": 4096},
    )


@preset
def tinystories_counting() -> RunConfig:
    """Pico-LLM's mix: TinyStories and synthetic counting sequences (3seqs-style), 80/20 by tokens, GPT-2."""
    return small_gpt("tinystories_counting", 64).replace(
        data={"sources": [{**TINYSTORIES, "weight": 0.8},
                          {"kind": "synthetic", "name": "counting", "generator": "counting", "n_docs": 5000,
                           "length": 48, "weight": 0.2}]},
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
    )


def shakespeare(name: str, kind: str, path: str) -> RunConfig:
    return shakespeare_char().replace(name=name, tokenizer={"kind": kind, "path": path})


@preset
def shakespeare_gpt2() -> RunConfig:
    """shakespeare_char's model and recipe on GPT-2's 50,257-token vocabulary (compare bits per byte)."""
    return shakespeare("shakespeare_gpt2", "gpt2", GPT2_FILE)


@preset
def shakespeare_cl100k() -> RunConfig:
    """shakespeare_char's model and recipe on cl100k_base's 100,277 ids (compare bits per byte)."""
    return shakespeare("shakespeare_cl100k", "cl100k_base", CL100K_FILE)


@preset
def markov() -> RunConfig:
    """A random order-2 Markov chain over 8 letters: its entropy rate (printed by `lmlab prepare`)
    is the floor that the trained model's validation loss approaches from above."""
    return RunConfig(name="markov").replace(
        data={"sources": [{"kind": "synthetic", "name": "markov", "generator": "markov", "symbols": 8,
                           "order": 2, "alpha": 0.3, "n_docs": 200, "length": 1024}]},
        tokenizer={"kind": "char"},
        model={"n_layer": 2, "n_head": 2, "d_model": 64, "context_len": 32},
        train={"max_steps": 1200, "batch_size": 32, "lr": 3e-3, "warmup_steps": 20, "precision": "fp32"},
        eval={"every": 400, "max_tokens": 32768},
    )


@preset
def induction() -> RunConfig:
    """Watch an induction pattern form: 2 attention-only layers (RoPE), random 16-letter strings repeated,
    log-spaced checkpoints for `lmlab analyze RUN --all-checkpoints`; about a minute on 2 CPU cores."""
    # Every repeat here is 16 tokens back, so the pattern can be learned by position alone (a layer-0
    # head looking 15 tokens back, which the pattern score cannot tell from a content-based induction
    # head). Repeats of varied lengths force the two-layer circuit, but 1,500 steps did not form it.
    return RunConfig(name="induction").replace(
        data={"sources": [{"kind": "synthetic", "name": "induction", "generator": "induction", "symbols": 26,
                           "length": 32, "n_docs": 1000}]},
        tokenizer={"kind": "char"},
        # With learned positions instead of RoPE the model sat at loss ln 26 for 800 steps at lr 1e-2.
        model={"n_layer": 2, "n_head": 2, "d_model": 32, "context_len": 32, "mlp": "none", "position": "rope"},
        train={"max_steps": 300, "batch_size": 32, "lr": 1e-2, "warmup_steps": 20, "precision": "fp32",
               "keep_checkpoints": "log", "keep_every": 25},
        eval={"every": 50, "max_tokens": 8192},
    )
