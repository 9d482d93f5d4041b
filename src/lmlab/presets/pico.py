"""Pico-LLM (shared/seeds/pico-llm.md): k-gram MLP, LSTM and transformers on TinyStories, counting
sequences and WikiText-2."""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import GPT2_FILE, GPT2_VOCAB, TINYSTORIES, TINYSTORIES_VAL, WIKITEXT_TRAIN
from lmlab.presets.registry import preset


# --- Pico-LLM (pico-llm.md) ---------------------------------------------------------------------
# GPT-2 tokens (tiktoken "gpt2", as in the course's starter code), batch 16, plain Adam at a fixed
# learning rate (no weight decay, warmup or clipping), epochs x max_steps_per_epoch steps, one
# evaluation per epoch. The seed trains on TinyStories (tinystories_weight 1.0, no input files),
# on its counting file 3seqs.txt (tinystories_weight 0.0) or on a Wikipedia subset. Each corpus is
# two sources, [0] train and [1] val, so one dotted override (`data.sources.0.max_tokens`) caps the
# training text of any of them and the validation text stays fixed. The starter pads stories to
# the longest in the batch and counts the padding in the loss; lmlab packs instead.

TINYSTORIES_DATA = {"sources": [{**TINYSTORIES, "split": "train"}, TINYSTORIES_VAL]}


def counting(name: str, n_docs: int, seed: int, split: str) -> dict:
    # 3seqs.txt-like lines: 24-48 consecutive numbers from a random start below 100.
    return {"kind": "synthetic", "name": name, "generator": "counting", "n_docs": n_docs, "length": 48,
            "seed": seed, "split": split}


COUNTING_DATA = {"sources": [counting("counting", 5000, 0, "train"), counting("counting_val", 500, 1, "val")]}
# WikiText-2 (the closest local corpus to the seed's 30,000-line Wikipedia subset): its own train
# and valid files, one document per line.
WIKI_DATA = {"sources": [{**WIKITEXT_TRAIN, "split": "train"},
                         {**WIKITEXT_TRAIN, "name": "wikitext2_valid", "path": "wikitext-2/valid.txt",
                          "split": "val"}]}


def pico(name: str, lr: float, epochs: int, steps_per_epoch: int, data: dict = TINYSTORIES_DATA,
         **model) -> RunConfig:
    return RunConfig(name=name).replace(
        data=data,
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"vocab_size": GPT2_VOCAB, **model},
        train={"max_steps": epochs * steps_per_epoch, "batch_size": 16, "lr": lr, "schedule": "constant",
               "warmup_steps": 0, "weight_decay": 0.0, "beta2": 0.999, "grad_clip": 0.0},
        eval={"every": steps_per_epoch},
    )


def pico_kgram_sanity(name: str, input_kind: str) -> RunConfig:
    # Question 2 (on 3seqs): k = 3, embed_size 128, one inner layer, block 32, lr 1e-3, 3 epochs x
    # 10 steps. The starter's blocks are Linear -> SiLU.
    return pico(name, 1e-3, 3, 10, COUNTING_DATA, arch="mlp", ngram=3, input=input_kind, n_layer=1, d_model=128,
                d_mlp=128, activation="silu", context_len=32, init="torch")


@preset
def pico_kgram_onehot() -> RunConfig:
    """Pico-LLM k-gram MLP on one-hot inputs: 3 x 50257 one-hot -> 128 -> GPT-2 vocab; 25.78M params."""
    return pico_kgram_sanity("pico_kgram_onehot", "onehot")


@preset
def pico_kgram_embedding() -> RunConfig:
    """Pico-LLM k-gram MLP on embeddings: 3 x 128-d embeddings -> 128 -> GPT-2 vocab; 12.97M params."""
    return pico_kgram_sanity("pico_kgram_embedding", "embedding")


@preset
def pico_kgram() -> RunConfig:
    """Pico-LLM k-gram MLP (k=3) for TinyStories: 512-d embeddings, 512 wide, context 512; 52.30M params."""
    return pico("pico_kgram", 3e-4, 10, 750, arch="mlp", ngram=3, n_layer=1, d_model=512, d_mlp=512,
                activation="silu", context_len=512, init="torch")


