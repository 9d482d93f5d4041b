"""Pico-LLM's claims (seeds/pico-llm.md) as data, and its tables transcribed, for the `pico` study.

Each claim quotes the seed's evidence (mostly plots: the write-up gives few numbers) and names the
variants and metrics lmlab measures; the verdicts are computed (lmlab.study.verdicts)."""

from __future__ import annotations

SEED = "pico-llm.md"
TOP_PS = ("p20", "p50", "p75", "p95", "p100")


def _learns(corpus: str, question: str) -> dict:
    return {"id": f"lstm_learns_{corpus}", "test": "less",
            "text": f"the LSTM sanity run on {corpus} learns: after 3 x 10 steps its validation loss is below its "
                    f"initial loss",
            "seed": f"{SEED}, Question {question}: 'Both train and test loss decrease over epochs' (a plot, no numbers)",
            "a": f"lstm_{corpus}:final_val_loss", "b": f"lstm_{corpus}:initial_loss"}


def _top_p(variant: str, instrument: str, corpus: str, stays: str, departs: str) -> list[dict]:
    return [{"id": f"top_p_02_stays_greedy_{corpus}", "test": "near", "value": 1.0, "tolerance": 0.1,
             "text": f"top-p 0.2 sticks to greedy decoding ({corpus}): samples keep the greedy continuation",
             "seed": f"{SEED}, Question 3, {stays}", "a": f"{variant}:{instrument}.on_greedy_p20"},
            {"id": f"top_p_1_departs_{corpus}", "test": "less",
             "text": f"higher top-p explores alternative continuations ({corpus}): at top-p 1.0 samples leave the "
                     f"greedy path sooner than at 0.2",
             "seed": f"{SEED}, Question 3, {departs}; Explanation: 'Lower values like 0.2 or 0.5 stick closely to "
                     f"greedy decoding, while higher values ... explore alternative continuations'",
             "a": f"{variant}:{instrument}.on_greedy_p100", "b": f"{variant}:{instrument}.on_greedy_p20"}]


