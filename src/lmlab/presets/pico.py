"""Pico-LLM (shared/seeds/pico-llm.md): k-gram MLP, LSTM and transformers on TinyStories + counting."""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import GPT2_FILE, GPT2_VOCAB, corpus
from lmlab.presets.registry import preset


# --- Pico-LLM (pico-llm.md) ---------------------------------------------------------------------
# GPT-2 tokens (tiktoken "gpt2", as in the course's starter code), batch 16, plain Adam at a fixed
# learning rate (no weight decay, warmup or clipping), epochs x max_steps_per_epoch steps, one
# evaluation per epoch. Corpus: `tinystories_counting`, TinyStories mixed with synthetic counting
# sequences like the seed's 3seqs.txt. The starter pads stories to the longest in the batch and
# counts the padding in the loss; lmlab packs instead (data.layout = "pad" masks the padding).

def pico(name: str, lr: float, epochs: int, steps_per_epoch: int, **model) -> RunConfig:
    return RunConfig(name=name).replace(
        data=corpus("tinystories_counting"),
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"vocab_size": GPT2_VOCAB, **model},
        train={"max_steps": epochs * steps_per_epoch, "batch_size": 16, "lr": lr, "schedule": "constant",
               "warmup_steps": 0, "weight_decay": 0.0, "beta2": 0.999, "grad_clip": 0.0},
        eval={"every": steps_per_epoch},
    )


def pico_kgram_sanity(name: str, input_kind: str) -> RunConfig:
    # Question 2: k = 3, embed_size 128, one inner layer, block 32, lr 1e-3, 3 epochs x 10 steps.
    # The starter's blocks are Linear -> SiLU.
    return pico(name, 1e-3, 3, 10, arch="mlp", ngram=3, input=input_kind, n_layer=1, d_model=128, d_mlp=128,
                activation="silu", context_len=32, init="torch")


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
def pico_lstm() -> RunConfig:
    """Pico-LLM LSTM sanity run: one layer, 128-d embeddings and state, context 32, 30 steps; 13.00M params."""
    return pico("pico_lstm", 1e-3, 3, 10, arch="lstm", n_layer=1, d_model=128, context_len=32,
                init="torch", tie_embeddings=False)


@preset
def pico_transformer() -> RunConfig:
    """Pico-LLM transformer: 6 pre-RMSNorm blocks x 512, 8 heads, learned positions, context 512; 44.90M params."""
    # The seed states RMSNorm, heads, blocks, width, context and learned positions; the rest
    # (GELU 4x FFN, tied head, biases) are lmlab's defaults.
    return pico("pico_transformer", 3e-4, 10, 750, n_layer=6, n_head=8, d_model=512, context_len=512,
                norm="rmsnorm", position="learned")


def pico_wide(name: str, epochs: int, steps_per_epoch: int, **model) -> RunConfig:
    # Questions Q2 and Q7: 16 heads, 8 blocks, 1024 wide, context 512.
    return pico(name, 3e-4, epochs, steps_per_epoch, n_layer=8, n_head=16, d_model=1024, context_len=512,
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
def pico_postnorm() -> RunConfig:
    """Pico-LLM post-norm: the 8 x 1024 model, RMSNorm after each residual add (Q7); 152.74M params."""
    # Q7 gives no epochs; 10 x 750 as the seed's other TinyStories transformer runs.
    return pico_wide("pico_postnorm", 10, 750, norm_position="post")
