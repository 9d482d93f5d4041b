"""Mini GPT (seeds/mini-gpt.md): three sizes on TinyStories with a 3,000-token BPE; probes and sampling."""

from __future__ import annotations

from lmlab.study.library import CPU_RUN, study
from lmlab.study.spec import Study


@study("minigpt_sizes", "full")
def minigpt_sizes_full() -> Study:
    """Mini GPT: small / medium / large on TinyStories, the same number of steps."""
    return Study("minigpt_sizes", "minigpt_small", zip={"model.d_model": [128, 256, 384],
                                                        "model.d_mlp": [256, 512, 768]},
                 seeds=[0], scaling=True,
                 description="Mini GPT's three sizes (seed: larger is better at the same steps)")


@study("minigpt_sizes", "cpu")
def minigpt_sizes_cpu() -> Study:
    return Study("minigpt_sizes", "minigpt_small", zip={"model.d_model": [32, 64, 128], "model.d_mlp": [64, 128, 256],
                                                        "model.n_layer": [2, 2, 2]},
                 seeds=3, scaling=True, description=minigpt_sizes_full().description,
                 overrides={**CPU_RUN, "model.n_head": 4, "model.context_len": 64, "train.batch_size": 16,
                            "tokenizer.vocab_size": 1000, "model.vocab_size": 1000, "train.lr": 2e-3,
                            "data.sources.0.max_tokens": 100000},
                 budget={"train.max_steps": 200, "eval.every": 50})
