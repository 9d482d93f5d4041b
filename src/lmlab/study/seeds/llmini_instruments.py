"""The two instruments LLmini's study adds to the general kinds (lmlab.study.instrument_kinds):

data_stats    its "Training Data" and "Preprocessing" tables: samples, tokens, % tokens and average
              tokens per sample for each source, then rows, padded rows, chunked documents and token
              utilization. It reads what training already wrote (RUN/data/stats.json, made by
              lmlab.data.stats), or, with `preset`, prepares that preset's corpus with the preset's own
              tokenizer and window (the seed's 11-source mixture on GPT-2 ids at 256/128, whatever the
              run trained on), so the seed's numbers have a twin on the same scale.
layer_range   its "Aggregate Metrics" columns the `analyze` instrument does not report: the range of the
              per-layer mean sparsity (the seed's "sparsity range" is over layers, analyze's
              sparsity_range over heads), the peak layer, and heads x layers. It reads the per-layer
              table that `analyze` (named `source`) wrote for the same run, so it runs after it.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.study.instruments import NotApplicable, instrument

SOURCE_KEYS = ("samples", "tokens", "pct_tokens", "avg_tokens")
TOTAL_KEYS = ("samples", "tokens", "avg_tokens", "sources", "rows", "padded_rows", "padded_share", "chunked_docs",
              "utilization", "padding_overhead", "vocab_coverage")


def _names(text) -> list[str]:
    return [s.strip() for s in str(text).split(",") if s.strip()]


def _data_metrics(p: dict) -> list[str]:
    return [*TOTAL_KEYS, *(f"{name}.{k}" for name in _names(p["sources"]) for k in SOURCE_KEYS)]


@instrument("data_stats", {"preset": "", "sources": ""}, _data_metrics)
def data_stats(run_dir: Path, folder: Path, p: dict) -> dict:
    """the corpus statistics table (LLmini's): per source samples, tokens, % tokens, avg length; padding, utilization"""
    from lmlab.data.stats import format_table

    stats, files = _preset_stats(str(p["preset"]), folder) if p["preset"] else (_run_stats(run_dir), [])
    return {"metrics": stats_metrics(stats), "text": format_table(stats), "files": files}


def _run_stats(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "data" / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotApplicable(f"{run_dir.name} has no data/stats.json (its data statistics)") from None


def _preset_stats(name: str, folder: Path) -> tuple[dict, list[Path]]:
    from lmlab.data.prepare import prepare
    from lmlab.data.stats import write_stats
    from lmlab.presets.resolve import resolve_config

    prepared = prepare(resolve_config(name, None, {}), progress=False)  # the token cache keeps it for the next run
    return prepared.stats, write_stats(prepared, folder, plot=False)


def stats_metrics(stats: dict) -> dict[str, float]:
    """The corpus statistics (lmlab.data.stats.corpus_stats) as flat metrics: totals, the layout's
    rows and utilization, and "<source>.<key>" for each source."""
    total, lay = stats["total"], stats["layout"]
    rows = lay.get("rows") or 0
    out = {"samples": total["samples"], "tokens": total["tokens"], "avg_tokens": total["avg_tokens"],
           "sources": len(stats["sources"]), "rows": rows, "padded_rows": lay.get("padded_rows", 0),
           "padded_share": lay.get("padded_rows", 0) / rows if rows else 0.0,
           "chunked_docs": lay.get("chunked_docs", 0), "utilization": lay["utilization"],
           "padding_overhead": lay.get("padding_overhead", 1.0 - lay["utilization"]),
           "vocab_coverage": stats["tokenizer"]["vocab_coverage"]}
    for s in stats["sources"]:
        out.update({f"{s['name']}.{k}": s[k] for k in SOURCE_KEYS if k in s})
    return out


LAYER_KEYS = ("sparsity_layer_min", "sparsity_layer_max", "sparsity_layer_range", "sparsity_peak_layer",
              "entropy_layer_min", "entropy_layer_max", "entropy_low_layer", "heads_x_layers")


@instrument("layer_range", {"source": "attention"}, lambda p: list(LAYER_KEYS))
def layer_range(run_dir: Path, folder: Path, p: dict) -> dict:
    """per-layer ranges of the analyze instrument's table: sparsity min-max over layers, peak layer, heads x layers"""
    table = folder.parent / str(p["source"]) / "attention.json"
    try:
        stats = json.loads(table.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotApplicable(f"no attention table from the analyze instrument {p['source']!r} for this run "
                            f"(list it before layer_range)") from None
    metrics = layer_metrics(stats)
    text = (f"sparsity over layers {metrics['sparsity_layer_min']:.3f} - {metrics['sparsity_layer_max']:.3f} "
            f"(peak at layer {metrics['sparsity_peak_layer']:.0f}, counted from 1); entropy over layers "
            f"{metrics['entropy_layer_min']:.3f} - {metrics['entropy_layer_max']:.3f} (lowest at layer "
            f"{metrics['entropy_low_layer']:.0f}); {metrics['heads_x_layers']:.0f} heads x layers")
    return {"metrics": metrics, "text": text, "files": []}


def layer_metrics(stats: dict) -> dict[str, float]:
    """From lmlab.analysis.attention's result: ranges of the per-layer means (layers counted from 1)."""
    sparsity = [row["sparsity"] for row in stats["layers"]]
    entropy = [row["entropy"] for row in stats["layers"]]
    return {"sparsity_layer_min": min(sparsity), "sparsity_layer_max": max(sparsity),
            "sparsity_layer_range": max(sparsity) - min(sparsity),
            "sparsity_peak_layer": sparsity.index(max(sparsity)) + 1,
            "entropy_layer_min": min(entropy), "entropy_layer_max": max(entropy),
            "entropy_low_layer": entropy.index(min(entropy)) + 1,
            "heads_x_layers": sum(len(row) for row in stats["per_head"]["entropy"])}
