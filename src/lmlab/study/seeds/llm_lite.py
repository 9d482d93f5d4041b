"""LLM-Lite (shared/seeds/llm-lite.md) as one study: a BPE trained on WikiText-2, the seed's
two-stage grid search with early stopping (stage 1: lr x layers x heads x width at batch 64 and
a constant lr; stage 2: width fixed, batch 128, warmup + cosine), the best retrained with twice the
epochs and tested once, then the seed's probes on the best configuration: a generation example
with its repeats filtered, prompt sensitivity (pairwise BLEU), sampling settings, heads 1 and 2
ablated, and the attention maps of layer 0 head 0 and of the last layer's last head.

Each stage is a set of named variants (the stages differ in batch size and schedule, so they are not
one grid). The grid search selects over both stages (Study.select has no "among these variants");
the seed selected within stage 2. The instruments measure the grid's run of the seed's best
configuration, not the retrained model in STUDY/retrain/ (instruments reach only the grid's runs);
the `retrained` instrument below reads the retrain's test result from STUDY/selected.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmlab.study.instruments import NotApplicable, instrument
from lmlab.study.library import CPU_RUN, alias, study
from lmlab.study.spec import Study


@dataclass(frozen=True)
class Scale:
    """The seed's grid at one size; `stage1` lists the (lr, layers, heads) points stage 1 sweeps width at."""

    lrs: tuple[float, float]  # (higher, lower)
    layers: tuple[int, int, int]
    widths: tuple[int, int, int]  # stage 1's embedding widths; stage 2 fixes the middle one
    batches: tuple[int, int]  # (stage 1, stage 2)
    stage1: tuple[tuple[float, int, int], ...]
    heads: tuple[int, int] = (2, 4)


def s2(lr: float, layers: int, heads: int) -> str:
    return f"lr{lr:g}-L{layers}-H{heads}"


def s1(lr: float, layers: int, heads: int, width: int) -> str:
    return f"s1-lr{lr:g}-L{layers}-H{heads}-d{width}"


def grid(sc: Scale) -> dict[str, dict]:
    """Stage 1 (batch 64, constant lr, no warmup: the seed's logs print LR=0.001000 every epoch),
    then stage 2 (batch 128, warmup + cosine to zero, width fixed)."""
    out = {}
    for lr, n_layer, n_head in sc.stage1:
        for d in sc.widths:
            out[s1(lr, n_layer, n_head, d)] = {"train.lr": lr, "model.n_layer": n_layer, "model.n_head": n_head,
                                               "model.d_model": d, "train.batch_size": sc.batches[0],
                                               "train.schedule": "constant", "train.warmup_steps": 0}
    for lr in sc.lrs:
        for n_layer in sc.layers:
            for n_head in sc.heads:
                out[s2(lr, n_layer, n_head)] = {"train.lr": lr, "model.n_layer": n_layer, "model.n_head": n_head,
                                                "model.d_model": sc.widths[1], "train.batch_size": sc.batches[1]}
    return out


FULL = Scale(lrs=(1e-3, 5e-4), layers=(2, 4, 6), widths=(64, 128, 256), batches=(64, 128),
             stage1=tuple((lr, n, h) for lr in (1e-3, 5e-4) for n in (2, 4, 6) for h in (2, 4)))
# cpu: depth and width halved, lr doubled (small models take a larger one; the ratio 2 is kept),
# batch /8; stage 1 only at the point the seed shows (Fig. 2: lr hi, the shallowest depth, 4 heads).
CPU = Scale(lrs=(2e-3, 1e-3), layers=(1, 2, 3), widths=(32, 64, 128), batches=(8, 16), stage1=((2e-3, 1, 4),))


def best(sc: Scale) -> str:
    """The seed's best configuration (lr 1e-3, 6 layers, 4 heads, width 128) at this size."""
    return s2(sc.lrs[0], sc.layers[2], sc.heads[1])


