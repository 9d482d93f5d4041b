"""Pico-LLM (seeds/pico-llm.md): the LSTM and k-gram sanity runs, the nucleus-sampling tables, the
RMSNorm transformer with its KV cache, under- and over-fitting, embed size, depth/width, position
embeddings, pre- vs post-norm and layer-3 attention maps, as one study with the seed's claims.

Variants (both sizes; `cpu` cuts widths, contexts and steps, see CPU_SETUP):
  lstm_tinystories, lstm_counting     Q1: the LSTM sanity runs (3 x 10 steps, as the seed)
  kgram_onehot, kgram_embedding       Q2: one-hot vs nn.Embedding k-gram MLP on counting (3 x 10 steps)
  kgram_counting, kgram_tinystories   Q2c/Q3: the k-gram MLP trained longer, for the top-p tables
  transformer, transformer_counting   Q4: the pre-RMSNorm transformer on each corpus (KV cache checked)
  transformer_nopos                   Q4 "effect of positional embedding": no position signal
  embed_small, embed_large            Q3: embed size (512 vs 1024 on Wikipedia in the seed; WikiText-2 here)
  prenorm, postnorm                   Q7: the 16-head 8-block model, RMSNorm before / after each sublayer
  underfit, overfit                   optional Q2: that model briefly, and long on little text
"""

from __future__ import annotations

import lmlab.study.seeds.pico_instruments  # noqa: F401  (registers counting, top_p, kv_cache, memorized)
from lmlab.study.library import study
from lmlab.study.seeds.pico_claims import CLAIMS, seed_tables
from lmlab.study.spec import Study

DESCRIPTION = ("Pico-LLM: LSTM and k-gram sanity runs, one-hot vs embedding, top-p tables, the RMSNorm transformer "
               "with KV cache, under/over-fitting, embed size, depth/width, positions, pre- vs post-norm, "
               "attention maps")
ATTENTION_PROMPT = "Once upon a time, there was a little girl named Lily who loved to play outside."
STORY = "Once upon a time"


def instruments(max_new_tokens: int) -> list[dict]:
    """What runs on the best checkpoints: counting, the top-p tables, the KV-cache check, the
    memorization samples and the seed's layer-3 maps of heads 0-3 (head 0 also on the LSTM:
    recorded n/a, it has no attention)."""
    maps = [{"kind": "attention_map", "name": f"attention_h{h}", "prompt": ATTENTION_PROMPT, "layer": 3,
             "head": h, "k": 3, "variants": ["transformer"] + (["lstm_tinystories"] if h == 0 else [])}
            for h in range(4)]
    return [
        {"kind": "counting", "variants": ["lstm_counting", "kgram_counting", "transformer_counting"], "seeds": "all"},
        {"kind": "top_p", "name": "top_p", "variants": ["kgram_tinystories"], "seeds": "all",
         "prompts": [STORY, "One day, a little"], "max_new_tokens": max_new_tokens},
        {"kind": "top_p", "name": "top_p_counting", "variants": ["kgram_counting"], "seeds": "all",
         "prompts": ["0 1 2", "41 42 43"], "max_new_tokens": max_new_tokens},
        {"kind": "sample", "name": "samples", "variants": ["kgram_tinystories", "kgram_counting"],
         "prompts": [STORY, "0 1 2"], "temperatures": [0.0, 1.0], "top_ps": [0.2, 0.5, 0.75, 0.95, 1.0],
         "max_new_tokens": max_new_tokens},
        {"kind": "kv_cache", "variants": ["transformer", "transformer_counting"], "seeds": "all"},
        {"kind": "memorized", "variants": ["underfit", "overfit"], "seeds": "all", "n": 6,
         "max_new_tokens": 4 * max_new_tokens},
        *maps,
    ]


FULL = {"lstm_tinystories": {"base": "pico_lstm"}, "lstm_counting": {"base": "pico_lstm_counting"},
        "kgram_onehot": {"base": "pico_kgram_onehot"}, "kgram_embedding": {"base": "pico_kgram_embedding"},
        "kgram_counting": {"base": "pico_kgram_counting"}, "kgram_tinystories": {"base": "pico_kgram"},
        "transformer": {"base": "pico_transformer"}, "transformer_counting": {"base": "pico_transformer_counting"},
        "transformer_nopos": {"base": "pico_transformer", "model.position": "none"},
        "embed_small": {"base": "pico_wiki", "model.d_model": 512}, "embed_large": {"base": "pico_wiki"},
        "prenorm": {"base": "pico_prenorm"}, "postnorm": {"base": "pico_postnorm"},
        "underfit": {"base": "pico_underfit"}, "overfit": {"base": "pico_overfit"}}

FULL_SETUP = ("the seed's dimensions, learning rates and epochs x steps per epoch, GPT-2 tokens, batch 16, plain Adam; "
              "differences: TinyStories is the 2 MiB train sample with the 0.8 MiB validation sample as test "
              "(the seed: a 10% test fraction of its own lines), counting sequences are synthetic 3seqs-like lines, "
              "the Wikipedia subset is WikiText-2, text is packed instead of padded, 3 seeds instead of 1; "
              "lstm/k-gram layer details and the transformer's GELU FFN and tied head are lmlab's choices")


