"""Run directory -> report.md and loss.png (matplotlib when installed; the report says so if not)."""

from __future__ import annotations

from pathlib import Path

from lmlab.config import load_config
from lmlab.io import atomic_write_text
from lmlab.runs import RunDir


def loss_curve_png(run: RunDir, path: Path) -> bool:
    """Train loss (and its running mean) and val loss against steps. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    train, evals = run.read_metrics("train"), run.read_metrics("eval")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        steps, losses = [r["step"] for r in train], [r["loss"] for r in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(steps, running_mean(losses, max(len(losses) // 50, 1)), color="tab:blue", label="train")
    if evals:
        ax.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", color="tab:orange", label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(run.root.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def write_report(run_dir: str | Path) -> Path:
    run = RunDir(run_dir)
    cfg = load_config(run.config)
    train, evals = run.read_metrics("train"), run.read_metrics("eval")
    has_png = loss_curve_png(run, run.root / "loss.png")
    lines = [f"# {cfg.name}", "", f"Run directory: `{run.root}`", ""]
    m = cfg.model
    lines += [f"- model: {m.arch}, {m.n_layer} layers x {m.d_model} wide, {m.n_head} heads, "
              f"context {m.context_len}, vocabulary {m.vocab_size} ({cfg.tokenizer.kind})",
              f"- data: {cfg.data.source}{' ' + cfg.data.path if cfg.data.path else ''}",
              f"- training: {cfg.train.max_steps} steps x {cfg.train.batch_size * cfg.train.grad_accum} "
              f"sequences, lr {cfg.train.lr} ({cfg.train.schedule}), precision {cfg.train.precision}"]
    if train:
        last = train[-1]
        lines.append(f"- ran {last['step']} steps in {last['elapsed_s']:.1f} s "
                     f"({last['tokens'] / max(last['train_time_s'], 1e-9):,.0f} training tokens/s)")
    if evals:
        lines += ["", "## Validation", "", "| step | loss | perplexity | accuracy | bits/byte |", "|---|---|---|---|---|"]
        lines += [f"| {r['step']} | {r['val_loss']:.4f} | {r['val_perplexity']:.2f} | {r['val_accuracy']:.3f} "
                  f"| {r['val_bits_per_byte']:.3f} |" for r in evals]
    lines += ["", "## Loss curve", ""]
    lines.append("![loss curve](loss.png)" if has_png else "(install matplotlib for the PNG loss curve: "
                 "`pip install 'lmlab[plot]'`)")
    for name in ("before", "after"):
        sample = run.samples / f"{name}.txt"
        if sample.exists():
            lines += ["", f"## Sample {name} training", "", "```", sample.read_text(encoding="utf-8").rstrip(), "```"]
    atomic_write_text(run.report, "\n".join(lines) + "\n")
    return run.report
