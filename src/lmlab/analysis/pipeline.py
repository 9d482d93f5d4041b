"""Run directory in, tables and figures out: what `lmlab analyze / probe / sample` do, as plain
functions (each returns its results and the files it wrote). Figures come from `plots`."""

from __future__ import annotations

from pathlib import Path

import torch

from lmlab.analysis import ablation, attention, heads, maps, output, probe, sampling, trajectory
from lmlab.figures import analysis as plots
from lmlab.analysis.source import open_run, validation_windows
from lmlab.io import atomic_write_text


def _token_ids(windows) -> torch.Tensor:
    """Ids that occur in the real validation tokens: the alphabet for head-role probes."""
    return torch.unique(windows.x[windows.real()])


def attention_report(loaded, windows, out: Path, threshold: float) -> tuple[dict, list[Path]]:
    stats = attention.attention_stats(loaded.model, windows, threshold, progress=True)
    stats.update({"checkpoint_step": loaded.meta.get("step"), "windows": len(windows)})
    files = output.write_table(out, "attention", stats, attention.head_rows(stats))
    files.append(plots.head_grids(stats["per_head"], ["entropy", "entropy_norm", "sparsity"],
                                  ["entropy (nats)", "entropy / log #keys", f"sparsity (< {threshold:g})"],
                                  out / "attention.png", f"{loaded.run.root.name}: attention per head"))
    return stats, files


def roles_report(loaded, windows, out: Path) -> tuple[dict, list[Path]]:
    roles = heads.head_roles(loaded.model, token_ids=_token_ids(windows))
    files = output.write_table(out, "heads", roles, heads.head_rows(roles))
    files.append(plots.head_grids(roles["scores"], list(heads.ROLES), [r.replace("_", " ") for r in heads.ROLES],
                                  out / "heads.png", "head-role scores (mean attention weight)", (0.0, 1.0)))
    return roles, files


def maps_report(loaded, out: Path, prompt: str, layer=None, head=None, k: int = 3) -> tuple[dict, list[Path]]:
    result = maps.attention_map(loaded.model, loaded.tokenizer, prompt, layer, head, k)
    folder = out / "maps"
    files = [plots.attention_maps(result["patterns"], result["tokens"], l, result["heads"],
                                  folder / (f"layer{l}.png" if head is None else f"layer{l}_head{head}.png"), prompt)
             for l in result["layers"]]
    text = "\n\n".join(maps.format_top(result["top"][f"{l}.{h}"], l, h) for l in result["layers"] for h in result["heads"])
    atomic_write_text(folder / "top_attended.txt", text + "\n")
    saved = {k2: v for k2, v in result.items() if k2 != "patterns"}
    files += [folder / "top_attended.txt", output.write_json(folder / "top_attended.json", saved)]
    return {**saved, "text": text}, files


def ablation_report(loaded, windows, out: Path, heads_text: str | None, each: bool, mode: str):
    model = loaded.model
    n_layer = attention.attention_layers(model)
    if each:
        result = ablation.ablate_each(model, windows, mode, progress=True)
        files = output.write_table(out, "ablation", result, ablation.ablation_rows(result))
        files.append(plots.delta_grid(result["delta_loss"], out / "ablation.png",
                                      f"Δ val loss when one head is {mode}-ablated"))
        return result, files
    chosen = ablation.parse_heads(heads_text, n_layer, model.config.n_head)
    result = ablation.ablation_loss(model, windows, chosen, mode)
    row = {k: (",".join(v) if isinstance(v, list) else v) for k, v in result.items()}
    return result, output.write_table(out, "ablation", result, [row])


def checkpoints_report(run_dir, windows, out: Path, threshold: float, device: str):
    result = trajectory.across_checkpoints(run_dir, windows, _token_ids(windows), threshold, device)
    files = output.write_table(out, "checkpoints", result, trajectory.trajectory_rows(result))
    steps = result["steps"]
    recs = result["records"]
    files.append(plots.trajectories(steps, {r: [x["max_role"][r] for x in recs] for r in heads.ROLES},
                                    out / "checkpoints_roles.png", "best head per role across training",
                                    "score (mean attention weight)"))
    files.append(plots.trajectories(steps, {f"layer {i}": [x["layers"][i]["entropy_norm"] for x in recs]
                                            for i in range(len(recs[0]["layers"]))},
                                    out / "checkpoints_entropy.png", "attention entropy across training",
                                    "entropy / log #keys"))
    files.append(plots.trajectories(steps, {"loss on the windows": [x["loss"] for x in recs]},
                                    out / "checkpoints_loss.png", "loss across training", "nats / token"))
    return result, files


