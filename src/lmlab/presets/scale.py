"""Full-size runs for one 24 GB GPU (and more through torchrun): a GPT-2-124M-shaped model.

The seed studies' own full sizes (llmini_a/b/c, minigpt_large) already fit one 24 GB GPU with
their seed batches; README "Scale out" gives the arithmetic. GPT-2 small at context 1024 does
not fit at nanoGPT's per-GPU batch of 12 plus the 50,257-way logits in fp32 for the loss
(~0.5 GB per sequence), so the preset takes 8 sequences a micro-batch and accumulates 8:
65,536 tokens a step, the same on 1 GPU or N (`train.batch_size` is global).
"""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import GPT2_FILE, GPT2_VOCAB, corpus
from lmlab.presets.registry import preset


@preset
def gpt2_124m() -> RunConfig:
    """GPT-2 small's shape (12 x 768, 12 heads, context 1024, tied, 124M) on the LLmini mix; 8 x 8 x 1024 a step."""
    return RunConfig(name="gpt2_124m").replace(
        data=corpus("llmini_mix"),
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"n_layer": 12, "n_head": 12, "d_model": 768, "context_len": 1024, "vocab_size": GPT2_VOCAB,
               "mlp": "gelu_tanh", "position": "learned", "norm": "layernorm", "bias": True,
               "tie_embeddings": True, "dropout": 0.0, "init": "gpt2"},
        train={"max_steps": 2000, "batch_size": 8, "grad_accum": 8, "lr": 6e-4, "min_lr_ratio": 0.1,
               "warmup_steps": 200, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "grad_clip": 1.0,
               "precision": "auto"},
        eval={"every": 200, "max_tokens": 262144},
    )
