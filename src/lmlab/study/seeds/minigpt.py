"""Mini GPT (seeds/mini-gpt.md): three sizes on TinyStories with a 3,000-token BPE, then what the
seed reports of them: val perplexity per size, the first loss against ln(3000), the temperature
sweep, the nearest neighbours of "dad" and the analogy "princess - girl + boy".

The seed's probes need words that are tokens. With the 3,000-token BPE learned from the local
2 MiB TinyStories sample, " dad", " princess", " girl", " boy" and the seed's five neighbours of
"dad" are single tokens, but " prince" (24 times in the sample) is two (" prin" + "ce"), so the
seed's analogy cannot return it as a token: its claim is kept, and a family analogy of the same
form whose answer is one token ("mom - girl + boy" -> "dad") stands beside it (`family` below).
"""

from __future__ import annotations

from pathlib import Path

from lmlab.study.instruments import instrument
from lmlab.study.library import CPU_RUN, alias, study
from lmlab.study.spec import Study

SEED = "mini-gpt.md"
SIZES = ("small", "medium", "large")
FAMILY = "Dad,daddy,mom,parents,Daddy"  # the seed's five nearest neighbours of "dad"
OTHERS = "friend,dog,tree,ball,car"  # nouns about as frequent in TinyStories, none a family role
# The temperature claims read six prompts (each prompt its own generator seeds, lmlab.analysis.sampling):
# distinct-2 pooled over their samples and the 4-gram repetition as a per-sample mean.
PROMPT = "Once upon a time"
PROMPTS = [PROMPT, "One day, a little girl named Lily", "Tom and his dad went to the park.",
           "The princess lived in a big castle.", "Mom said,", "There was a boy who loved"]


# ---- a seed-specific instrument: is "dad" among family words? -------------------------------------


def _family_metrics(p: dict) -> list[str]:
    return ["related_cosine", "other_cosine", "related_in_top", "analogy_rank"]


@instrument("family", {"word": "dad", "related": FAMILY, "others": OTHERS, "k": 10,
                       "analogy": "mom - girl + boy", "expect": "dad"}, _family_metrics)
def family(run_dir: Path, folder: Path, p: dict) -> dict:
    """Mini GPT's family cluster: a word's mean cosine to related words vs to other words, and an analogy's rank"""
    import torch.nn.functional as F

    from lmlab.analysis import probe as P
    from lmlab.io import atomic_write_text

    loaded = _open(run_dir)
    tok = loaded.tokenizer
    emb = P.embedding_matrix(loaded.model, tok.vocab_size)  # (V, D)
    word = P.lookup(tok, str(p["word"]))
    v = P.vector(emb, word)  # (D,)

    def cosines(words: str) -> dict[str, float]:
        looked = [P.lookup(tok, w.strip()) for w in words.split(",") if w.strip()]
        return {w.text: float(F.cosine_similarity(v, P.vector(emb, w), dim=0)) for w in looked}

    related, others = cosines(str(p["related"])), cosines(str(p["others"]))
    near = P.nearest(emb, v, int(p["k"]), set(word.ids), tok)
    top = {n["id"] for n in near}
    in_top = sum(len(ids) == 1 and ids[0] in top for ids in (P.lookup(tok, w).ids for w in related))
    analogy = P.analogy(emb, tok, str(p["analogy"]), int(p["k"]))
    rank = P.answer_rank(analogy["answers"], str(p["expect"]), tok)
    metrics = {"related_cosine": sum(related.values()) / len(related),
               "other_cosine": sum(others.values()) / len(others), "related_in_top": in_top,
               **({"analogy_rank": rank} if rank is not None else {})}
    text = "\n".join([
        f"{word.text!r} vs related: " + ", ".join(f"{w} {c:.3f}" for w, c in related.items())
        + f" (mean {metrics['related_cosine']:.3f}; {in_top} of {len(related)} in its top {p['k']})",
        f"{word.text!r} vs others:  " + ", ".join(f"{w} {c:.3f}" for w, c in others.items())
        + f" (mean {metrics['other_cosine']:.3f})",
        f"{word.text!r} nearest: " + ", ".join(f"{n['token']!r} {n['cosine']:.3f}" for n in near),
        P.format_analogy(analogy) + f"  ({P.rank_note(str(p['expect']), rank, len(analogy['answers']))})",
        *(f"  note: {w.note}" for w in [word] if w.note)])
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "family.txt", text + "\n")
    return {"metrics": metrics, "text": text, "files": [folder / "family.txt"]}


def _open(run_dir: Path):
    from lmlab.analysis.source import open_run
    from lmlab.errors import UserError

    try:
        return open_run(run_dir, "best", "cpu")
    except UserError:  # no evaluation ran: its last checkpoint
        return open_run(run_dir, "last", "cpu")


