"""LLmini (shared/seeds/llmini.md): the A/B/C scale study on the llmini_mix corpus."""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import (AG_NEWS, COMMONSENSE_QA, GPT2_FILE, GPT2_VOCAB, GSM8K, SCIQ, SQUAD, TINYSTORIES,
                                   WIKITEXT_TRAIN, corpus)
from lmlab.presets.registry import get_preset, preset


def llmini(name: str, d_model: int, n_head: int, n_layer: int) -> RunConfig:
    """LLmini at one scale: pre-LN GPT, d_head 64, FFN 4x GELU, learned positions, untied head.

    Dropout: the training table says "attention 0.1" and "FFN + residual 0.3", so 0.1 drops
    attention weights and 0.3 drops each sublayer's output before the residual add (both
    resid sites, the FFN's included); nothing inside the FFN's hidden layer. (The architecture
    text's "0.1 on attention outputs" could instead mean the attention sublayer's residual
    dropout alone: `--model.attn_dropout=0 --model.resid_dropout=0.1 --model.mlp_resid_dropout=0.3`.)
    Steps: 3 epochs over the 13.27M training tokens (95% of 13.97M), packed into windows of
    32 x 2 x 256 = 16,384 tokens per step: 810 steps per epoch. The seed pads instead (34%
    token utilization): 2,386 optimizer steps per epoch there.
    """
    return RunConfig(name=name).replace(
        data=corpus("llmini_mix"),
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"n_layer": n_layer, "n_head": n_head, "d_model": d_model, "mlp_mult": 4.0, "mlp": "gelu",
               "context_len": 256, "vocab_size": GPT2_VOCAB, "position": "learned", "tie_embeddings": False,
               "dropout": 0.0, "attn_dropout": 0.1, "resid_dropout": 0.3, "mlp_dropout": 0.0},
        train={"max_steps": 2430, "batch_size": 32, "grad_accum": 2, "lr": 3e-4, "schedule": "cosine",
               "warmup_steps": 243, "min_lr_ratio": 0.0, "weight_decay": 0.05, "beta1": 0.9, "beta2": 0.999,
               "eps": 1e-8, "grad_clip": 1.0, "seed": 42},  # precision auto: fp16 AMP on CUDA in the seed
        eval={"every": 810},  # once per seed epoch
    )


@preset
def llmini_a() -> RunConfig:
    """LLmini A: 10 layers x 384 (6 heads of 64), GPT-2 vocab, context 256, untied; 56.44M params."""
    return llmini("llmini_a", 384, 6, 10)


@preset
def llmini_b() -> RunConfig:
    """LLmini B: 9 layers x 320 (5 heads of 64), GPT-2 vocab, context 256, untied; 43.34M params."""
    return llmini("llmini_b", 320, 5, 9)


@preset
def llmini_c() -> RunConfig:
    """LLmini C: 8 layers x 256 (4 heads of 64), GPT-2 vocab, context 256, untied; 32.12M params."""
    return llmini("llmini_c", 256, 4, 8)


# The four benchmarks the seed also trained on, from the local evaluation files (the only copies
# here: shared/data/SOURCES.md). Weight 0: they count in the statistics and are never trained on.
BOOLQ = {"kind": "jsonl", "name": "boolq", "path": "eval/boolq/boolq.jsonl", "field": "query", "weight": 0.0}
HELLASWAG = {"kind": "jsonl", "name": "hellaswag", "path": "eval/hellaswag/hellaswag_val_sample1000.jsonl",
             "field": "ctx", "weight": 0.0}
WINOGRANDE = {"kind": "jsonl", "name": "winogrande", "path": "eval/winogrande/winogrande.jsonl",
              "template": "{context_options[0]} {continuation}", "weight": 0.0}
ARC_CHALLENGE = {"kind": "jsonl", "name": "arc_challenge", "path": "eval/arc_challenge/arc_challenge.jsonl",
                 "field": "query", "weight": 0.0}


@preset
def llmini_mix11() -> RunConfig:
    """LLmini's 11 sources in its table's order, 4 of them eval-only; small GPT, 16.09M params at V=50257"""
    # llmini_mix (its 7 training sources) plus BoolQ, HellaSwag, WinoGrande and ARC-Challenge from
    # their evaluation files, each capped at 20,000 samples like the seed's. Its statistics stand
    # beside the seed's "Training Data" table. The four benchmarks have weight 0 (validation only):
    # training on their evaluation files would make zero-shot scores on them meaningless.
    sources = (TINYSTORIES, SQUAD, WIKITEXT_TRAIN, BOOLQ, SCIQ, AG_NEWS, HELLASWAG, WINOGRANDE, GSM8K,
               COMMONSENSE_QA, ARC_CHALLENGE)
    return get_preset("llmini_mix").replace(name="llmini_mix11",
                                            data={"sources": [{**s, "max_docs": 20000} for s in sources]})
