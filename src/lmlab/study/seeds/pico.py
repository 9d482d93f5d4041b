"""Pico-LLM (seeds/pico-llm.md): LSTM, k-gram MLP, top-p sampling, RMSNorm transformer, norms, positions."""

from __future__ import annotations

from lmlab.study.library import CPU_RUN, study
from lmlab.study.spec import Study


PICO_FULL = {"kgram_onehot": {"base": "pico_kgram_onehot"}, "kgram_embedding": {"base": "pico_kgram_embedding"},
             "lstm": {"base": "pico_lstm"}, "transformer": {"base": "pico_transformer"},
             "transformer_nopos": {"base": "pico_transformer", "model.position": "none"},
             "prenorm": {"base": "pico_underfit", "train.max_steps": 7500},
             "postnorm": {"base": "pico_postnorm"},
             "underfit": {"base": "pico_underfit"}, "overfit": {"base": "pico_overfit"}}


@study("pico", "full")
def pico_full() -> Study:
    """Pico-LLM: k-gram one-hot vs embedding, LSTM vs transformer, pre vs post norm, positions, under/over-training."""
    return Study("pico", "pico_transformer", variants=PICO_FULL, seeds=[0], baseline="transformer",
                 description="Pico-LLM's comparisons on TinyStories + counting")


@study("pico", "cpu")
def pico_cpu() -> Study:
    # Byte tokens instead of GPT-2's (the one-hot k-gram's input is 3 x V wide); small widths.
    tiny = {"model.d_model": 64, "model.n_layer": 2, "model.n_head": 4, "model.context_len": 64}
    variants = {
        "kgram_onehot": {"base": "pico_kgram_onehot", "model.context_len": 64},
        "kgram_embedding": {"base": "pico_kgram_embedding", "model.context_len": 64},
        "lstm": {"base": "pico_lstm", "model.context_len": 64},
        "transformer": {"base": "pico_transformer", **tiny},
        "transformer_nopos": {"base": "pico_transformer", **tiny, "model.position": "none"},
        "postnorm": {"base": "pico_postnorm", **tiny, "model.n_head": 4},
        "underfit": {"base": "pico_transformer", **tiny, "train.max_steps": 30},
        "overfit": {"base": "pico_transformer", **tiny, "train.max_steps": 600, "data.sources.0.max_tokens": 3000},
    }
    return Study("pico", "pico_transformer", variants=variants, seeds=3, baseline="transformer",
                 description="Pico-LLM's comparisons at byte level on TinyStories + counting",
                 overrides={**CPU_RUN, "tokenizer.kind": "byte", "model.vocab_size": 0, "train.batch_size": 16,
                            "train.lr": 2e-3, "data.sources.0.max_tokens": 60000, "data.sources.1.max_tokens": 15000},
                 budget={"train.max_steps": 200, "eval.every": 50})