CLAIMS = [
    _learns("tinystories", "1(a)"),
    _learns("counting", "1(b) (3seqs.txt)"),
    {"id": "onehot_learns_slower", "test": "greater", "metric": "final_val_loss",
     "text": "the one-hot k-gram MLP learns slower than the embedding one: after the same 3 x 10 steps on counting "
             "its validation loss is higher",
     "seed": f"{SEED}, Question 2(a)/(b): one-hot 'training loss decreases extremely slowly'; embedding 'the loss "
             f"drops quickly' (plots only)",
     "a": "kgram_onehot", "b": "kgram_embedding"},
    {"id": "kgram_counts_greedily", "test": "near", "value": 1.0, "tolerance": 0.1,
     "text": "the k-gram MLP trained on counting continues a count greedily (at least 90% of the next numbers right)",
     "seed": f"{SEED}, Question 3, 3seqs table: greedy '0 1 2 3 ... 23 24', every number right",
     "a": "kgram_counting:counting.accuracy"},
    *_top_p("kgram_tinystories", "top_p", "tinystories", "TinyStories table: the 0.2 row equals the greedy row",
            "TinyStories table: 0.5 leaves greedy after 'She loved to', 0.75 after 'there was a'"),
    *_top_p("kgram_counting", "top_p_counting", "counting", "3seqs table: rows greedy, 0.2, 0.5 and 0.75 are "
            "identical", "3seqs table: 0.95 leaves the count after '22' ('22scans'), 1.0 after '17'"),
    {"id": "diversity_grows_with_top_p", "test": "increasing",
     "text": "as top-p increases the generated text becomes more diverse: distinct bigrams rise from top-p 0.2 to "
             "0.5, 0.75, 0.95 and 1.0 (TinyStories)",
     "seed": f"{SEED}, Question 3, Explanation: 'As the top-p value increases, the generated text becomes more "
             f"diverse and creative'",
     "chain": [f"kgram_tinystories:top_p.distinct_2_{p}" for p in TOP_PS]},
    {"id": "transformer_fits_counting", "test": "near", "value": 1.0, "tolerance": 0.05,
     "text": "the RMSNorm transformer fits counting: greedy continuations get at least 95% of the next numbers right",
     "seed": f"{SEED}, Question 4, 3seq: 'both training and test loss drop sharply ... and plateau close to zero' "
             f"('Perfect Fit')",
     "a": "transformer_counting:counting.accuracy"},
    {"id": "kv_cache_exact", "test": "near", "value": 1.0, "tolerance": 0.001,
     "text": "generation with the KV cache gives the same greedy text as recomputing the whole prefix",
     "seed": f"{SEED}, Question 4: the transformer generates with a KV cache ('KV Cache sanity plot'); no comparison "
             f"is given",
     "a": "transformer:kv_cache.same_text"},
    {"id": "tinystories_test_loss_rises", "test": "greater",
     "text": "on TinyStories the transformer's test loss flattens early and rises late: its final validation loss is "
             "above its best",
     "seed": f"{SEED}, Question 4, TinyStories: 'the test loss flattens early and begins to slightly increase in "
             f"the later epochs'",
     "a": "transformer:final_val_loss", "b": "transformer:best_val_loss"},
    {"id": "position_embeddings_help", "test": "less",
     "text": "position embeddings help: learned positions reach a lower validation loss than no position signal",
     "seed": f"{SEED}, optional Q4 'Effect of positional embedding': the heading only, no result (its transformer "
             f"runs all use use_position_emb)",
     "a": "transformer", "b": "transformer_nopos"},
    {"id": "bigger_embed_is_better", "test": "less",
     "text": "a bigger embed size is better: twice the width reaches a lower validation loss in the same steps "
             "(Wikipedia)",
     "seed": f"{SEED}, optional Q3: 'The model with embedding size 1024 converges noticeably faster ... the "
             f"512-dimensional model learns more slowly and plateaus higher' (a plot; the two configurations it "
             f"lists differ in block_size 512 vs 1024, both with embed_size 1024)",
     "a": "embed_large", "b": "embed_small"},
    {"id": "postnorm_beats_prenorm", "test": "less", "metrics": ["best_val_loss", "final_val_loss"],
     "text": "post-norm beats pre-norm: the 16-head 8-block model with RMSNorm after each residual add reaches a "
             "lower validation loss, at its best and at the end",
     "seed": f"{SEED}, optional Q7: 'across all epochs, both training and test losses for the post-norm variant are "
             f"lower than those of the pre-norm model' (a plot)",
     "a": "postnorm", "b": "prenorm"},
    {"id": "overfit_beats_underfit", "test": "less",
     "text": "the long (overfit) run reaches a lower test loss than the short (underfit) one",
     "seed": f"{SEED}, optional Q2: underfit train and test 'remain high (~ 2-2.5)'; overfit test '~ 1.0-1.2'",
     "a": "overfit", "b": "underfit"},
    {"id": "overfit_gap_wider", "test": "greater",
     "text": "a train-test gap forms in the overfit run, not in the underfit one (val minus train loss at the best "
             "evaluation)",
     "seed": f"{SEED}, optional Q2: underfit 'small gap between train and test losses'; overfit train '10 -> 0.3' "
             f"vs test '~ 1.0-1.2', 'a clear gap forms'",
     "a": "overfit:train_val_gap", "b": "underfit:train_val_gap"},
    {"id": "overfit_test_loss_rises", "test": "greater",
     "text": "the model with far more capacity than data overfits: its test loss stops falling and rises (final "
             "validation loss above its best)",
     "seed": f"{SEED}, optional Q2: test loss 'initially decreases but then stabilizes or slightly rises'; Q3 "
             f"depth/width: 16 heads x 8 blocks 'far exceeds the size of both datasets, leading to overfitting'",
     "a": "overfit:final_val_loss", "b": "overfit:best_val_loss"},
    {"id": "overfit_memorizes", "test": "greater",
     "text": "the overfit model's samples copy its training text (word 6-grams found in it), the underfit model's "
             "less so",
     "seed": f"{SEED}, optional Q2, Observations table: evidence of memorization 'None' (underfit) vs 'Strong' "
             f"(overfit)",
     "a": "overfit:memorized.copied", "b": "underfit:memorized.copied"},
]

CONFIG_ROWS = [  # the seed's configurations, question by question: [run, corpus, epochs x steps, lr, block, embed,
    # heads x blocks], and the lmlab variant of each
    ("lstm_tinystories", ["Q1(a) LSTM", "TinyStories", "3 x 10", "1e-3", 32, 128, "-"]),
    ("lstm_counting", ["Q1(b) LSTM", "3seqs.txt", "3 x 10", "1e-3", 32, 128, "-"]),
    ("kgram_onehot", ["Q2(a) k-gram, one-hot", "3seqs.txt", "3 x 10", "1e-3", 32, 128, "-"]),
    ("kgram_embedding", ["Q2(b) k-gram, embedding", "3seqs.txt", "3 x 10", "1e-3", 32, 128, "-"]),
    ("kgram_counting", ["Q2(c)/Q3 k-gram", "3seqs.txt", "15 x 210", "3e-4", 1024, 128, "-"]),
    ("kgram_tinystories", ["Q3 k-gram", "TinyStories", "10 x 750", "3e-4", 512, 512, "-"]),
    ("transformer_counting", ["Q4 transformer", "3seqs.txt", "15 x 210", "3e-4", 1024, 128, "8 x 6"]),
    ("transformer", ["Q4 transformer", "TinyStories", "10 x 750", "3e-4", 512, 512, "8 x 6"]),
    ("embed_large", ["opt. Q1/Q3 Wikipedia", "Wikipedia, 30k lines", "3 x 1500", "3e-4", 1024, 1024, "16 x 8"]),
    ("underfit", ["opt. Q2 underfit", "TinyStories", "3 x 100", "3e-4", 512, 1024, "16 x 8"]),
    ("overfit", ["opt. Q2 overfit", "TinyStories", "15 x 2500", "3e-4", 512, 1024, "16 x 8"]),
    ("postnorm", ["opt. Q7 post-norm", "TinyStories", "not given", "3e-4", 512, 1024, "16 x 8"]),
]

