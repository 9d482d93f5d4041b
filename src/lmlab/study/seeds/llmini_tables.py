"""LLmini's own tables (shared/seeds/llmini.md), transcribed for its study's page, each mapped to
the lmlab metric that measures the same quantity (lmlab.study.seed_tables). Numbers are the
seed's; where its unit differs from lmlab's (minutes, GB) the row holds the converted value and
the note says so."""

from __future__ import annotations

MODELS = ["A", "B", "C"]
SRC = "llmini.md"

# "Training Data": the 11 sources (samples, tokens, % tokens, average tokens per sample) and the total.
MIXTURE = [["TinyStories", 19077, 4137714, 29.6, 216.9], ["SQuAD", 20000, 2691776, 19.3, 134.6],
           ["WikiText-2", 19827, 1962696, 14.1, 99.0], ["BoolQ", 9413, 1219124, 8.7, 129.5],
           ["SciQ", 11625, 1172914, 8.4, 100.9], ["AG News", 20000, 1060001, 7.6, 53.0],
           ["HellaSwag", 19952, 704757, 5.0, 35.3], ["Winogrande", 20000, 433315, 3.1, 21.7],
           ["GSM8K", 7473, 412695, 3.0, 55.2], ["CommonsenseQA", 9741, 150470, 1.1, 15.4],
           ["ARC-Challenge", 1119, 28217, 0.2, 25.2], ["Total", 158227, 13973679, 100.0, 88.3]]

# Per-layer entropy (nats) and sparsity (share of weights < 1e-3), "Attention Analysis".
LAYERS = {"A": ([4.27, 4.11, 4.24, 4.17, 4.12, 3.76, 3.14, 3.25, 3.77, 4.03],
                [0.509, 0.522, 0.515, 0.530, 0.557, 0.641, 0.764, 0.777, 0.648, 0.573]),
          "B": ([4.18, 4.22, 4.21, 4.01, 3.58, 3.36, 3.28, 3.42, 3.63],
                [0.512, 0.516, 0.541, 0.576, 0.651, 0.727, 0.764, 0.749, 0.656]),
          "C": ([4.32, 4.22, 4.02, 3.72, 3.60, 3.52, 3.57, 3.78],
                [0.505, 0.515, 0.592, 0.652, 0.684, 0.713, 0.711, 0.666])}

EPOCHS = {1: [[5.873, 4.728, 113.05], [6.029, 4.902, 134.61], [6.220, 5.104, 164.66]],
          2: [[4.447, 4.180, 65.38], [4.647, 4.391, 80.68], [4.879, 4.634, 102.90]],
          3: [[4.076, 4.080, 59.12], [4.320, 4.301, 73.77], [4.594, 4.553, 94.88]]}
GAPS = [[-1.145, -0.266, 0.003], [-1.127, -0.256, -0.019], [-1.116, -0.246, -0.041]]


def layer_rows() -> list[list]:
    """The per-layer table as the seed prints it ("" where a model has fewer layers)."""
    rows = []
    for i in range(10):
        row: list = [i + 1]
        for m in MODELS:
            ent, spa = LAYERS[m]
            row += [ent[i], spa[i]] if i < len(ent) else ["", ""]
        rows.append(row)
    return rows


