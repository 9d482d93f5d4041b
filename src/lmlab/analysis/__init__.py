"""Look inside a trained model, from its run directory: attention statistics per layer and head,
attention maps, head roles, head ablation, embedding probes, sampling and prompt-sensitivity
studies, and all of it across checkpoints. Built on the model's hook points
(`blocks.{i}.attn.hook_pattern`, `hook_z`, ...): the model's code and weights are never edited.

    from lmlab.analysis import open_run, validation_windows, attention_stats, head_roles
    loaded = open_run("runs/shakespeare_char", "best")
    stats = attention_stats(loaded.model, validation_windows(loaded, 64))

Names load on first use (lmlab.lazy), so the CLI's parser does not import torch.
"""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {
    "ablate_each": "ablation", "ablate_heads": "ablation", "ablation_loss": "ablation", "head_means":
    "ablation", "windows_loss": "ablation", "attention_stats": "attention", "format_table": "attention",
    "head_roles": "heads", "repeated_tokens": "heads", "attention_map": "maps", "analyze_run": "pipeline",
    "probe_run": "pipeline", "sample_run": "pipeline", "sensitivity_run": "pipeline", "analogy": "probe",
    "embedding_matrix": "probe", "neighbours": "probe", "pca": "probe", "bleu_matrix": "sampling",
    "prompt_sensitivity": "sampling", "sampling_study": "sampling", "Windows": "source", "kept_steps":
    "source", "open_run": "source", "sample_windows": "source", "validation_windows": "source",
    "across_checkpoints": "trajectory"
})
