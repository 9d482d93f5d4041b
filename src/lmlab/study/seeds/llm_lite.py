"""LLM-Lite (seeds/llm-lite.md): BPE on WikiText-2, grid search with early stopping, retrain, test."""

from __future__ import annotations

from lmlab.presets.llm_lite import LLM_LITE_GRID
from lmlab.study.library import CPU_RUN, study
from lmlab.study.spec import Study


@study("llm_lite_grid", "full")
def llm_lite_grid_full() -> Study:
    """LLM-Lite: lr x layers x heads x width grid with early stopping; retrain the best 2x longer; test."""
    return Study("llm_lite_grid", "llm_lite", grid=LLM_LITE_GRID, seeds=[0], select="val_loss",
                     overrides={"train.batch_size": 64, "train.warmup_steps": 500},
                     budget={"train.epochs": 10}, retrain={"train.epochs": 20},
                     description="LLM-Lite's 36-point grid, 10 epochs each with early stopping, the best "
                                 "retrained for 20 epochs and tested once")


@study("llm_lite_grid", "cpu")
def llm_lite_grid_cpu() -> Study:
    return Study("llm_lite_grid", "llm_lite", grid={"train.lr": [1e-3, 3e-3], "model.n_layer": [1, 2],
                                                     "model.d_model": [32, 64]},
                 seeds=3, select="val_loss", description="LLM-Lite's grid search cut to 8 points",
                 overrides={**CPU_RUN, "model.n_head": 2, "model.context_len": 64, "train.batch_size": 16,
                            "tokenizer.vocab_size": 512, "data.sources.0.max_tokens": 20000,
                            "data.sources.1.max_tokens": 20000, "data.sources.2.max_tokens": 20000,
                            "train.patience": 3, "eval.every": 20},
                 budget={"train.epochs": 2}, retrain={"train.epochs": 4})
