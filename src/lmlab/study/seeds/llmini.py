"""LLmini (seeds/llmini.md): GPT decoders A/B/C on an 11-source mixture, attention entropy and sparsity.

One study, `llmini` (earlier name `llmini_scale`), runs every experiment the seed reports:

  A, B, C          the three scales under identical training for `train.epochs` epochs: per-epoch
                   train loss, val loss, val perplexity and gap (the seed's tables), wall time and
                   peak memory per model
  C_pad, C_pack    model C with plain padding (long texts cut) and with the packing the seed proposes
                   (C itself pads short texts and chunks long ones: data.layout = chunk), for the same
                   epochs, packed rows as many real tokens a step as C's: the packing-vs-padding
                   comparison of its Future Work

and after training, on the best checkpoints (instruments):

  mix11      the seed's 11-source mixture table on GPT-2 ids at 256 / 128 (preset llmini_mix11)
  data       the statistics of the corpus each variant trained on (pad / chunk / pack rows, utilization)
  attention  per-layer and per-head entropy and sparsity, their correlation (every seed of A, B, C)
  layers     the per-layer ranges of that table (the seed's aggregate columns)
  zero_shot  HellaSwag, BoolQ, ARC-Easy and ARC-Challenge accuracy (its Future Work), first seed
  generate   the seed's generation call on A

The study trains on llmini_mix (the seed's sources without the four benchmarks: their only local
copies are the evaluation files the zero-shot table scores). Claims and seed tables: below and in
llmini_tables.
"""

from __future__ import annotations

from lmlab.study.library import CPU_RUN, alias, study
from lmlab.study.seeds import llmini_instruments  # noqa: F401  (registers data_stats and layer_range)
from lmlab.study.seeds.llmini_tables import GAPS, MODELS, SRC, first_middle_last, tables
from lmlab.study.spec import Study

EPOCHS = 3
MIX11_SOURCES = ("tinystories,squad,wikitext2,boolq,sciq,ag_news,hellaswag,winogrande,gsm8k,commonsense_qa,"
                 "arc_challenge")
TASKS = "hellaswag,boolq,arc_easy,arc_challenge"


def variants(dims: dict[str, tuple[int, int, int]], pack_batch: int) -> dict[str, dict]:
    """A, B, C (d_model, n_head, n_layer), then C on padded rows and on packed ones. Packed rows are
    full, so C_pack takes `pack_batch` of them a step: as many real tokens a step as C's padded and
    chunked rows carry, hence about C's steps per epoch (the same data and schedule, less compute)."""
    out = {m: {"model.d_model": d, "model.n_head": h, "model.n_layer": n} for m, (d, h, n) in dims.items()}
    out["C_pad"] = {**out["C"], "data.layout": "pad"}
    out["C_pack"] = {**out["C"], "data.layout": "pack", "train.batch_size": pack_batch}
    return out


def instruments(windows: int, limit: int) -> list[dict]:
    return [
        {"kind": "data_stats", "name": "mix11", "variants": ["A"], "seeds": "all", "preset": "llmini_mix11",
         "sources": MIX11_SOURCES},
        {"kind": "data_stats", "name": "data", "variants": ["C", "C_pad", "C_pack"], "seeds": "all"},
        {"kind": "analyze", "name": "attention", "variants": MODELS, "seeds": "all", "windows": windows},
        {"kind": "layer_range", "name": "layers", "variants": MODELS, "seeds": "all", "source": "attention"},
        {"kind": "tasks", "name": "zero_shot", "variants": MODELS, "tasks": TASKS, "limit": limit},
        {"kind": "generate", "variants": ["A"], "prompt": "The movie was", "max_new_tokens": 50,
         "temperature": 0.7, "top_k": 20},
    ]


def claim(id: str, text: str, seed: str, test: str, **fields) -> dict:
    return {"id": id, "text": text, "seed": f"{SRC}, {seed}", "test": test, **fields}


def per_model(fn, models=MODELS) -> list[dict]:
    return [fn(m) for m in models]


