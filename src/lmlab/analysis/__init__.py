"""Look inside a trained model, from its run directory: attention statistics per layer and head,
attention maps, head roles, head ablation, embedding probes, sampling and prompt-sensitivity
studies, and all of it across checkpoints. Built on the model's hook points
(`blocks.{i}.attn.hook_pattern`, `hook_z`, ...): the model's code and weights are never edited.

    from lmlab.analysis import open_run, validation_windows, attention_stats, head_roles
    loaded = open_run("runs/shakespeare_char", "best")
    stats = attention_stats(loaded.model, validation_windows(loaded, 64))
"""

from lmlab.analysis.ablation import ablate_each, ablate_heads, ablation_loss, head_means, windows_loss
from lmlab.analysis.attention import attention_stats, format_table
from lmlab.analysis.heads import head_roles, repeated_tokens
from lmlab.analysis.maps import attention_map
from lmlab.analysis.pipeline import analyze_run, probe_run, sample_run, sensitivity_run
from lmlab.analysis.probe import analogy, embedding_matrix, neighbours, pca
from lmlab.analysis.sampling import bleu_matrix, prompt_sensitivity, sampling_study
from lmlab.analysis.source import Windows, kept_steps, open_run, sample_windows, validation_windows
from lmlab.analysis.trajectory import across_checkpoints

__all__ = ["ablate_each", "ablate_heads", "ablation_loss", "head_means", "windows_loss", "attention_stats",
           "format_table", "head_roles", "repeated_tokens", "attention_map", "analyze_run", "probe_run",
           "sample_run", "sensitivity_run", "analogy", "embedding_matrix", "neighbours", "pca", "bleu_matrix",
           "prompt_sensitivity", "sampling_study", "Windows", "kept_steps", "open_run", "sample_windows",
           "validation_windows", "across_checkpoints"]