# ---------------------------------------------------------------- the probes (instruments)
UNIVERSITY, CAT = "The university student", "The cat sat on"
# Sec. IV.C names the first two variants and says there were at least seven; the rest are lmlab's.
PROMPT_VARIANTS = [UNIVERSITY, "A university student", "The university students", "The college student",
                   "A student at the university", "The university student was", "The university student studied"]


def instruments(sc: Scale, n_layer: int) -> list[dict]:
    on = {"variants": [best(sc)]}
    every = {**on, "seeds": "all"}  # claims compare these across seeds
    # The seed's mask [1, 0, 0, 1] over four heads, applied to every layer (a head mask of n_head values).
    heads = ",".join(f"{layer}.{h}" for layer in range(n_layer) for h in (1, 2))
    # (`seeds` of a sample instrument is the study's "first" / "all", so each run samples with one seed)
    sample = {"kind": "sample", "prompts": [UNIVERSITY], "max_new_tokens": 40, **every}
    return [
        {"kind": "retrained", **on},
        {"kind": "generate", "name": "generation", "prompt": UNIVERSITY, "max_new_tokens": 30, **on},
        # The seed filtered repeated tokens out after generating; the generation-time rule with the
        # same result (no token twice) is no_repeat_ngram = 1. It states no repetition penalty.
        {"kind": "generate", "name": "generation_filtered", "prompt": UNIVERSITY, "max_new_tokens": 30,
         "no_repeat_ngram": 1, **on},
        {"kind": "sensitivity", "prompts": PROMPT_VARIANTS, "max_new_tokens": 40, **every},
        {"kind": "sample", "name": "sampling", "prompts": [UNIVERSITY], "temperatures": [0.7, 1.0],
         "top_ks": [10, 50, 0], "max_new_tokens": 40, **on},
        {**sample, "name": "sample_t07", "temperatures": [0.7], "top_ks": [0]},
        {**sample, "name": "sample_t10", "temperatures": [1.0], "top_ks": [0]},
        {**sample, "name": "sample_k10", "temperatures": [1.0], "top_ks": [10]},
        {"kind": "ablate", "heads": heads, "prompt": CAT, "max_new_tokens": 24, **every},
        {"kind": "attention_map", "name": "map_first", "prompt": "The cat sat on the mat", "layer": 0, "head": 0, **on},
        {"kind": "attention_map", "name": "map_last", "prompt": "The cat sat on the mat", "layer": -1, "head": -1,
         **on},
        {"kind": "locality", "name": "attn_first", "layer": 0, "head": 0, **every},
        {"kind": "locality", "name": "attn_last", "layer": -1, "head": -1, **every},
    ]