@preset
def pico_kgram_counting() -> RunConfig:
    """Pico-LLM k-gram MLP on counting (Q2c, Q3): 128-d, context 1024, 15 x 210 steps; 12.97M params."""
    return pico("pico_kgram_counting", 3e-4, 15, 210, COUNTING_DATA, arch="mlp", ngram=3, n_layer=1, d_model=128,
                d_mlp=128, activation="silu", context_len=1024, init="torch")


def lstm(name: str, data: dict) -> RunConfig:
    # Question 1: one layer, 128-d embeddings and state, block 32, lr 1e-3, 3 epochs x 10 steps.
    return pico(name, 1e-3, 3, 10, data, arch="lstm", n_layer=1, d_model=128, context_len=32, init="torch",
                tie_embeddings=False)


@preset
def pico_lstm() -> RunConfig:
    """Pico-LLM LSTM sanity run on TinyStories: 128-d embeddings and state, context 32, 30 steps; 13.00M params."""
    return lstm("pico_lstm", TINYSTORIES_DATA)


@preset
def pico_lstm_counting() -> RunConfig:
    """Pico-LLM LSTM sanity run on counting sequences (Q1b): the pico_lstm model; 13.00M params."""
    return lstm("pico_lstm_counting", COUNTING_DATA)


@preset
def pico_transformer() -> RunConfig:
    """Pico-LLM transformer: 6 pre-RMSNorm blocks x 512, 8 heads, learned positions, context 512; 44.90M params."""
    # The seed states RMSNorm, heads, blocks, width, context and learned positions; the rest
    # (GELU 4x FFN, tied head, biases) are lmlab's defaults.
    return pico("pico_transformer", 3e-4, 10, 750, n_layer=6, n_head=8, d_model=512, context_len=512,
                norm="rmsnorm", position="learned")


@preset
def pico_transformer_counting() -> RunConfig:
    """Pico-LLM transformer on counting (Q4): 6 RMSNorm blocks x 128, 8 heads, context 1024; 7.75M params."""
    return pico("pico_transformer_counting", 3e-4, 15, 210, COUNTING_DATA, n_layer=6, n_head=8, d_model=128,
                context_len=1024, norm="rmsnorm", position="learned")


def pico_wide(name: str, epochs: int, steps_per_epoch: int, data: dict = TINYSTORIES_DATA, **model) -> RunConfig:
    # Optional questions Q1-Q3 and Q7: 16 heads, 8 blocks, 1024 wide, context 512.
    return pico(name, 3e-4, epochs, steps_per_epoch, data, n_layer=8, n_head=16, d_model=1024, context_len=512,
                norm="rmsnorm", position="learned", **model)


@preset
def pico_underfit() -> RunConfig:
    """Pico-LLM underfitting: 8 RMSNorm blocks x 1024, 16 heads, context 512, 3 x 100 steps; 152.74M params."""
    return pico_wide("pico_underfit", 3, 100)


@preset
def pico_overfit() -> RunConfig:
    """Pico-LLM overfitting: 8 RMSNorm blocks x 1024, 16 heads, context 512, 15 x 2,500 steps; 152.74M params."""
    return pico_wide("pico_overfit", 15, 2500)


@preset
def pico_prenorm() -> RunConfig:
    """Pico-LLM pre-norm (Q7's baseline): the 8 x 1024 model, RMSNorm before each sublayer; 152.74M params."""
    # Q7 gives no epochs; 10 x 750 as the seed's other TinyStories transformer runs.
    return pico_wide("pico_prenorm", 10, 750)


@preset
def pico_postnorm() -> RunConfig:
    """Pico-LLM post-norm: the 8 x 1024 model, RMSNorm after each residual add (Q7); 152.74M params."""
    return pico_wide("pico_postnorm", 10, 750, norm_position="post")


@preset
def pico_wiki() -> RunConfig:
    """Pico-LLM on WikiText-2 (Q1 own data, Q3 embed size): the 8 x 1024 model, 3 x 1,500 steps; 152.74M params."""
    return pico_wide("pico_wiki", 3, 1500, WIKI_DATA)
