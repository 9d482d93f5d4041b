"""The instruments a study can run on a variant's best checkpoint (lmlab.study.instruments), each
a thin call into what `lmlab analyze / probe / sample / eval --tasks / generate` do, writing into
the study's instruments/<run>/<name>/ folder and returning the metrics claims can read."""

from __future__ import annotations

from pathlib import Path

from lmlab.errors import UserError
from lmlab.study.instruments import NotApplicable, instrument

LAYER_STATS = ("entropy", "entropy_norm", "sparsity")


def _open(run_dir: Path, device: str = "cpu"):
    from lmlab.analysis.source import open_run

    try:
        return open_run(run_dir, "best", device)
    except UserError:  # a run without a best checkpoint (no evaluation): its last one
        return open_run(run_dir, "last", device)


def _attention(loaded) -> int:
    from lmlab.analysis.attention import attention_layers

    try:
        return attention_layers(loaded.model)
    except UserError as err:
        raise NotApplicable(str(err)) from None


def _layer_metrics(p: dict) -> list[str]:
    return ["mean_entropy", "mean_entropy_norm", "mean_sparsity", "sparsity_range", "entropy_sparsity_r",
            "layers", "heads", *(f"{s}_{where}" for s in LAYER_STATS for where in ("first", "middle", "last"))]