# ---------------------------------------------------------------- the seed's claims and tables
def claims(sc: Scale) -> list[dict]:
    b, (hi, lo), (l1, _, l3), (h2, h4), w = best(sc), sc.lrs, sc.layers, sc.heads, sc.widths
    return [
        {"id": "val_ppl_1_17", "test": "near", "a": f"{b}:best_val_perplexity", "value": 1.17, "tolerance": 0.05,
         "text": "the best configuration reaches a validation perplexity of about 1.17 (0.16 nats per token, far "
                 "below what WikiText-2 allows: see shared/seeds/README.md)",
         "seed": "llm-lite.md, Abstract and III.E: 'achieving a perplexity of 1.17'; IV.A Fig. 5 log: 1.1711"},
        {"id": "test_ppl_1_17", "test": "near", "a": f"{b}:retrained.test_perplexity", "value": 1.17,
         "tolerance": 0.05, "text": "the best configuration retrained for twice the epochs has a test perplexity "
                                    "of about 1.17 (the retrained model is whichever the search selected)",
         "seed": "llm-lite.md, III.F Fig. 1: test loss 0.1530, test perplexity 1.17"},
        {"id": "best_config", "test": "near", "a": f"{b}:retrained.selected", "value": 1.0, "tolerance": 0.01,
         "text": "the grid search selects lr 1e-3, six layers, four heads, width 128 (1 = selected, 0 = not)",
         "seed": "llm-lite.md, III.E: 'the best-performing configuration ... learning rate of 0.001, six "
                 "transformer layers, four attention heads, and an embedding dimension of 128'"},
        {"id": "retrain_marginal", "test": "near", "a": f"{b}:retrained.val_ratio", "value": 1.0, "tolerance": 0.02,
         "text": "twice the epochs changes the best val loss only marginally: retrained / searched within 2%",
         "seed": "llm-lite.md, III.F: test perplexity 1.17 'comparable to the best configuration ... further "
                 "increasing the number of training epochs yields only marginal improvement'"},
        {"id": "larger_lr_better", "test": "less", "a": s2(hi, l1, h2), "b": s2(lo, l1, h2),
         "text": "within the 10-epoch budget the larger learning rate reaches the lower val loss (2 layers, 2 heads)",
         "seed": "llm-lite.md, IV.A Fig. 4: lr 5e-4 (2 layers, 2 heads) 1.1855 against 1.1711-1.1768 at lr 1e-3"},
        {"id": "deeper_better", "test": "decreasing", "chain": [s2(hi, n, h4) for n in sc.layers],
         "text": "val loss falls from 2 to 4 to 6 layers (lr 1e-3, 4 heads)",
         "seed": "llm-lite.md, IV.A Fig. 5 caption: 'Performance improves when the number of layers exceeds "
                 "four'; 2 layers 1.1768, 6 layers 1.1711"},
        {"id": "heads_help_deep", "test": "less", "a": s2(hi, l3, h4), "b": s2(hi, l3, h2),
         "text": "with six layers, four heads reach a lower val loss than two",
         "seed": "llm-lite.md, IV.A Fig. 5: 6 layers x 2 heads 1.1715, x 4 heads 1.1711"},
        {"id": "heads_no_help_shallow", "test": "same", "a": s2(hi, l1, h4), "b": s2(hi, l1, h2),
         "text": "with two layers, four heads do no better than two (no difference beyond the margin)",
         "seed": "llm-lite.md, IV.A: 'When the depth is too shallow, adding attention heads does not noticeably "
                 "improve performance'"},
        {"id": "width_matters_little", "test": "same", "a": s1(hi, l1, h4, w[0]), "b": s1(hi, l1, h4, w[2]),
         "text": "stage 1 (2 layers, 4 heads): width 64 and width 256 end at the same val loss",
         "seed": "llm-lite.md, IV.A Fig. 2: 'variations in embedding dimension had minimal impact on final "
                 "perplexity'"},
        {"id": "cosine_batch128_better", "test": "less", "a": s2(hi, l1, h4), "b": s1(hi, l1, h4, w[0]),
         "text": "batch 128 with warmup + cosine (width 128) ends lower than batch 64 at a constant lr (width 64)",
         "seed": "llm-lite.md, IV.A Fig. 3: '(a) ... converges more quickly to a lower perplexity'; its logs "
                 "print (a) 1.1768, (b) 1.17"},
        {"id": "no_overfitting", "test": "same", "a": f"{b}:final_val_loss", "b": f"{b}:best_val_loss",
         "text": "val loss flattens without overfitting: the last evaluation is as good as the best",
         "seed": "llm-lite.md, V. Fig. 9: 'The validation loss steadily decreases and flattens around epoch 7, "
                 "indicating stable generalization without overfitting'"},
        {"id": "prompts_low_bleu", "test": "near", "a": f"{b}:sensitivity.mean_bleu", "value": 2.5, "tolerance": 1.0,
         "text": "greedy continuations of slightly reworded prompts share little: mean pairwise BLEU in [0, 5] "
                 "(sacrebleu's 0-100 scale; the seed's 0.05 on a 0-1 scale)",
         "seed": "llm-lite.md, IV.C: 'Pairwise BLEU scores ... most values below 0.05'"},
        {"id": "low_temperature_less_diverse", "test": "less", "a": f"{b}:sample_t07.distinct_2_mean",
         "b": f"{b}:sample_t10.distinct_2_mean", "text": "temperature 0.7 samples are less diverse (distinct "
                                                         "bigrams) than temperature 1.0",
         "seed": "llm-lite.md, IV.C: 'A low temperature (0.7) yields more deterministic but shorter responses'"},
        {"id": "higher_top_k_more_diverse", "test": "greater", "a": f"{b}:sample_t10.distinct_2_mean",
         "b": f"{b}:sample_k10.distinct_2_mean", "text": "sampling from the whole vocabulary is more diverse than "
                                                          "top-k 10 (temperature 1.0)",
         "seed": "llm-lite.md, IV.C: 'higher top-k values increase diversity but can reduce coherence'"},
        {"id": "ablation_hurts", "test": "greater", "a": f"{b}:ablate.ablated_loss", "b": f"{b}:ablate.loss",
         "text": "zeroing heads 1 and 2 (of four, in every layer) raises the val loss",
         "seed": "llm-lite.md, IV.D: 'The cat sat on on on Mul on Mul ...': 'degraded fluency and coherence'"},
        {"id": "layer0_local", "test": "greater", "a": f"{b}:attn_first.prev_token", "b": f"{b}:attn_last.prev_token",
         "text": "layer 0 head 0 puts more weight on the preceding token than the last layer's last head",
         "seed": "llm-lite.md, IV.E Fig. 6: layer 0 shows 'strong local attention, primarily focusing on the "
                 "immediately preceding token'"},
        {"id": "last_layer_broader", "test": "less", "a": f"{b}:attn_first.entropy", "b": f"{b}:attn_last.entropy",
         "text": "the last layer's last head spreads its attention wider (higher entropy) than layer 0 head 0",
         "seed": "llm-lite.md, IV.E Fig. 7: 'the attention becomes more distributed ... a broader range of tokens'"},
    ]


