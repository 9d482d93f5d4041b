"""The step-by-step mini GPT's claims and tables (seeds/step-by-step-mini-gpt.md), as data for the
mytnano study: each claim quotes the seed's number(s) and section; the verdict is computed.

Quantities are test-split metrics ("VARIANT:test.loss", the study's `test` instrument) since the
seed reports test loss; the names baseline's 1.409 is a validation loss, read as best_val_loss.
Where the seed calls two rows "virtually identical" / "no better" / "negligible", the claim is
`same`; where it names a winner, `less`."""

from __future__ import annotations

SEED = "step-by-step-mini-gpt.md"
LOSS = "test.loss"


def _less(cid: str, text: str, a: str, b: str, seed: str, metric: str = LOSS) -> dict:
    return {"id": cid, "text": text, "test": "less", "a": a, "b": b, "metric": metric, "seed": seed}


def _same(cid: str, text: str, a: str, b: str, seed: str, metric: str = LOSS, **extra) -> dict:
    return {"id": cid, "text": text, "test": "same", "a": a, "b": b, "metric": metric, "seed": seed, **extra}


CLAIMS = [
    _less("names_mlp_beats_bigram", "on names, the MLP reaches a lower test loss than the counted bigram",
          "01_mlp", "01_bigram", f"{SEED}, 01: 'The neural network models, even a simple MLP, performed "
                                 "significantly better' than the bigram"),
    _less("names_mlp_beats_wavenet", "on names, the MLP is the best of stage 01 (lower test loss than WaveNet)",
          "01_mlp", "01_wavenet", f"{SEED}, 01: 'The best model from this exploratory phase (a 3-layer MLP "
                                  "with a 10D embedding and an 8-character context)'"),
    {"id": "names_mlp_val_1409", "text": "the names MLP reaches a validation loss near 1.409 (within 10%)",
     "test": "near", "a": "01_mlp:best_val_loss", "value": 1.40935, "tolerance": 0.1,
     "seed": f"{SEED}, 01: 'achieved a validation loss of 1.40935' (Indian names)"},
    _less("attention_beats_average", "one attention head beats the running average of past embeddings",
          "02_attention", "02_average", f"{SEED}, 02: test loss 2.4578 (single head) vs 2.4619 (average)"),
    _less("attention_beats_bigram", "one attention head beats the pure bigram (context 1)",
          "02_attention", "02_bigram", f"{SEED}, 02: test loss 2.4578 (single head) vs 2.4640 (bigram)"),
    _less("average_beats_bigram", "the averaged context beats the pure bigram",
          "02_average", "02_bigram", f"{SEED}, 02: test loss 2.4619 (average) vs 2.4640 (bigram)"),
    _less("single_head_beats_four", "one head of 32 beats four heads of 8 at this scale",
          "02_attention", "02_mha", f"{SEED}, 02: 2.4578 vs 2.4623, 'The MHA model performing worse'"),
    _same("relu_same_gelu", "ReLU and GELU FFNs reach the same test loss",
          "03_relu", "03_gelu", f"{SEED}, 03: 2.4618 vs 2.4621, 'virtually identical'"),
    _same("ffn_no_gain", "adding the FFN does not change the test loss of the attention model",
          "03_relu", "02_mha", f"{SEED}, 03: 2.4618 vs 2.4623, 'no better than the attention-only model'"),
    _same("stacking_no_gain", "four stacked blocks (no residuals, no norms) are no better than one",
          "04_blocks", "03_relu", f"{SEED}, 04: 2.4622 vs 2.4618, 'performs no better than the 1-layer model'"),
    _same("residuals_negligible", "residual connections change the 4-block model's test loss negligibly",
          "05_residuals", "04_blocks", f"{SEED}, 05: 2.4611 vs 2.4622, 'performance differences are still "
                                       "negligible'"),
    _same("projections_negligible", "projection layers change the test loss negligibly",
          "05_projections", "05_residuals", f"{SEED}, 05: 2.4627 vs 2.4611, 'negligible'"),
    _same("pre_post_ln_negligible", "pre- and post-LayerNorm reach the same test loss",
          "05_preln", "05_postln", f"{SEED}, 05: 2.4618 (pre) vs 2.4629 (post), 'negligible'"),
    _same("dropout_negligible", "dropout changes the test loss negligibly",
          "05_dropout", "05_preln", f"{SEED}, 05: 2.4623 vs 2.4618, 'all models are stuck at the same ~2.46'"),
    {"id": "ladder_descends", "text": "each stage's model lowers the test loss of the stage before (02 > 03 > 04 "
                                      "> 05 > 06), the ladder's premise",
     "test": "decreasing", "chain": ["02_mha", "03_relu", "04_blocks", "05_dropout", "06_char"], "metric": LOSS,
     "seed": f"{SEED}, 02-05: 2.4623, 2.4618, 2.4622, 2.4623 (flat: 'stuck at the same ~2.46'); 06 unreported"},
    _less("bpe_lowers_bits_per_byte", "the BPE vocabulary lowers bits per byte against characters, same model",
          "07_mha", "06_char", f"{SEED}, 07: test loss 11.7760 -> 7.9622, 'BPC' 11.5165 -> 11.4883 "
                               "('a good tokenizer is more important')", metric="test.bits_per_byte"),
    _same("mqa_same_mha", "multi-query attention is within noise of multi-head attention",
          "07_mqa", "07_mha", f"{SEED}, 07: 7.9606 vs 7.9622, 'performed identically to MHA'"),
    _same("gqa_same_mha", "grouped-query attention is within noise of multi-head attention",
          "07_gqa", "07_mha", f"{SEED}, 07: 7.9606 vs 7.9622, 'performed identically to MHA'"),
    _less("ffn2x_beats_4x", "a 2x FFN beats the standard 4x on the GQA model",
          "08_ffn2x", "07_gqa", f"{SEED}, 08: 7.9592 (2x) vs 7.9606 (GQA, 4x), 'A smaller FFN performed better'"),
    _less("rmsnorm_beats_layernorm", "RMSNorm beats LayerNorm on the GQA model",
          "08_rmsnorm", "07_gqa", f"{SEED}, 08: 7.9585 vs 7.9606, 'RMSNorm performed best'"),
    _less("swiglu_beats_gelu", "a SwiGLU FFN beats a GELU FFN on the GQA model",
          "08_swiglu", "08_gelu", f"{SEED}, 08: 7.9543 (swiglufast), 'SwiGLU was the clear winner'"),
    {"id": "stage08_order", "text": "stage 08 in the seed's order: SwiGLU < RMSNorm < FFN 2x < the GQA model",
     "test": "increasing", "chain": ["08_swiglu", "08_rmsnorm", "08_ffn2x", "07_gqa"], "metric": LOSS,
     "seed": f"{SEED}, 08: 7.9543 < 7.9585 < 7.9592 < 7.9606"},
    _same("flash_same_manual", "a model trained with fused (flash) attention matches one trained with the "
                               "manual path", "08_flash", "07_gqa",
          f"{SEED}, 08: 7.9606 vs 7.9606, 'performed identically to the standard implementation'"),
    _same("flash_exact", "one checkpoint scores the same test loss through the fused and the manual path "
                         "(to 1e-4 nats)", "08_flash:impl.fused_loss", "08_flash:impl.manual_loss",
          f"{SEED}, 08: 'a 100% \"free\" optimization ... with zero quality loss'", margin=1e-4),
    _less("final_beats_stage08", "the final model (RMSNorm, GQA, SwiGLU 2x, init, warmup + cosine) beats "
                                 "stage 08's best", "09_final", "08_swiglu",
          f"{SEED}, 09: 7.4214 vs 7.9543, 'dropped again from ~7.95 to ~7.42'"),
]