def analyze_run(run_dir, checkpoint: str = "last", windows: int = 64, threshold: float = 1e-3, seed: int = 0,
                out: str | Path | None = None, device: str = "auto") -> dict:
    """The default analysis of a run: attention statistics and head roles, written under analysis/."""
    loaded = open_run(run_dir, checkpoint, device)
    attention.attention_layers(loaded.model)
    wins = validation_windows(loaded, windows, seed)
    folder = Path(out) if out else loaded.run.analysis
    stats, files = attention_report(loaded, wins, folder, threshold)
    roles, more = roles_report(loaded, wins, folder)
    return {"attention": stats, "heads": roles, "files": files + more}


def probe_run(run_dir, checkpoint: str = "last", neighbours: list[str] | None = None, analogy: str | None = None,
              pca: list[str] | None = None, k: int = 10, out: str | Path | None = None,
              expect: str | None = None) -> dict:
    """Embedding probes of a run, written under analysis/probe/; with `expect`, the analogy's result
    holds that word and its rank among the answers (probe.answer_rank)."""
    loaded = open_run(run_dir, checkpoint, "cpu")
    emb = probe.embedding_matrix(loaded.model, loaded.tokenizer.vocab_size)
    folder = (Path(out) if out else loaded.run.analysis) / "probe"
    result, files = {}, []
    if neighbours:
        result["neighbours"] = probe.neighbours(emb, loaded.tokenizer, neighbours, k)
    if analogy:
        result["analogy"] = probe.analogy(emb, loaded.tokenizer, analogy, k)
        if expect:
            result["analogy"].update(expect=expect, rank=probe.answer_rank(result["analogy"]["answers"], expect,
                                                                          loaded.tokenizer))
    if pca:
        result["pca"] = probe.pca(emb, loaded.tokenizer, pca)
    for name, value in result.items():
        files.append(output.write_json(folder / f"{name}.json", value))
    if pca:
        files.append(plots.pca_words(pca, result["pca"]["coords"], folder / "pca.png",
                                     result["pca"]["explained_variance"]))
    result["files"] = files
    return result


def sample_run(run_dir, prompts: list[str], settings: list | None = None, checkpoint: str = "last", seeds: int = 1,
               max_new_tokens: int = 100, device: str = "auto", out: str | Path | None = None) -> dict:
    """The sampling table of a run (`settings`: lmlab.generate.Sampling rows, default
    sampling.sampling_grid()), written to samples/sampling.{json,csv,md}."""
    loaded = open_run(run_dir, checkpoint, device)
    study = sampling.sampling_study(loaded.model, loaded.tokenizer, prompts, settings, seeds, max_new_tokens)
    folder = Path(out) if out else loaded.run.samples
    rows = [{k: v for k, v in r.items() if k != "samples"} for r in study["settings"]]
    files = output.write_table(folder, "sampling", study, rows)
    atomic_write_text(folder / "sampling.md", sampling.study_markdown(study))
    study["files"] = files + [folder / "sampling.md"]
    return study


def sensitivity_run(run_dir, variants: list[str], sampler=None, seed: int = 0, max_new_tokens: int = 50,
                    checkpoint: str = "last", device: str = "auto", out: str | Path | None = None) -> dict:
    """Prompt sensitivity of a run (greedy unless `sampler`, a lmlab.generate.Sampling, says
    otherwise): samples/prompt_sensitivity.json and its BLEU heatmap."""
    loaded = open_run(run_dir, checkpoint, device)
    result = sampling.prompt_sensitivity(loaded.model, loaded.tokenizer, variants, sampler, seed, max_new_tokens)
    folder = Path(out) if out else loaded.run.samples
    result["files"] = [output.write_json(folder / "prompt_sensitivity.json", result),
                       plots.bleu_heatmap(result["bleu"], folder / "prompt_sensitivity.png", result["mean_bleu"])]
    return result