def seed_tables(sc: Scale, note: str) -> list[dict]:
    b, (hi, lo), (l1, _, l3), (h2, h4), w = best(sc), sc.lrs, sc.layers, sc.heads, sc.widths
    return [
        {"title": "Grid search: validation loss and perplexity at the end of 10 epochs",
         "source": "llm-lite.md, IV.A (the 'Final Perplexity' lines of the logs in Figs. 2-5)",
         "columns": ["seed's configuration (lr, layers, heads, width, batch)", "val loss", "val perplexity"],
         "rows": [["1e-3, 2, 4, 64, batch 64, constant lr (Figs. 2a, 3b)", 0.1594, 1.17],
                  ["1e-3, 2, 4, 128, batch 128, cosine (Fig. 3a)", 0.1628, 1.1768],
                  ["5e-4, 2, 2, 128, batch 128 (Fig. 4)", 0.1702, 1.1855],
                  ["1e-3, 6, 2, 128, batch 128 (Fig. 5)", 0.1583, 1.1715],
                  ["1e-3, 6, 4, 128, batch 128 (Fig. 5; selected)", 0.1581, 1.1711]],
         "variants": [s1(hi, l1, h4, w[0]), s2(hi, l1, h4), s2(lo, l1, h2), s2(hi, l3, h2), b],
         "ours": {"val loss": "best_val_loss", "val perplexity": "best_val_perplexity"}, "note": note},
        {"title": "The selected configuration over its epochs",
         "source": "llm-lite.md, IV.A Fig. 5 log (lr 1e-3, 6 layers, 4 heads) and V. Fig. 9",
         "columns": ["configuration", "epoch 1 val loss", "epoch 1 val perplexity", "last val perplexity"],
         "rows": [["lr 1e-3, 6 layers, 4 heads, width 128", 0.2104, 1.2342, 1.171]], "variants": [b],
         "ours": {"epoch 1 val loss": "epoch1.val_loss", "epoch 1 val perplexity": "epoch1.val_perplexity",
                  "last val perplexity": "final_val_perplexity"}, "note": note},
        {"title": "The retrained best on the test split", "source": "llm-lite.md, III.F Fig. 1",
         "columns": ["model", "epochs", "test loss", "test perplexity"],
         "rows": [["best configuration, retrained from scratch", 20, 0.1530, 1.17]], "variants": [b],
         "ours": {"test loss": "retrained.test_loss", "test perplexity": "retrained.test_perplexity"},
         "note": note + "; lmlab's row is the retrain of the variant its search selected (retrained.selected)"},
    ]