_RESULTS = [  # results_All.csv as the seed's README prints it: experiment, design choice, loss, acc., BPC
    ("02_02_0_PureBigram", "Baseline (Context=1)", 2.4640, 0.2850, 3.5548, "02_bigram"),
    ("02_02_1_Average_ctx", "Bag-of-Words Context", 2.4619, 0.2853, 3.5518, "02_average"),
    ("02_02_2_Self_Attention", "Single-Head Attention", 2.4578, 0.2859, 3.5458, "02_attention"),
    ("02_02_3_Multi_Self_Attention", "Multi-Head (4) Attention", 2.4623, 0.2852, 3.5523, "02_mha"),
    ("03_01_1_FFN_ReLU", "MHA + FFN (ReLU)", 2.4618, 0.2853, 3.5515, "03_relu"),
    ("03_01_2_FFN_GeLU", "MHA + FFN (GeLU)", 2.4621, 0.2853, 3.5519, "03_gelu"),
    ("04_01_N_x_Blocks", "4-Layer Stacked Blocks", 2.4622, 0.2852, 3.5521, "04_blocks"),
    ("05_01_Residuals", "+ Residual Connections", 2.4611, 0.2854, 3.5505, "05_residuals"),
    ("05_02_Projections", "+ Projection Layers", 2.4627, 0.2851, 3.5528, "05_projections"),
    ("05_03_1_post_LayerNorm", "Post-LN (Original)", 2.4629, 0.2851, 3.5531, "05_postln"),
    ("05_03_2_pre_LayerNorm", "Pre-LN (GPT-2 Style)", 2.4618, 0.2853, 3.5515, "05_preln"),
    ("05_04_Dropouts", "+ Dropout", 2.4623, 0.2852, 3.5523, "05_dropout"),
    ("07_00_0_Transformer", "Baseline (Char-level)", 11.7760, 0.0480, 11.5165, "06_char"),
    ("07_00_2_Tokenizer", "+ BPE Tokenizer", 7.9622, 0.0483, 11.4883, "07_mha"),
    ("07_02_0_MultiHeadAttn", "Standard MHA", 7.9622, 0.0483, 11.4883, "07_mha"),
    ("07_02_2_SingleQ", "Multi-Query Attn (MQA)", 7.9606, 0.0484, 11.4860, "07_mqa"),
    ("07_02_3_GroupedQ", "Grouped-Query Attn (GQA)", 7.9606, 0.0484, 11.4860, "07_gqa"),
    ("08_01_03_Hid_dim_2x", "FFN Dimension (best)", 7.9592, 0.0483, 11.4842, "08_ffn2x"),
    ("08_02_3_Norm_RN_LN", "Normalization (best)", 7.9585, 0.0483, 11.4831, "08_rmsnorm"),
    ("(not reported)", "GELU FFN, what SwiGLU is compared with", "—", "—", "—", "08_gelu"),
    ("08_03_08_swiglufast", "Activation (best)", 7.9543, 0.0484, 11.4771, "08_swiglu"),
    ("08_04_02_flash", "Attention Impl. (best)", 7.9606, 0.0484, 11.4860, "08_flash"),
    ("09_01_myt-tiny", "Final Model + Tuning", 7.4214, 0.0482, 10.7068, "09_final"),
    ("09_02_myt-tiny", "Final Model + Tuning", 7.4214, 0.0482, 10.7068, "09_final"),
]

