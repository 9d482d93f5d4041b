"""The bench configurations (nanoGPT's hyperparameter names) and how each trainer's command line is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any


# =====================================================================================
# BENCH CONFIGS. Hyperparameter names are nanoGPT's (they are the canonical names here);
# lmlab receives them through LMLAB_FLAGS below.
# =====================================================================================

# Shared by every config: nanoGPT's config/train_shakespeare_char.py + train.py defaults.
NANOGPT_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-3,   # config/train_shakespeare_char.py
    "min_lr": 1e-4,          # config/train_shakespeare_char.py
    "warmup_iters": 100,     # config/train_shakespeare_char.py
    "beta1": 0.9,            # train.py default
    "beta2": 0.99,           # config/train_shakespeare_char.py (train.py default is 0.95)
    "weight_decay": 0.1,     # train.py default (2-D params only, incl. the tied embedding)
    "grad_clip": 1.0,        # train.py default
    "bias": False,           # train.py default (model.py's GPTConfig default True is overridden)
    "seed": 1337,            # train.py: torch.manual_seed(1337 + seed_offset)
}

CONFIGS: dict[str, dict[str, Any]] = {
    # nanoGPT README's CPU recipe ("macbook"), full schedule: lr_decay_iters = max_iters.
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                 max_iters=2000, eval_interval=250, eval_iters=200),
    # the shakespeare_char model size (6x384, ctx 256) at batch 8: throughput only.
    # eval_interval = max_iters -> evals only at step 0 and at the end (eval_iters small).
    "6x384": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8, dropout=0.0,
                  max_iters=30, eval_interval=30, eval_iters=10),
    # nanoGPT = the tiny recipe; lmlab = its own preset (--lmlab-preset). Criterion: lmlab
    # reaches nanoGPT's final val loss in at most half of nanoGPT's wall time.
    # LLmini-C's shape (8 x 256, 4 heads, ctx 256, batch 32 x 2) with the GPT-2 vocabulary: nanoGPT
    # pads it to 50,304 itself (its default without a meta.pkl), lmlab pads 50,257 to 50,304 (vocab_pad).
    # The token ids stay characters (< 65): throughput and memory do not depend on their values.
    "llmini_c": dict(n_layer=8, n_head=4, n_embd=256, block_size=256, batch_size=32, grad_accum=2, dropout=0.0,
                     vocab_size=50257, max_iters=6, eval_interval=6, eval_iters=1),
    "speedrun": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                     max_iters=2000, eval_interval=250, eval_iters=200),
}
DEFAULT_SPEEDRUN_PRESET = "shakespeare_speedrun"  # lmlab preset name

# =====================================================================================
# >>> LMLAB CLI MAPPING — adjust HERE when lmlab's command line / config fields change. <<<
# =====================================================================================
LMLAB_TASK = "shakespeare_char"  # positional preset/task of `python -m lmlab train`


def lmlab_hparam_flags(hp: dict[str, Any]) -> list[str]:
    """nanoGPT-named hyperparameters -> lmlab `--section.field=value` overrides.

    Returns the full list of overrides for a matched-hyperparameter run. Anything lmlab
    does not (yet) support should be removed here, not silently elsewhere.
    """
    steps = hp["max_iters"]
    # eval size: nanoGPT scores eval_iters random batches of batch_size x block_size tokens
    # per split; lmlab scores eval.max_tokens validation tokens.
    eval_tokens = hp["eval_iters"] * hp["batch_size"] * hp["block_size"]
    flags = {
        "model.n_layer": hp["n_layer"],
        "model.n_head": hp["n_head"],
        "model.d_model": hp["n_embd"],
        "model.context_len": hp["block_size"],
        "model.dropout": hp["dropout"],
        "model.bias": hp["bias"],
        "model.tie_embeddings": True,
        "model.norm": "layernorm",
        "model.norm_eps": 1e-5,
        "model.mlp": "gelu",
        "model.position": "learned",
        "model.init": "gpt2",
        "train.max_steps": steps,
        "train.batch_size": hp["batch_size"],
        "train.grad_accum": hp.get("grad_accum", 1),
        "train.lr": hp["learning_rate"],
        "train.min_lr_ratio": hp["min_lr"] / hp["learning_rate"],
        "train.schedule": "cosine",
        "train.warmup_steps": hp["warmup_iters"],
        "train.decay_steps": hp.get("lr_decay_iters", steps),
        "train.beta1": hp["beta1"],
        "train.beta2": hp["beta2"],
        "train.weight_decay": hp["weight_decay"],
        "train.grad_clip": hp["grad_clip"],
        "train.seed": hp["seed"],
        "eval.every": hp["eval_interval"],
        "eval.max_tokens": eval_tokens,
        "eval.batch_size": hp["batch_size"],
        **({"model.vocab_size": hp["vocab_size"]} if "vocab_size" in hp else {}),
    }
    return [f"--{k}={_lmlab_value(v)}" for k, v in flags.items()]


def lmlab_common_flags(precision: str = "auto") -> list[str]:
    """Overrides passed in every lmlab run, preset runs included (device, precision, logging)."""
    return ["--train.device=cpu", f"--train.precision={precision}", "--train.compile=false",
            "--train.log_every=1", "--train.progress=false"]


def lmlab_command(python: str, task: str, data: Path, run_dir: Path,
                  overrides: list[str]) -> list[str]:
    return [python, "-m", "lmlab", "train", task, "--data", str(data), "--run-dir", str(run_dir),
            *overrides]


def _lmlab_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


LMLAB_METRICS_FILE = "metrics.jsonl"  # inside --run-dir
# =====================================================================================


NANOGPT_WIDE_DATASET = "shakespeare_char_wide"  # the char data without meta.pkl: nanoGPT's vocabulary is 50,304


def tokens_per_step(hp: dict[str, Any]) -> int:
    return hp["batch_size"] * hp["block_size"] * hp.get("grad_accum", 1)


def nanogpt_command(python: str, hp: dict[str, Any], out_dir: Path, dataset: str = "shakespeare_char") -> list[str]:
    """nanoGPT's train.py with the shakespeare_char config and our overrides.

    nanoGPT's configurator asserts that the literal's type equals the default's type, so
    floats must be written as floats (0.0, not 0) and ints as ints.
    """
    steps = hp["max_iters"]
    over = {
        "device": "cpu", "compile": False, "dtype": "float32", "out_dir": str(out_dir),
        "log_interval": 1, "eval_interval": hp["eval_interval"], "eval_iters": hp["eval_iters"],
        "n_layer": hp["n_layer"], "n_head": hp["n_head"], "n_embd": hp["n_embd"],
        "block_size": hp["block_size"], "batch_size": hp["batch_size"],
        "dropout": float(hp["dropout"]), "bias": bool(hp["bias"]),
        "max_iters": steps, "lr_decay_iters": hp.get("lr_decay_iters", steps),
        "learning_rate": float(hp["learning_rate"]), "min_lr": float(hp["min_lr"]),
        "warmup_iters": hp["warmup_iters"], "beta1": float(hp["beta1"]),
        "beta2": float(hp["beta2"]), "weight_decay": float(hp["weight_decay"]),
        "grad_clip": float(hp["grad_clip"]), "gradient_accumulation_steps": hp.get("grad_accum", 1),
        "dataset": NANOGPT_WIDE_DATASET if "vocab_size" in hp else dataset,
    }
    args = [f"--{k}={v!r}" if isinstance(v, float) else f"--{k}={v}" for k, v in over.items()]
    return [python, "train.py", "config/train_shakespeare_char.py", *args]