@instrument("analyze", {"windows": 32, "threshold": 1e-3, "roles": False}, _layer_metrics)
def analyze(run_dir: Path, folder: Path, p: dict) -> dict:
    """attention entropy and sparsity per layer and head (LLmini's tables), optionally head roles"""
    from lmlab.analysis.attention import format_table
    from lmlab.analysis.pipeline import attention_report, roles_report
    from lmlab.analysis.source import validation_windows

    loaded = _open(run_dir)
    _attention(loaded)
    wins = validation_windows(loaded, int(p["windows"]), 0)
    stats, files = attention_report(loaded, wins, folder, float(p["threshold"]))
    if p["roles"]:
        files += roles_report(loaded, wins, folder)[1]
    layers, per_head = stats["layers"], stats["per_head"]
    metrics = {"mean_entropy": stats["model"]["entropy"], "mean_entropy_norm": stats["model"]["entropy_norm"],
               "mean_sparsity": stats["model"]["sparsity"],
               "sparsity_range": float(max(max(r) for r in per_head["sparsity"])
                                       - min(min(r) for r in per_head["sparsity"])),
               "entropy_sparsity_r": stats["correlation"]["entropy_sparsity_pearson"],
               "layers": len(layers), "heads": len(per_head["entropy"][0])}
    for s in LAYER_STATS:
        for where, i in (("first", 0), ("middle", len(layers) // 2), ("last", len(layers) - 1)):
            metrics[f"{s}_{where}"] = layers[i][s]
    return {"metrics": metrics, "text": format_table(stats), "files": files, "table": layers}


def _task_metrics(p: dict) -> list[str]:
    return [t.strip() for t in str(p["tasks"]).split(",") if t.strip()]


@instrument("tasks", {"tasks": "hellaswag,boolq,arc_easy", "limit": 200}, _task_metrics)
def tasks(run_dir: Path, folder: Path, p: dict) -> dict:
    """zero-shot multiple-choice accuracy (lm-eval's scoring) on local task files"""
    from lmlab.eval.tasks.commands import format_table, run_tasks

    out = run_tasks(run_dir, str(p["tasks"]), int(p["limit"]) or None, checkpoint="best", device="cpu",
                    progress=False)
    metrics = {name: r.get("acc_norm", r.get("acc")) for name, r in out["tasks"].items()}
    return {"metrics": metrics, "text": format_table(out), "files": []}


def _probe_metrics(p: dict) -> list[str]:
    return ["analogy_rank"] if p["expect"] else []


@instrument("probe", {"neighbours": "", "analogy": "", "expect": "", "k": 10}, _probe_metrics)
def probe(run_dir: Path, folder: Path, p: dict) -> dict:
    """nearest neighbours of words and an analogy in the embedding (Mini GPT's probes)"""
    from lmlab.analysis import probe as P
    from lmlab.analysis.pipeline import probe_run

    words = [w.strip() for w in str(p["neighbours"]).split(",") if w.strip()]
    result = probe_run(run_dir, "best", words or None, p["analogy"] or None, None, int(p["k"]), folder,
                       str(p["expect"]) or None)
    text = []
    if "neighbours" in result:
        text.append(P.format_neighbours(result["neighbours"]))
    if "analogy" in result:
        text.append(P.format_analogy(result["analogy"]))
    metrics = {}
    if p["expect"] and "analogy" in result:
        rank = result["analogy"]["rank"]
        if rank is not None:
            metrics["analogy_rank"] = rank
        text.append(P.rank_note(str(p["expect"]), rank, len(result["analogy"]["answers"])))
    return {"metrics": metrics, "text": "\n".join(text), "files": result["files"]}


@instrument("sample", {"prompts": ["Once upon a time"], "temperatures": [0.5, 0.8, 1.0, 1.2], "top_ps": [1.0],
                       "top_ks": [0], "samples_per_prompt": 1, "max_new_tokens": 60},
            lambda p: ["distinct_2_mean", "repetition_mean"])
def sample(run_dir: Path, folder: Path, p: dict) -> dict:
    """the sampling table: every prompt x temperature x top-p x top-k, with diversity metrics"""
    from lmlab.analysis.pipeline import sample_run
    from lmlab.analysis.sampling import sampling_grid, study_markdown

    grid = sampling_grid(tuple(p["temperatures"]), tuple(p["top_ps"]), tuple(p["top_ks"]))
    got = sample_run(run_dir, list(p["prompts"]), grid, "best", int(p["samples_per_prompt"]),
                     int(p["max_new_tokens"]), "cpu", folder)
    rows = got["settings"]
    metrics = {"distinct_2_mean": sum(r["distinct_2"] for r in rows) / len(rows),
               "repetition_mean": sum(r["repetition"] for r in rows) / len(rows)}
    return {"metrics": metrics, "text": study_markdown(got), "files": got["files"]}


@instrument("sensitivity", {"prompts": [], "max_new_tokens": 40}, lambda p: ["mean_bleu"])
def sensitivity(run_dir: Path, folder: Path, p: dict) -> dict:
    """prompt sensitivity: greedy continuations of prompt variants and their pairwise BLEU"""
    from lmlab.analysis.pipeline import sensitivity_run

    got = sensitivity_run(run_dir, list(p["prompts"]), max_new_tokens=int(p["max_new_tokens"]), checkpoint="best",
                          device="cpu", out=folder)
    lines = [f"mean off-diagonal BLEU {got['mean_bleu']:.2f}"]
    lines += [f"{v!r} -> {c!r}" for v, c in zip(got.get("variants", []), got.get("continuations", []))]
    return {"metrics": {"mean_bleu": got["mean_bleu"]}, "text": "\n".join(lines), "files": got["files"]}


def _generate_text(loaded, prompt: str, p: dict) -> str:
    import torch

    from lmlab.generate import Sampling, generate, never_sampled

    ids = loaded.tokenizer.encode(prompt)[-loaded.cfg.model.context_len:]
    sampling = Sampling(float(p["temperature"]), int(p["top_k"]), float(p["top_p"]),
                        float(p.get("repetition_penalty", 1.0)), int(p.get("no_repeat_ngram", 0)))
    out = generate(loaded.model, torch.tensor([ids]), int(p["max_new_tokens"]), sampling, seed=0,
                   vocab_size=loaded.tokenizer.vocab_size, never=never_sampled(loaded.tokenizer))
    return loaded.tokenizer.decode(out[0, len(ids):].tolist())


GENERATE = {"prompt": "Once upon a time", "max_new_tokens": 60, "temperature": 0.0, "top_k": 0, "top_p": 1.0,
            "repetition_penalty": 1.0, "no_repeat_ngram": 0}


@instrument("generate", GENERATE)
def generate_example(run_dir: Path, folder: Path, p: dict) -> dict:
    """one generation example (greedy by default), with the repetition settings given"""
    text = _generate_text(_open(run_dir), str(p["prompt"]), p)
    return {"metrics": {}, "text": f"{p['prompt']}{text}", "files": []}


@instrument("ablate", {"heads": "0.0", "windows": 32, **GENERATE}, lambda p: ["loss", "ablated_loss", "delta_loss"])
def ablate(run_dir: Path, folder: Path, p: dict) -> dict:
    """zero-ablate heads (LAYER.HEAD list): the change in val loss and the generated text with and without"""
    from lmlab.analysis import ablation
    from lmlab.analysis.source import validation_windows

    loaded = _open(run_dir)
    n_layer = _attention(loaded)
    heads = ablation.parse_heads(str(p["heads"]), n_layer, loaded.model.config.n_head, "heads")
    wins = validation_windows(loaded, int(p["windows"]), 0)
    result = ablation.ablation_loss(loaded.model, wins, heads, "zero")
    before = _generate_text(loaded, str(p["prompt"]), p)
    with ablation.ablate_heads(loaded.model, heads, "zero"):
        after = _generate_text(loaded, str(p["prompt"]), p)
    metrics = {"loss": result["base_loss"], "ablated_loss": result["loss"], "delta_loss": result["delta_loss"]}
    text = (f"heads {p['heads']}: val loss {metrics['loss']:.4f} -> {metrics['ablated_loss']:.4f}\n"
            f"intact:  {p['prompt']}{before}\nablated: {p['prompt']}{after}")
    return {"metrics": metrics, "text": text, "files": []}


@instrument("attention_map", {"prompt": "Once upon a time there was a little girl", "layer": 0, "head": 0, "k": 3})
def attention_map(run_dir: Path, folder: Path, p: dict) -> dict:
    """one head's attention map on a prompt and its top attended tokens (negative index: from the end)"""
    from lmlab.analysis.pipeline import maps_report

    loaded = _open(run_dir)
    n_layer = _attention(loaded)
    layer = int(p["layer"]) % n_layer
    head = int(p["head"]) % loaded.model.config.n_head
    result, files = maps_report(loaded, folder, str(p["prompt"]), layer, head, int(p["k"]))
    return {"metrics": {}, "text": result["text"], "files": files}

