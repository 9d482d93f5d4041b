"""Mini GPT (shared/seeds/mini-gpt.md): three sizes on TinyStories with a 3000-token BPE."""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import MINIGPT_VOCAB, corpus
from lmlab.presets.registry import preset


def minigpt(name: str, d_model: int) -> RunConfig:
    """Mini GPT: 5 pre-LN blocks, 8 heads, FFN 2x GELU, sinusoidal positions, tied head, V=3000.

    The seed fixes d_model 256 / d_ff 512 for medium and states 1.05M / 3.40M / 7.07M
    parameters. The sizes that reproduce all three are d_model 128 / 256 / 384 with d_ff =
    2 d_model and 5 blocks, counted as every parameter once: biases in every Linear and
    LayerNorm, the tied head once (no head bias), no position parameters (exactly 1,046,656 /
    3,404,032 / 7,072,128). Without biases they would be 1.04M / 3.39M / 7.05M; untied, 384k /
    768k / 1.15M more (medium's 768k is the saving the seed quotes). Medium's attention
    sublayer, 263,168 with biases, is the diagram's "263k".
    Heads: the seed's 8 (d_k 16 / 32 / 48); 4 / 8 / 12 heads of 32 give the same counts.
    Training: 104M tokens once, windows of 256, batch 64 (16,384 tokens a step: 6,348 steps);
    the seed states neither batch nor learning rate (lmlab's default lr).
    """
    return RunConfig(name=name).replace(
        data=corpus("tinystories_bpe3000"),  # the 2 MiB TinyStories sample stands in for 104M tokens
        tokenizer={"kind": "bpe", "vocab_size": MINIGPT_VOCAB},
        model={"n_layer": 5, "n_head": 8, "d_model": d_model, "d_mlp": 2 * d_model, "mlp": "gelu",
               "context_len": 256, "vocab_size": MINIGPT_VOCAB, "position": "sinusoidal",
               "tie_embeddings": True, "norm": "layernorm", "norm_position": "pre", "bias": True},
        train={"max_steps": 6348, "batch_size": 64, "schedule": "cosine", "warmup_steps": 500,
               "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.999, "grad_clip": 1.0},
        eval={"every": 500},
    )


@preset
def minigpt_small() -> RunConfig:
    """Mini GPT small: 5 x 128, 8 heads, d_ff 256, sinusoidal, tied, V=3000; 1.05M params (seed: 1.05M)."""
    return minigpt("minigpt_small", 128)


@preset
def minigpt_medium() -> RunConfig:
    """Mini GPT medium: 5 x 256, 8 heads of 32, d_ff 512, sinusoidal, tied, V=3000; 3.40M params (seed: 3.40M)."""
    return minigpt("minigpt_medium", 256)


@preset
def minigpt_large() -> RunConfig:
    """Mini GPT large: 5 x 384, 8 heads, d_ff 768, sinusoidal, tied, V=3000; 7.07M params (seed: 7.07M)."""
    return minigpt("minigpt_large", 384)