@study("pico", "full")
def pico_full() -> Study:
    """Pico-LLM: sanity runs, one-hot vs embedding, top-p tables, KV cache, under/over-fitting, norms, positions."""
    return Study("pico", "pico_transformer", variants=FULL, seeds=3, baseline="transformer", description=DESCRIPTION,
                 instruments=instruments(60), claims=CLAIMS,
                 seed_tables=seed_tables(full=True), setup=FULL_SETUP)


# cpu: byte tokens (V = 257: GPT-2's 50,257-wide head costs about 1 s a step on 2 cores), the
# sanity runs at the seed's own size and 30 steps, the rest 64 wide with 300 steps at lr 1e-3.
SMALL = {"model.n_layer": 4, "model.n_head": 4, "model.d_model": 64, "model.context_len": 96}
# The seed's 16-head 8-block model, cut like SMALL; pre- vs post-norm at the seed's lr 3e-4, because
# post-norm without warmup is the placement a higher lr hurts (Xiong et al. 2020).
WIDE = {**SMALL, "model.n_layer": 6, "model.n_head": 8, "model.context_len": 64}
NORMS = {**WIDE, "train.lr": 3e-4}
# Under- and over-fitting differ in steps alone, as the seed's: 4,000 bytes of TinyStories that
# the model memorizes within 600 steps (val loss is lowest near step 200, then rises).
FITTING = {**WIDE, "data.sources.0.max_tokens": 4000}
# The seed's k = 3 GPT-2 tokens span about three numbers or words (9-12 bytes): 8 bytes here.
KGRAM = {"model.context_len": 64, "model.d_model": 128, "model.d_mlp": 128, "model.ngram": 8}
CPU = {"lstm_tinystories": {"base": "pico_lstm"}, "lstm_counting": {"base": "pico_lstm_counting"},
       "kgram_onehot": {"base": "pico_kgram_onehot"}, "kgram_embedding": {"base": "pico_kgram_embedding"},
       "kgram_counting": {"base": "pico_kgram_counting", **KGRAM},
       "kgram_tinystories": {"base": "pico_kgram", **KGRAM},
       "transformer": {"base": "pico_transformer", **SMALL},
       # at 300 steps its byte-level val loss is still falling fast (0.92) and it cannot count yet
       "transformer_counting": {"base": "pico_transformer_counting", **SMALL, "train.max_steps": 600},
       "transformer_nopos": {"base": "pico_transformer", **SMALL, "model.position": "none"},
       "embed_small": {"base": "pico_wiki", **SMALL, "model.d_model": 32},
       "embed_large": {"base": "pico_wiki", **SMALL},
       "prenorm": {"base": "pico_prenorm", **NORMS}, "postnorm": {"base": "pico_postnorm", **NORMS},
       "underfit": {"base": "pico_underfit", **FITTING, "train.max_steps": 30, "eval.every": 10},
       "overfit": {"base": "pico_overfit", **FITTING, "train.max_steps": 600}}
SANITY = ("lstm_tinystories", "lstm_counting", "kgram_onehot", "kgram_embedding")

CPU_SETUP = ("cpu size, 3 seeds: byte tokens (V = 257) instead of GPT-2's, so losses are nats per byte and not "
             "comparable with the seed's per-token numbers; the LSTM and k-gram sanity runs keep the seed's size "
             "and 3 x 10 steps at lr 1e-3 (k = 3 bytes); the k-gram models for the top-p tables read k = 8 bytes, "
             "about the text the seed's k = 3 GPT-2 tokens span, 128 wide; every other model is 64 wide, context "
             "96, 300 steps (counting: 600) at lr 1e-3 (the seed: 3e-4 for thousands of steps), training text "
             "capped at 200k bytes; the seed's 6-block transformer has 4 blocks (so layer 3, the seed's map, is the "
             "last layer here), its 16-head 8-block model 6 blocks of 8 heads, 64 wide, context 64, pre- vs "
             "post-norm at the seed's lr 3e-4; embed size is 32 vs 64 on WikiText-2 (the seed: 512 vs 1024 on "
             "Wikipedia); underfit trains 30 steps, overfit 600 steps, both on 4,000 bytes of TinyStories (the "
             "seed: 300 vs 37,500 steps on its TinyStories lines)")


@study("pico", "cpu")
def pico_cpu() -> Study:
    # The sanity runs keep the seed's 3 epochs x 10 steps (the budget's 300 would replace their presets').
    variants = {name: ({**v, "train.max_steps": 30, "eval.every": 10} if name in SANITY else v)
                for name, v in CPU.items()}
    return Study("pico", "pico_transformer", variants=variants, seeds=3, baseline="transformer",
                 description=DESCRIPTION, overrides={"tokenizer.kind": "byte", "model.vocab_size": 0,
                                                     "train.precision": "fp32", "train.lr": 1e-3, "eval.max_tokens": 8192,
                                                     "eval.batch_size": 32, "data.sources.0.max_tokens": 200000},
                 budget={"train.max_steps": 300, "eval.every": 50},
                 instruments=instruments(60), claims=CLAIMS,
                 seed_tables=seed_tables(full=False), setup=CPU_SETUP)