# ---- the study as data -----------------------------------------------------------------------------


def instruments(max_new_tokens: int) -> list[dict]:
    """After training: the seed's probes on every size and seed, the temperature sweep on every
    size, and on every seed of the large model (the claims' noise floor): the family probes and
    t = 0.5 vs t = 1.2."""
    return [
        {"kind": "probe", "neighbours": "dad", "analogy": "princess - girl + boy", "expect": "prince", "k": 10,
         "seeds": "all"},
        {"kind": "family", "name": "dad", "variants": ["large"], "seeds": "all"},
        {"kind": "sample", "name": "temperature", "prompts": [PROMPT], "temperatures": [0.5, 0.8, 1.0, 1.2],
         "max_new_tokens": max_new_tokens},
        *({"kind": "sample", "name": name, "variants": ["large"], "seeds": "all", "prompts": PROMPTS,
           "temperatures": [t], "max_new_tokens": max_new_tokens} for name, t in (("t05", 0.5), ("t12", 1.2))),
    ]


def claims() -> list[dict]:
    init = "mini-gpt.md, Training: initial loss 7.37 vs ln(3000) = 8.01 (ratio 0.92)"
    return [
        {"id": "bigger_is_better", "test": "decreasing", "chain": list(SIZES), "metric": "best_val_perplexity",
         "text": "at the same number of steps, validation perplexity falls with size: small > medium > large",
         "seed": "mini-gpt.md, Results: val perplexity 17.75 / 10.23 / 8.08 at 1.05M / 3.40M / 7.07M parameters"},
        *({"id": f"initial_loss_{s}", "test": "near", "a": f"{s}:initial_loss_over_ln_v", "value": 1.0,
           "tolerance": 0.1, "seed": init,
           "text": f"{s}: the first step's loss is within 10% of ln(V) (initialization and loss set up correctly)"}
          for s in SIZES),
        {"id": "analogy_prince", "test": "near", "a": "large:probe.analogy_rank", "value": 1.0, "tolerance": 0.0,
         "text": "'princess - girl + boy' returns 'prince' as the top cosine match (large; rank 11 = not in the top "
                 "10; not tested where the BPE splits ' prince', as no single-token answer could match it)",
         "seed": "mini-gpt.md, What the embeddings learned: 'prince' is the top match, cosine 0.66"},
        {"id": "analogy_family", "test": "near", "a": "large:dad.analogy_rank", "value": 1.0, "tolerance": 0.0,
         "text": "the same form on single-token family words: 'mom - girl + boy' returns 'dad' as the top match "
                 "(large; lmlab's stand-in where ' prince' is two tokens)",
         "seed": "mini-gpt.md, What the embeddings learned: 'princess - girl + boy' -> 'prince' (the royal/gender "
                 "direction)"},
        {"id": "dad_family_cluster", "test": "greater", "a": "large:dad.related_cosine",
         "b": "large:dad.other_cosine",
         "text": "'dad' is closer (mean cosine) to the seed's family neighbours Dad, daddy, mom, parents, Daddy "
                 "than to nouns as frequent that are not family roles: friend, dog, tree, ball, car (large)",
         "seed": "mini-gpt.md, What the embeddings learned: the five nearest to 'dad' are Dad, daddy, mom, parents, "
                 "Daddy, cosine 0.50-0.67"},
        {"id": "low_temperature_repeats", "test": "greater", "a": "large:t05.repetition_mean",
         "b": "large:t12.repetition_mean",
         "text": "samples at t = 0.5 repeat more (4-grams seen earlier in the sample; mean over six prompts) than at "
                 "t = 1.2 (large)",
         "seed": "mini-gpt.md, Results: 'at t = 0.5 the model is most coherent but tends toward repetition'"},
        {"id": "high_temperature_novel", "test": "less", "a": "large:t05.distinct_2_mean",
         "b": "large:t12.distinct_2_mean",
         "text": "samples at t = 1.2 hold more distinct bigrams than at t = 0.5 (pooled over six prompts; large)",
         "seed": "mini-gpt.md, Results: 'at t = 1.2 it introduces more novel elements'"},
    ]