TOP_P_COUNTING = [["greedy", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24"],
                  ["0.2", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24"],
                  ["0.5", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24"],
                  ["0.75", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24"],
                  ["0.95", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22scans"],
                  ["1.0", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17ometers oxidative 146"]]
TOP_P_TINYSTORIES = [
    ["greedy", "Once upon a time, there was a little girl named Lily. She loved to play outside and explore the world "
               "around her"],
    ["0.2", "Once upon a time, there was a little girl named Lily. She loved to play outside and explore the world "
            "around her"],
    ["0.5", "Once upon a time, there was a little girl named Lily. She loved to eat cherries, especially the soft ones"],
    ["0.75", "Once upon a time, there was a dog named Max. Max loved to play with his owner, a lot. His"],
    ["0.95", "Once upon a time, there was a little girl named Lily. She loved to run and play outside and run around "
             "with"],
    ["1.0", "Once upon a time, there were two friends Jack and Annie. They loved to play together and think. Today was "
            "special"]]
ATTENTION = [[0, "0 'Once'", "'Once' 1.000"], [0, "5 'there'", "'Once' 0.370"],
             [2, "11 'Lily'", "'girl' 0.399, 'there' 0.214, 'Once' 0.155"],
             [2, "13 'loved'", "'Once' 0.171, 'there' 0.101, 'Lily' 0.078"],
             [3, "16 'outside'", "'girl' 0.245, 'Lily' 0.159, 'outside' 0.123"],
             [3, "17 '.'", "'girl' 0.286, 'outside' 0.195, 'Lily' 0.112"]]


def seed_tables(full: bool) -> list[dict]:
    """The seed's tables; lmlab's losses sit beside the seed's only at full size (GPT-2 tokens:
    the same scale); at cpu size they are per byte and the note says so."""
    scale = "" if full else "; cpu size: lmlab's losses are nats per byte (byte tokens), the seed's per GPT-2 token"
    return [
        {"title": "Configurations, question by question", "source": f"{SEED}, each question's Configurations",
         "columns": ["run", "corpus", "epochs x steps", "lr", "block", "embed", "heads x blocks"],
         "rows": [r for _, r in CONFIG_ROWS], "variants": [v for v, _ in CONFIG_ROWS],
         "ours": {"epochs x steps": "steps"},
         "note": "lmlab's column: optimizer steps of the variant" + scale},
        {"title": "Nucleus sampling, k-gram MLP on 3seqs.txt", "source": f"{SEED}, Question 3",
         "columns": ["top-p", "generated output"], "rows": TOP_P_COUNTING,
         "note": "lmlab's table: instrument top_p_counting on kgram_counting (per top-p: the share of the greedy "
                 "continuation kept, distinct bigrams)"},
        {"title": "Nucleus sampling, k-gram MLP on TinyStories", "source": f"{SEED}, Question 3",
         "columns": ["top-p", "generated output"], "rows": TOP_P_TINYSTORIES,
         "note": "lmlab's table: instrument top_p on kgram_tinystories"},
        {"title": "Underfitting vs overfitting", "source": f"{SEED}, optional Q2, Quantitative analysis",
         "columns": ["condition", "epochs x steps", "train loss", "test loss", "gap (test - train)"],
         "rows": [["underfit", "3 x 100", "~2-2.5", "~2-2.5", "small"],
                  ["overfit", "15 x 2500", "10 -> 0.3", "~1.0-1.2", "clear, widening"]],
         "variants": ["underfit", "overfit"],
         "ours": {"test loss": "best_val_loss", "gap (test - train)": "train_val_gap"} if full else {},
         "note": "lmlab: best validation loss and val - train at that evaluation" + scale},
        {"title": "Underfitting vs overfitting, qualitative", "source": f"{SEED}, optional Q2, Observations",
         "columns": ["condition", "qualitative output", "diversity", "evidence of memorization"],
         "rows": [["underfit", "poor: incoherent, broken sentences", "random / illogical", "none"],
                  ["overfit", "fluent, grammatical, memorized training patterns", "very low, repetitive", "strong"]],
         "variants": ["underfit", "overfit"], "ours": {"evidence of memorization": "memorized.copied"},
         "note": "lmlab: share of the word 6-grams of sampled continuations (temperature 1) found in the training "
                 "text; the samples are in instrument memorized"},
        {"title": "Layer 3 attention, top attended tokens", "source": f"{SEED}, optional Q5",
         "columns": ["head", "query", "top attended (weight)"], "rows": ATTENTION,
         "note": "prompt 'Once upon a time, there was a little girl named Lily who loved to play outside.'; lmlab's: "
                 "instruments attention_h0 ... attention_h3 on transformer"
                 + ("" if full else " (byte tokens, so queries are characters; layer 3 is the last of 4 blocks)")},
    ]
