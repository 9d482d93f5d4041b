"""Head ablation through `blocks.{i}.attn.hook_z` (per-head outputs before the output projection):
zero ablation sets a head's output to 0, mean ablation to its mean over the validation windows
(per layer, head and channel, averaged over positions). The model's weights and code are never
touched: the hooks are attached for one `with` block and removed after it.
"""

from __future__ import annotations

import contextlib
import re

import torch
import torch.nn.functional as F

from lmlab.analysis.attention import attention_layers, body
from lmlab.errors import UserError
from lmlab.model.hooks import hooks
from lmlab.progress import track

HEAD = re.compile(r"^\s*(\d+)\.(\d+)\s*$")
MODES = ("zero", "mean")


def parse_heads(text: str, n_layer: int, n_head: int, flag: str = "--ablate") -> list[tuple[int, int]]:
    """"0.1,2.3" -> [(0, 1), (2, 3)] (layer.head); one-line errors for malformed or out-of-range items."""
    heads = []
    for item in str(text).split(","):
        m = HEAD.match(item)
        if not m:
            raise UserError(f"{flag} {text!r}: {item.strip()!r} is not LAYER.HEAD; expected e.g. 0.1,2.3")
        layer, head = int(m.group(1)), int(m.group(2))
        if layer >= n_layer or head >= n_head:
            raise UserError(f"{flag} {item.strip()}: the model has layers 0..{n_layer - 1} and heads "
                            f"0..{n_head - 1}")
        heads.append((layer, head))
    return heads


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is not valid; expected zero or mean")


@contextlib.contextmanager
def ablate_heads(model, heads: list[tuple[int, int]], mode: str = "zero", means: torch.Tensor | None = None):
    """Inside the block, the listed heads output zeros (or `means[layer, head]`, shape (L, H, Dh))."""
    _check_mode(mode)
    if mode == "mean" and means is None:
        raise ValueError("mean ablation needs the heads' mean outputs (head_means)")
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make(layer: int, chosen: list[int]):
        def edit(z, _name):  # z (B, H, T, Dh)
            z = z.clone()
            fill = 0.0 if mode == "zero" else means[layer, chosen].to(z)[None, :, None, :]  # (1, k, 1, Dh)
            z[:, chosen] = fill
            return z
        return edit

    with hooks(model, {f"blocks.{layer}.attn.hook_z": make(layer, chosen) for layer, chosen in by_layer.items()}):
        yield


@torch.no_grad()
def head_means(model, windows, batch_size: int = 8) -> torch.Tensor:
    """(L, H, Dh) mean of each head's output over the real positions of `windows`."""
    n_layer, cfg = attention_layers(model), model.config
    total = torch.zeros(n_layer, cfg.n_head, cfg.d_head, dtype=torch.float64)
    count = 0.0
    current = {}

    def collect(z, name):
        real = current["real"].to(z.device)[:, None, :, None]  # (B, 1, T, 1)
        total[int(name.split(".")[1])] += (z.double() * real).sum((0, 2)).cpu()

    device = next(model.parameters()).device
    with hooks(model, {"blocks.*.attn.hook_z": collect}):
        for w in windows.batches(batch_size):
            current["real"] = w.real()
            count += float(w.real().sum())
            body(model)(w.x.to(device))
    return (total / max(count, 1.0)).float()


@torch.no_grad()
def windows_loss(model, windows, batch_size: int = 8) -> float:
    """Mean next-token cross-entropy (nats) over the scored targets of `windows`."""
    device = next(model.parameters()).device
    nats, count = 0.0, 0.0
    for w in windows.batches(batch_size):
        logits, _ = model(w.x.to(device))
        per = F.cross_entropy(logits.float().flatten(0, 1), w.y.to(device).flatten(), reduction="none")
        m = w.scored().flatten().to(device)
        nats += float(per[m].sum())
        count += float(m.sum())
    return nats / max(count, 1.0)


def ablation_loss(model, windows, heads, mode: str = "zero", means=None, batch_size: int = 8) -> dict:
    """Validation loss with `heads` ablated, against the intact model."""
    _check_mode(mode)
    if mode == "mean" and means is None:
        means = head_means(model, windows, batch_size)
    base = windows_loss(model, windows, batch_size)
    with ablate_heads(model, heads, mode, means):
        loss = windows_loss(model, windows, batch_size)
    return {"mode": mode, "heads": [f"{l}.{h}" for l, h in heads], "base_loss": base, "loss": loss,
            "delta_loss": loss - base, "windows": len(windows)}


def ablate_each(model, windows, mode: str = "zero", batch_size: int = 8, progress: bool = False) -> dict:
    """Δ validation loss of ablating each head alone: (L, H)."""
    _check_mode(mode)
    n_layer, n_head = attention_layers(model), model.config.n_head
    means = head_means(model, windows, batch_size) if mode == "mean" else None
    base = windows_loss(model, windows, batch_size)
    delta = torch.zeros(n_layer, n_head)
    cells = [(l, h) for l in range(n_layer) for h in range(n_head)]
    if progress:
        cells = track(cells, desc="ablate", unit="head")
    for layer, head in cells:
        with ablate_heads(model, [(layer, head)], mode, means):
            delta[layer, head] = windows_loss(model, windows, batch_size) - base
    return {"mode": mode, "base_loss": base, "windows": len(windows), "delta_loss": delta.tolist()}


def ablation_rows(result: dict) -> list[dict]:
    d = result["delta_loss"]
    return [{"layer": i, "head": h, "delta_loss": d[i][h]} for i in range(len(d)) for h in range(len(d[0]))]


def format_each(result: dict) -> str:
    d = torch.tensor(result["delta_loss"])
    header = "layer " + " ".join(f"{'H' + str(h):>7}" for h in range(d.size(1)))
    lines = [f"Δ val loss per head ({result['mode']} ablation; base {result['base_loss']:.4f} nats)", header]
    lines += [f"{i:>5} " + " ".join(f"{v:>+7.4f}" for v in row.tolist()) for i, row in enumerate(d)]
    return "\n".join(lines)


def ablate_heads_text(model, text: str | None):
    """`generate --ablate-heads 1.1,1.2`: zero-ablation of the listed heads (a no-op for None; an
    empty list is refused like any malformed one)."""
    if text is None:
        return contextlib.nullcontext()
    return ablate_heads(model, parse_heads(text, attention_layers(model), model.config.n_head, "--ablate-heads"))