def training_claims() -> list[dict]:
    per_epoch = [f"epoch{e}.{{}}" for e in range(1, EPOCHS + 1)]
    return [
        claim("bigger_lower_val_loss", "val loss A < B < C at every epoch",
              "Loss and Perplexity: val loss A 4.728 / 4.180 / 4.080 < B 4.902 / 4.391 / 4.301 < "
              "C 5.104 / 4.634 / 4.553 at epochs 1 / 2 / 3", "increasing", chain=["A", "B", "C"],
              metrics=[m.format("val_loss") for m in per_epoch]),
        claim("bigger_lower_train_loss", "train loss A < B < C at every epoch",
              "Loss and Perplexity: train loss A 5.873 / 4.447 / 4.076 < B 6.029 / 4.647 / 4.320 < "
              "C 6.220 / 4.879 / 4.594", "increasing", chain=["A", "B", "C"],
              metrics=[m.format("train_loss") for m in per_epoch]),
        claim("A_final_perplexity_below_C", "A ends with a lower val perplexity than C",
              "Loss and Perplexity: 59.12 vs 94.88 after epoch 3", "less", a="A", b="C",
              metric=f"epoch{EPOCHS}.val_perplexity"),
        claim("gap_grows_with_size", "the train-val gap grows with size: at the last epoch gap A > B > C",
              "Overfitting Gap: epoch 3 A +0.003 > B -0.019 > C -0.041", "decreasing", chain=["A", "B", "C"],
              metric=f"epoch{EPOCHS}.gap"),
        *per_model(lambda m: claim(
            f"gap_closes_{m}", f"{m}'s val - train gap rises epoch after epoch (underfitting shrinks)",
            f"Overfitting Gap: {m} " + " -> ".join(f"{g:+.3f}" for g in GAPS[MODELS.index(m)]), "increasing",
            chain=[f"{m}:epoch{e}.gap" for e in range(1, EPOCHS + 1)])),
        claim("smaller_trains_faster", "training time C < B < A", "Compute: 44.5 < 57.8 < 69.8 min", "increasing",
              chain=["C", "B", "A"], metric="wall_s"),
        claim("smaller_uses_less_memory", "peak memory C < B < A", "Compute: 6.21 < 6.85 < 7.57 GB VRAM",
              "increasing", chain=["C", "B", "A"], metric="peak_mem_mb"),
    ]


def attention_claims() -> list[dict]:
    where = "Attention Analysis / What the Attention Data Shows"
    layer = "Per-Layer table"
    fml = {m: dict(zip(("ef", "em", "el", "sf", "sm", "sl"), first_middle_last(m)[1:])) for m in MODELS}
    return [
        *per_model(lambda m: claim(
            f"early_layers_diffuse_{m}", f"{m}: entropy falls from the first layer to the middle one",
            f"{where}; {layer}: {m} {fml[m]['ef']} (layer 1) > {fml[m]['em']} (middle)", "greater",
            a=f"{m}:attention.entropy_first", b=f"{m}:attention.entropy_middle")),
        *per_model(lambda m: claim(
            f"middle_layers_sparse_{m}", f"{m}: sparsity rises from the first layer to the middle one",
            f"{where}; {layer}: {m} {fml[m]['sf']} (layer 1) < {fml[m]['sm']} (middle)", "greater",
            a=f"{m}:attention.sparsity_middle", b=f"{m}:attention.sparsity_first")),
        *per_model(lambda m: claim(
            f"last_layer_relaxes_{m}", f"{m}: entropy rises again in the last layer, above the middle one",
            f"{where} (A and B; C weaker); {layer}: {m} {fml[m]['el']} (last) > {fml[m]['em']} (middle)",
            "greater", a=f"{m}:attention.entropy_last", b=f"{m}:attention.entropy_middle")),
        *per_model(lambda m: claim(
            f"entropy_sparsity_negative_{m}", f"{m}: entropy and sparsity are negatively correlated over heads "
                                              f"(Pearson r's interval inside [-1, 0])",
            "Attention Analysis: approximately -0.9 in all three models", "near",
            a=f"{m}:attention.entropy_sparsity_r", value=-0.5, tolerance=1.0)),
        claim("entropy_sparsity_strong_A", "A: the correlation is strong, r near -0.9 (within +-0.15)",
              "Attention Analysis: approximately -0.9", "near", a="A:attention.entropy_sparsity_r", value=-0.9,
              tolerance=0.15 / 0.9),
        claim("deeper_sparser_peak", "deeper models reach a higher peak layer sparsity: A > B > C",
              f"{where}: peak 0.777 (A) > 0.764 (B) > 0.713 (C)", "decreasing", chain=["A", "B", "C"],
              metric="layers.sparsity_layer_max"),
    ]


def data_claims() -> list[dict]:
    prep = "Training Data / Preprocessing"
    return [
        claim("most_rows_padded", "about 95% of the rows are padded short texts (within +-5%)",
              f"{prep}: 150,971 of 160,745 rows padded (95.4%)", "near", a="A:mix11.padded_share", value=0.954,
              tolerance=0.05),
        claim("padding_dominates_the_window", "most of the 256-token window is padding: utilization below 50%",
              f"{prep}: token utilization 34.0% (66% padding overhead)", "near", a="A:mix11.utilization",
              value=0.25, tolerance=1.0),
        claim("tinystories_longest_samples", "TinyStories' samples are the longest, then SQuAD's, then BoolQ's",
              "Training Data: 216.9 > 134.6 > 129.5 tokens per sample", "decreasing",
              chain=[f"A:mix11.{s}.avg_tokens" for s in ("tinystories", "squad", "boolq")]),
        claim("packing_uses_every_token", "packing removes the padding overhead: utilization pack > chunk",
              "Future Work / Other Improvements: packing 'eliminating the 66% padding overhead'", "greater",
              a="C_pack:data.utilization", b="C:data.utilization"),
        claim("packing_saves_time", "packed rows train the same epochs in less time than padded and chunked ones",
              "Future Work: packing 'eliminating the 66% padding overhead'", "less", a="C_pack", b="C",
              metric="wall_s"),
        claim("packing_keeps_the_loss", "packed rows reach the val loss of padded and chunked ones (within the "
                                        "noise floor or 1%)", "Future Work: packing 'making every training token "
                                                              "count'", "same", a="C_pack", b="C"),
    ]