def seed_tables(note: str) -> list[dict]:
    return [
        {"title": "Final validation perplexity per size", "source": f"{SEED}, Results",
         "columns": ["size", "parameters", "val perplexity"],
         "rows": [["small", "1.05M", 17.75], ["medium", "3.40M", 10.23], ["large", "7.07M", 8.08]],
         "variants": list(SIZES), "ours": {"parameters": "params", "val perplexity": "best_val_perplexity"},
         "note": note},
        {"title": "First loss against ln(3000), and throughput", "source": f"{SEED}, Training",
         "columns": ["size", "initial loss", "ln(3000)", "initial / ln V", "tokens/s"],
         "rows": [["medium", 7.37, 8.01, 0.92, 39500]], "variants": ["medium"],
         "ours": {"initial loss": "initial_loss", "initial / ln V": "initial_loss_over_ln_v",
                  "tokens/s": "tokens_per_s"},
         "note": "the seed's tokens/s is a GPU with mixed precision at batch x 256 tokens; lmlab's is this "
                 "machine's, per run (at cpu size two runs share 2 CPU cores)"},
        {"title": "Embedding probes", "source": f"{SEED}, What the embeddings learned",
         "columns": ["probe", "seed's answer", "cosine", "rank of the answer"],
         "rows": [["'dad': five nearest", "Dad, daddy, mom, parents, Daddy", "0.50-0.67", "1-5"],
                  ["princess - girl + boy", "prince", 0.66, 1]],
         "variants": ["", "large"], "ours": {"rank of the answer": "probe.analogy_rank"},
         "note": "lmlab's neighbours of 'dad' and its mean cosine to the seed's five are the instruments `probe` "
                 "and `dad` (rank 11 = not among the top 10)"},
        {"title": "Temperature sweep", "source": f"{SEED}, Results",
         "columns": ["temperature", "the seed's reading"],
         "rows": [[0.5, "most coherent, but tends toward repetition"], ["0.8-1.0", "the sweet spot for this size"],
                  [1.2, "more novel elements, more syntactic drift"]],
         "note": "lmlab's table per size is the instrument `temperature` (distinct-2, 4-gram repetition, log p)"},
    ]


def minigpt_study(variants: dict, seeds: int, overrides: dict, budget: dict, setup: str,
                  max_new_tokens: int) -> Study:
    return Study("minigpt", "minigpt_small", variants=variants, seeds=seeds, scaling=True, baseline="small",
                 overrides=overrides, budget=budget, instruments=instruments(max_new_tokens), claims=claims(),
                 seed_tables=seed_tables(setup), setup=setup,
                 description="Mini GPT's three sizes on TinyStories with a 3,000-token BPE, the same steps each "
                             "(seed: larger is better), then its probes and temperature sweep")


@study("minigpt", "full")
def minigpt_full() -> Study:
    """Mini GPT: small / medium / large, val perplexity, first loss vs ln(3000), temperature sweep, embedding probes."""
    return minigpt_study({s: {"base": f"minigpt_{s}"} for s in SIZES}, 3, {}, {},
                         "the seed's dimensions (1,046,656 / 3,404,032 / 7,072,128 parameters) and schedule (6,348 "
                         "steps of 64 x 256 tokens, warmup 500, cosine); the corpus is the local 2 MiB TinyStories "
                         "sample (~0.5M tokens, so ~200 epochs) unless --data gives the full 104M-token set; the seed "
                         "states no learning rate (lmlab's default) and no seed count (3 here)", 200)


# cpu: the seed's 5 pre-LN blocks, sinusoidal positions, tied head and V = 3000 BPE; widths 128 /
# 256 / 384 cut to 48 / 96 / 144 (d_ff = 2 d_model as in the seed; 4 heads, d_k 12 / 24 / 36),
# context 128. The warmup keeps the seed's fraction (500 / 6,348 ~ 8%). 400 steps were tried: medium
# vs large stayed unresolved (the large model leaves an early plateau 30-80 steps later on some seeds,
# a spread more steps did not close) and the study took 14:45 instead of 12:51 on a loaded machine.
CPU_WIDTHS = {"small": 48, "medium": 96, "large": 144}
CPU_STEPS = 300


@study("minigpt", "cpu")
def minigpt_cpu() -> Study:
    variants = {s: {"model.d_model": d, "model.d_mlp": 2 * d} for s, d in CPU_WIDTHS.items()}
    overrides = {**CPU_RUN, "model.n_head": 4, "model.context_len": 128, "train.batch_size": 16, "train.lr": 2e-3,
                 "train.warmup_steps": round(CPU_STEPS * 500 / 6348), "eval.max_tokens": 16384}
    return minigpt_study(variants, 3, overrides, {"train.max_steps": CPU_STEPS, "eval.every": 100},
                         f"widths 48 / 96 / 144 (4 heads) instead of 128 / 256 / 384 (8 heads), context 128 not 256, "
                         f"{CPU_STEPS} steps of 16 x 128 tokens (~0.6M tokens, ~1.2 passes over the 2 MiB sample) "
                         f"instead of 6,348 x 64 x 256 (104M tokens), lr 2e-3, fp32, 3 seeds; the same 5 pre-LN "
                         f"blocks, sinusoidal positions, tied head and 3,000-token BPE (learned from the 2 MiB sample, "
                         f"where ' prince' is two tokens)", 120)


alias("minigpt_sizes", "minigpt")