def first_middle_last(model: str) -> list:
    """Layers 1, L//2 + 1 and L of the seed's table: the layers analyze's *_first/_middle/_last read."""
    ent, spa = LAYERS[model]
    picks = (0, len(ent) // 2, len(ent) - 1)
    return [model, *(ent[i] for i in picks), *(spa[i] for i in picks)]


def tables(scale: str) -> list[dict]:
    """Every seed table; `scale` says in a few words how this size's models and data differ."""
    loss = [{"title": f"Loss and perplexity, epoch {e}", "source": f"{SRC}, Ablation Study / Loss and Perplexity",
             "columns": ["model", "train loss", "val loss", "val perplexity"],
             "rows": [[m, *r] for m, r in zip(MODELS, EPOCHS[e])], "variants": MODELS,
             "ours": {"train loss": f"epoch{e}.train_loss", "val loss": f"epoch{e}.val_loss",
                      "val perplexity": f"epoch{e}.val_perplexity"},
             "note": "train loss is the epoch's mean (with dropout), val loss at its end; " + scale}
            for e in (1, 2, 3)]
    return [
        {"title": "Training data (11 sources)", "source": f"{SRC}, Training Data",
         "columns": ["dataset", "samples", "tokens", "% tokens", "avg tok/sample"], "rows": MIXTURE,
         "variants": [""] * 11 + ["A"],
         "ours": {"samples": "mix11.samples", "tokens": "mix11.tokens", "avg tok/sample": "mix11.avg_tokens"},
         "note": "lmlab: preset llmini_mix11 on GPT-2 ids, each source from its local copy capped at 20,000 samples "
                 "(TinyStories is a 2 MiB sample, SQuAD and CommonsenseQA their dev sets, BoolQ, HellaSwag, "
                 "WinoGrande and ARC-Challenge their evaluation files, weight 0); per-source rows in the "
                 "mix11 instrument's table"},
        {"title": "Preprocessing", "source": f"{SRC}, Training Data / Preprocessing",
         "columns": ["layout", "context window", "total rows", "padded rows", "padded share", "chunked documents",
                     "token utilization"],
         "rows": [["pad short texts, chunk long ones (stride 128)", 256, 160745, 150971, 0.954, 7256, 0.340]],
         "variants": ["A"],
         "ours": {"total rows": "mix11.rows", "padded rows": "mix11.padded_rows", "padded share": "mix11.padded_share",
                  "chunked documents": "mix11.chunked_docs", "token utilization": "mix11.utilization"},
         "note": "lmlab: llmini_mix11's chunk layout at 256 / 128, its train and val rows"},
        *loss,
        {"title": "Overfitting gap (val loss - train loss)", "source": f"{SRC}, Ablation Study / Overfitting Gap",
         "columns": ["model", "epoch 1", "epoch 2", "epoch 3"], "rows": [[m, *g] for m, g in zip(MODELS, GAPS)],
         "variants": MODELS, "ours": {f"epoch {e}": f"epoch{e}.gap" for e in (1, 2, 3)}, "note": scale},
        {"title": "Compute", "source": f"{SRC}, Ablation Study / Compute",
         "columns": ["model", "training time (s)", "peak memory (MiB)", "final val perplexity"],
         "rows": [["A", 4188, 7752, 59.12], ["B", 3468, 7014, 73.77], ["C", 2670, 6359, 94.88]], "variants": MODELS,
         "ours": {"training time (s)": "wall_s", "peak memory (MiB)": "peak_mem_mb",
                  "final val perplexity": "epoch3.val_perplexity"},
         "note": "the seed's 69.8 / 57.8 / 44.5 min and 7.57 / 6.85 / 6.21 GB (read as GiB) of one T4/L4 GPU, "
                 "converted; lmlab's memory is the GPU's peak allocation on CUDA, the process's peak resident "
                 "memory on a CPU; " + scale},
        {"title": "Per-layer entropy and sparsity", "source": f"{SRC}, Attention Analysis / Per-Layer",
         "columns": ["layer", "entropy A", "sparsity A", "entropy B", "sparsity B", "entropy C", "sparsity C"],
         "rows": layer_rows(), "note": "lmlab's per-layer tables are the attention instrument's, one per model"},
        {"title": "First, middle and last layer", "source": f"{SRC}, Attention Analysis / Per-Layer (layers 1, "
                                                            f"L//2 + 1 and L of the table)",
         "columns": ["model", "entropy first", "entropy middle", "entropy last", "sparsity first", "sparsity middle",
                     "sparsity last"],
         "rows": [first_middle_last(m) for m in MODELS], "variants": MODELS,
         "ours": {f"{s} {w}": f"attention.{s}_{w}" for s in ("entropy", "sparsity") for w in ("first", "middle", "last")},
         "note": "entropy in nats over all allowed keys (its ceiling is ln(context)); " + scale},
        {"title": "Aggregate attention metrics", "source": f"{SRC}, Attention Analysis / Aggregate Metrics",
         "columns": ["model", "mean entropy", "mean sparsity", "sparsity min (layers)", "sparsity max (layers)",
                     "heads x layers"],
         "rows": [["A", 3.887, 0.604, 0.509, 0.777, 60], ["B", 3.766, 0.633, 0.512, 0.764, 45],
                  ["C", 3.843, 0.630, 0.505, 0.713, 32]], "variants": MODELS,
         "ours": {"mean entropy": "attention.mean_entropy", "mean sparsity": "attention.mean_sparsity",
                  "sparsity min (layers)": "layers.sparsity_layer_min",
                  "sparsity max (layers)": "layers.sparsity_layer_max", "heads x layers": "layers.heads_x_layers"},
         "note": "the seed's sparsity range is over its per-layer means (layers instrument); " + scale},
    ]