def claims() -> list[dict]:
    return training_claims() + attention_claims() + data_claims()


def llmini(size: str, dims: dict, pack_batch: int, seeds, overrides: dict, windows: int, limit: int,
           setup: str, scale: str) -> Study:
    return Study("llmini", "llmini_a", variants=variants(dims, pack_batch), seeds=seeds, budget={"train.epochs": EPOCHS},
                 baseline="C", overrides=overrides, instruments=instruments(windows, limit), claims=claims(),
                 seed_tables=tables(scale), setup=setup,
                 description=f"LLmini at {size} size: A/B/C under identical training for {EPOCHS} epochs "
                             "(per-epoch losses, gap, time, memory), attention entropy and sparsity, zero-shot "
                             "tasks, the 11-source mixture's statistics, and C packed or padded")


FULL_DIMS = {"A": (384, 6, 10), "B": (320, 5, 9), "C": (256, 4, 8)}
FULL_STEPS = 2961  # 3 epochs of llmini_mix in chunk rows at 256 / 128, 32 x 2 rows a step (987 each)
FULL_PACK_BATCH = 14  # 27,305 packed rows for 63,130 chunk rows: 14 x 2 a step, 976 steps an epoch


@study("llmini", "full")
def llmini_full() -> Study:
    """LLmini: A/B/C (10x384, 9x320, 8x256) for 3 epochs, attention tables, zero-shot, packing vs padding."""
    setup = ("the seed's models, recipe and 3 epochs on llmini_mix: its 7 training sources from local copies "
             "(7.3M GPT-2 tokens, not 14.0M: the 4 benchmarks are left out so the zero-shot table means something, "
             "TinyStories is a 2 MiB sample, SQuAD and CommonsenseQA their dev sets); 3 seeds (the seed: 42 only)")
    return llmini("full", FULL_DIMS, FULL_PACK_BATCH, [42, 43, 44],
                  {"train.warmup_steps": FULL_STEPS // 10, "eval.every": FULL_STEPS // EPOCHS},
                  windows=32, limit=1000, setup=setup, scale="the seed's models on 7.3M of its 14.0M tokens")


CPU_DIMS = {"A": (64, 4, 5), "B": (48, 3, 4), "C": (32, 2, 3)}  # d_head 16, one layer less each step down
CPU_DOCS = 90  # samples per source: capped equally, as the seed's 20,000, so token shares follow length
CPU_STEPS = 267  # 3 epochs of chunk rows at 8 rows a step (test_seed_llmini checks it)
CPU_PACK_BATCH = 4  # 339 packed rows for 712 chunk rows: 4 a step, 85 steps an epoch


@study("llmini", "cpu")
def llmini_cpu() -> Study:
    # The seed's ladder (d_head fixed, one layer and one head more per step up) at d_head 16 and a
    # BPE of 2,048 ids learned on the corpus: on GPT-2's 50,257 the output layer is 10x the rest of
    # A and a CPU step takes a second. The seed's 256-token window stays, so short texts are still
    # mostly padding (the packing question needs that); every source capped at CPU_DOCS samples.
    setup = (f"cpu size: widths 64 / 48 / 32 with 5 / 4 / 3 layers (d_head 16; the seed: 384 / 320 / 256, "
             f"10 / 9 / 8 layers, d_head 64), the seed's window 256 and stride 128, a 2,048-token BPE learned on "
             f"the training split (the seed: GPT-2's 50,257 ids, so our losses are per BPE token, on another "
             f"scale), {CPU_DOCS} samples of each of llmini_mix's 7 sources (0.1M tokens; the seed: 14.0M from 11), "
             f"batch 8 x 1 (the seed: 32 x 2), lr 2e-3 (3e-4), 10% warmup, the seed's dropout, 3 epochs, "
             f"3 seeds (the seed: 42), fp32 on CPU threads")
    overrides = {**CPU_RUN, "tokenizer.kind": "bpe", "tokenizer.path": "", "tokenizer.vocab_size": 2048,
                 "model.vocab_size": 0, "train.batch_size": 8, "train.grad_accum": 1, "train.lr": 2e-3,
                 "train.warmup_steps": CPU_STEPS // 10, "eval.every": CPU_STEPS // EPOCHS,
                 **{f"data.sources.{i}.max_docs": CPU_DOCS for i in range(7)}}
    return llmini("cpu", CPU_DIMS, CPU_PACK_BATCH, 3, overrides, windows=32, limit=100, setup=setup,
                  scale="cpu size: models ~100x smaller on 0.1M BPE tokens")


alias("llmini_scale", "llmini")
