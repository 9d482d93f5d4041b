"""LLmini (seeds/llmini.md): GPT-2-BPE decoders A/B/C on an 11-source mixture, attention entropy and sparsity."""

from __future__ import annotations

from lmlab.study.library import CPU_RUN, study
from lmlab.study.spec import Study


@study("llmini_scale", "full")
def llmini_scale_full() -> Study:
    """LLmini: scales A/B/C (10x384, 9x320, 8x256) with identical hyperparameters, per-epoch tables."""
    return Study("llmini_scale", "llmini_a", zip={"model.d_model": [384, 320, 256], "model.n_head": [6, 5, 4],
                                                  "model.n_layer": [10, 9, 8]},
                 seeds=[42], budget={"train.epochs": 3}, scaling=True,
                 description="LLmini's three scales on its mixture, 3 epochs each (seed: larger is better, "
                             "the train-val gap grows with size)")


@study("llmini_scale", "cpu")
def llmini_scale_cpu() -> Study:
    # The same three-step size ladder at a quarter of the depth and a sixth of the width; the
    # GPT-2 vocabulary stays (the seed's), so the head dominates and tokens are capped.
    return Study("llmini_scale", "llmini_a", zip={"model.d_model": [64, 48, 32], "model.n_head": [2, 2, 2],
                                                  "model.n_layer": [3, 2, 2]},
                 seeds=3, scaling=True, description=llmini_scale_full().description,
                 overrides={**CPU_RUN, "model.context_len": 64, "train.batch_size": 16, "train.lr": 2e-3,
                            "data.stride": 32, **{f"data.sources.{i}.max_tokens": 8000 for i in range(7)}},
                 budget={"train.epochs": 3})