SEED_PPL = ("the seed's perplexities of 1.17-1.19 (0.15-0.17 nats per token) are not credible for WikiText-2 "
            "(shared/seeds/README.md: padding or leakage counted as signal); lmlab scores real tokens only")



# ---------------------------------------------------------------- the studies
DOC = ("LLM-Lite: BPE on WikiText-2, a two-stage grid search with early stopping, the best retrained with twice "
       "the epochs and tested once; generation, prompt sensitivity, sampling, head ablation, attention maps")
PROBES = ("the search selects over both stages (the seed selected within stage 2); the probes run on the grid's "
          "runs of the seed's best configuration (the seed's on its retrained model); the seed filtered repeated "
          "tokens out after generating, lmlab forbids them while generating (no_repeat_ngram 1); prompt variants "
          "3-7 are lmlab's (the seed names two); BLEU on sacrebleu's 0-100 scale")
EPOCH_ENDS = 10 ** 9  # eval.every: evaluate at each epoch's end only, so train.patience counts epochs as the seed's


@study("llm_lite", "full")
def llm_lite_full() -> Study:
    """LLM-Lite: BPE on WikiText-2, a two-stage grid search with early stopping, the best retrained
    with twice the epochs and tested once; generation, prompt sensitivity, sampling, head ablation,
    attention maps."""
    return Study("llm_lite", "llm_lite", variants=grid(FULL), seeds=3, select="val_loss",
                 # warmup: the seed's 8,000 of 50,000 steps (16%) of stage 2's 10 epochs (23,975 windows of
                 # 128 tokens per epoch, `lmlab prepare llm_lite`: 188 steps of 128)
                 overrides={"train.warmup_steps": 300, "train.patience": 3, "eval.every": EPOCH_ENDS},
                 budget={"train.epochs": 10}, retrain={"train.epochs": 20}, description=DOC,
                 instruments=instruments(FULL, FULL.layers[2]), claims=claims(FULL),
                 seed_tables=seed_tables(FULL, SEED_PPL),
                 setup="the seed's grid, batch sizes, schedule and epochs; 3 seeds where it ran one; WikiText-2's "
                       "tokenized release files as train / val / test (the seed split the raw text 80/10/10); "
                       "a 4096-token BPE, context 128 (the seed states neither); no AMP or gradient accumulation; "
                       + PROBES)


@study("llm_lite", "cpu")
def llm_lite_cpu() -> Study:
    return Study("llm_lite", "llm_lite", variants=grid(CPU), seeds=3, select="val_loss",
                 overrides={**CPU_RUN, "model.context_len": 64, "tokenizer.vocab_size": 512,
                            "data.sources.0.max_tokens": 100000, "data.sources.1.max_tokens": 16384,
                            "data.sources.2.max_tokens": 16384, "train.warmup_steps": 80, "train.patience": 3,
                            "eval.every": EPOCH_ENDS},
                 budget={"train.epochs": 5}, retrain={"train.epochs": 10}, description=DOC,
                 instruments=instruments(CPU, CPU.layers[2]), claims=claims(CPU),
                 seed_tables=seed_tables(CPU, SEED_PPL + "; lmlab at cpu size (see the set-up)"),
                 setup=f"{CPU_NOTE}; {PROBES}")


CPU_NOTE = ("at cpu size: layers 1/2/3 for the seed's 2/4/6, widths 32/64/128 for 64/128/256 (stage 2 at 64), "
            "lr 2e-3/1e-3 for 1e-3/5e-4, batch 8/16 for 64/128, context 64, a 512-token BPE, the first 100k "
            "training tokens, 5 epochs (retrain 10) for 10 (20), warmup 80 of stage 2's ~490 steps (the seed's 16%), "
            "stage 1 only at 2 layers x 4 heads, 3 seeds")

alias("llm_lite_grid", "llm_lite")