SEED_TABLES = [
    {"title": "Stage 01: names baselines (validation loss)",
     "source": f"{SEED}, 01: Probabilistic Models & Application",
     "columns": ["model", "validation loss"],
     "rows": [["bigram (counted)", "—"], ["MLP: 3 layers, 10-d embedding, 8-char context", 1.40935],
              ["WaveNet", "—"]],
     "variants": ["01_bigram", "01_mlp", "01_wavenet"], "ours": {"validation loss": "best_val_loss"},
     "note": "the seed's corpus is Indian names, lmlab's makemore's English names (shared/data/names), one name "
             "per document with an end-of-text token; the seed gives a number for its best model only"},
    {"title": "Stages 02-09: test loss, accuracy and bits (results_All.csv)",
     "source": f"{SEED}, 02-09 Results (Test Set) tables, logs/results_All.csv",
     "columns": ["experiment", "design choice", "test loss", "test acc.", "test BPC", "bits per byte"],
     "rows": [[e, d, loss, acc, bpc, "—"] for e, d, loss, acc, bpc, _ in _RESULTS],
     "variants": [v for *_, v in _RESULTS],
     "ours": {"test loss": "test.loss", "test acc.": "test.accuracy", "test BPC": "test.bits_per_token",
              "bits per byte": "test.bits_per_byte"},
     "note": "lmlab's columns are the test split (its `test` instrument on each seed's best checkpoint, mean ± "
             "95% half-width over seeds); the seed's BPC is loss / ln 2, bits per character on its char rows "
             "but bits per token on its BPE rows, so only bits per byte (which the seed does not report) "
             "compares across tokenizers; the seed's 07_00_0 'char-level' loss 11.776 exceeds ln 128 and its "
             "BPC 11.5165 is ln(100,277) in nats, which suggests an untrained 100k-vocabulary model, not a "
             "char model; at cpu size stages 07-09 use a 512-token BPE, so their loss and accuracy are not on "
             "the seed's cl100k scale"},
]