# ---------------------------------------------------------------- its own instruments
def _open(run_dir: Path):
    from lmlab.analysis.source import open_run
    from lmlab.errors import UserError

    try:
        return open_run(run_dir, "best", "cpu")
    except UserError:  # no evaluation, so no best checkpoint: the last one
        return open_run(run_dir, "last", "cpu")


@instrument("retrained", {}, lambda p: ["selected", "test_loss", "test_perplexity", "best_val_loss", "val_ratio"])
def retrained(run_dir: Path, folder: Path, p: dict) -> dict:
    """the grid search's retrained best (STUDY/selected.json): its test loss and perplexity, its best val
    loss over the search's mean (val_ratio), and whether this variant is the one selected (selected)"""
    import math

    try:
        record = json.loads((run_dir.parent.parent / "selected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotApplicable("no selected.json beside the runs: the study selects nothing, or its "
                            "selection did not finish") from None
    test = record.get("test") or {}
    if not isinstance(test.get("loss"), (int, float)):
        raise NotApplicable(f"the retrained model has no test result "
                            f"({test.get('error') or record.get('error') or 'not evaluated'})")
    val = record.get("retrain_best_val_loss")
    variant = run_dir.name.rsplit("-s", 1)[0]
    metrics = {"selected": float(record["variant"] == variant), "test_loss": test["loss"],
               "test_perplexity": math.exp(min(test["loss"], 700.0)), "best_val_loss": val,
               "val_ratio": val / record["search_mean"] if val and record.get("search_mean") else None}
    text = (f"selected {record['variant']} (mean {record['selected_by']} {record['search_mean']:.4f} over the "
            f"search's seeds); retrained {record.get('retrain')} on seed {record.get('seed')}: best val loss "
            f"{val if val is None else round(val, 4)}, test loss {test['loss']:.4f}, test perplexity "
            f"{metrics['test_perplexity']:.2f}")
    return {"metrics": {k: v for k, v in metrics.items() if v is not None}, "text": text, "files": []}


@instrument("locality", {"layer": 0, "head": 0, "windows": 32},
            lambda p: ["prev_token", "distance", "entropy"])
def locality(run_dir: Path, folder: Path, p: dict) -> dict:
    """how local one head's attention is on validation text: its weight on the preceding token, the
    mean distance back it attends, its entropy (nats); negative layer / head count from the end"""
    import torch

    from lmlab.analysis.attention import attention_layers
    from lmlab.analysis.source import validation_windows
    from lmlab.errors import UserError
    from lmlab.model.hooks import run_with_cache

    loaded = _open(run_dir)
    try:
        n_layer = attention_layers(loaded.model)
    except UserError as err:
        raise NotApplicable(str(err)) from None
    layer, head = int(p["layer"]) % n_layer, int(p["head"]) % loaded.model.config.n_head
    wins = validation_windows(loaded, int(p["windows"]), 0)
    hook = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = run_with_cache(loaded.model, wins.x, hook)
    metrics = locality_stats(cache[hook][:, head].float())
    T = wins.x.size(1)
    text = (f"layer {layer} head {head} on {wins.x.size(0)} validation windows of {T} tokens: weight on the "
            f"preceding token {metrics['prev_token']:.3f}, mean distance {metrics['distance']:.2f} tokens, "
            f"entropy {metrics['entropy']:.3f} nats")
    return {"metrics": metrics, "text": text, "files": []}


def locality_stats(pattern) -> dict[str, float]:
    """pattern (N, T, T) of one causal head -> the mean over windows and queries 1..T-1 (query 0 can
    only attend to itself) of its weight on key q - 1, of sum_k w_qk (q - k), and of its entropy."""
    import torch

    T = pattern.size(-1)
    p = pattern[:, 1:]  # (N, T-1, T): queries 1..T-1
    q, k = torch.arange(1, T)[:, None], torch.arange(T)[None, :]
    prev = p[:, torch.arange(T - 1), torch.arange(T - 1)]  # (N, T-1): query q's weight on key q - 1
    return {"prev_token": float(prev.mean()),
            "distance": float((p * (q - k).clamp(min=0)).sum(-1).mean()),
            "entropy": float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())}
