"""Predicted peak memory of a training run, printed at its start and checked before it starts.

The peak of a step is reached at the start of backward, when everything below is alive at once:

  weights      4 bytes per parameter (fp32 master weights, padded vocabulary rows included)
  gradients    4 bytes per parameter when micro-batches accumulate; with one micro-batch per step only
               what exceeds the activations and head buffers, which backward frees as they appear
  optimizer    AdamW's two moments, 8 bytes per parameter, and its multi-tensor step's temporaries, 4 more;
               Muon's momentum, 4 bytes per parameter of the matrices it takes (lmlab.train.optim.state_bytes)
  casts        autocast's bf16/fp16 copies of the weights, 2 bytes per parameter
  activations  what the model keeps for backward at the micro-batch (`activation_bytes`)
  head         the logits: (B*T, V) at 16 bytes per logit without the chunked loss (bf16 logits,
               fp32 copy, log-softmax, its gradient); with it, one chunk's buffers (fp32 logits, where
               the softmax and gradient are computed in place, and under autocast the bf16 matmul output)
               plus the head's gradient buffers (fp32 accumulator and its scaled copy, the cast weight)
  runtime      the interpreter and libraries (the process's resident memory when the run starts)
               plus ~100 MiB that the compute libraries take on the first step (oneDNN, threads)

A run whose prediction exceeds the memory the machine has available fails with a UserError
before the model is built, naming the fields that shrink it.
"""

from __future__ import annotations

import os
import resource
import sys

from lmlab.alloc import available_bytes  # noqa: F401  (tests replace it here)
from lmlab.errors import UserError

KERNELS = 100 * 2**20  # what torch's CPU libraries add on the first step (kernels, thread pools), measured


def runtime_bytes(model_bytes: int = 0) -> int:
    """Resident memory that is not the model's: this process's now (minus the model's weights if they
    already exist) plus the kernels' share; 450 MiB where /proc cannot tell."""
    rss = rss_bytes()
    return (rss - model_bytes if rss else 350 * 2**20) + KERNELS


def rss_bytes() -> int | None:
    """Resident memory of this process now (Linux), else None."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def predict_peak(model, batch_size: int, value_bytes: int, optimizer=None, grad_accum: int = 1) -> dict[str, int]:
    """Bytes of each part of a training step's peak (without the runtime), and their `total`;
    the optimizer's share from the optimizer itself, or AdamW's when there is none yet."""
    from lmlab.train.optim import state_bytes

    params = sum(p.numel() for p in model.parameters())
    opt = state_bytes(optimizer) if optimizer is not None else 12 * params
    return combine(params, buffer_bytes(model), opt, model.activation_bytes(batch_size, value_bytes) or 0,
                   head_bytes(model, batch_size, value_bytes), value_bytes, grad_accum)


def buffer_bytes(model) -> int:
    """Tensors the model holds besides its parameters (rope tables, a count model's counts)."""
    return sum(b.numel() * b.element_size() for b in model.buffers())


def head_bytes(model, batch_size: int, value_bytes: int) -> int:
    from lmlab.model.head_loss import buffer_bytes as chunk_bytes

    cfg = model.config
    head = getattr(model, "lm_head", None) or getattr(model, "head", None)
    vocab = head.weight.shape[0] if head is not None else cfg.vocab_size
    rows = batch_size * cfg.context_len
    if getattr(cfg, "fused_loss", False) and hasattr(model, "token_scores") and head is getattr(model, "lm_head", 0):
        narrow = value_bytes if value_bytes < 4 else 0  # bf16/fp16: the cast weight
        return chunk_bytes(rows, vocab, value_bytes) + 8 * rows * cfg.d_model + vocab * cfg.d_model * (8 + narrow)
    return rows * vocab * (12 + value_bytes)


def combine(params: int, buffers: int, optimizer: int, activations: int, head: int, value_bytes: int,
            grad_accum: int) -> dict[str, int]:
    parts = {"weights": 4 * params + buffers, "gradients": 4 * params, "optimizer": optimizer,
             "casts": 2 * params if value_bytes == 2 else 0, "activations": activations, "head": head}
    if grad_accum <= 1:  # the step's gradients appear in backward as its activations and head buffers are
        # freed (zero_grad leaves none between steps): they add only what those do not make room for.
        # Accumulating micro-batches keeps the earlier ones' gradients alive through the next forward.
        parts["gradients"] = max(0, parts["gradients"] - parts["activations"] - parts["head"])
    parts["total"] = sum(parts.values())
    return parts


def predict_config(cfg, vocab_size: int, value_bytes: int) -> dict[str, int]:
    """predict_peak's parts for a run whose model is not built yet, to refuse one that cannot fit before
    anything is allocated or written. The model is built on the meta device (no memory) at one and two
    layers, and every per-layer quantity extrapolated: even on meta, 100,000 blocks take minutes to build.
    The optimizer's share is a lower bound (Muon's 4 bytes per parameter, AdamW's 12), so this refuses
    only what the check on the built model would refuse too."""
    import dataclasses

    import torch

    from lmlab.model import build_model
    from lmlab.train.optim import OPTIMIZERS

    m, t = cfg.model, cfg.train
    small = []
    for depth in sorted({min(m.n_layer, 1), min(m.n_layer, 2)}):
        with torch.device("meta"):
            model = build_model(dataclasses.replace(m, n_layer=depth, vocab_size=m.vocab_size or vocab_size))
        small.append((sum(p.numel() for p in model.parameters()), buffer_bytes(model),
                      model.activation_bytes(t.batch_size, value_bytes) or 0))
    params, buffers, activations = (a + (m.n_layer - 1) * (b - a) for a, b in zip(small[0], small[-1]))
    per_param = OPTIMIZERS.get(t.optimizer).min_state_bytes
    return combine(params, buffers, per_param * params, activations, head_bytes(model, t.batch_size, value_bytes),
                   value_bytes, t.grad_accum)


def predict_run(model, batch_size: int, value_bytes: int, optimizer=None,
                grad_accum: int = 1) -> tuple[dict[str, int], int]:
    """(parts, runtime) for a model that is already built (its weights count in the parts)."""
    parts = predict_peak(model, batch_size, value_bytes, optimizer, grad_accum)
    return parts, runtime_bytes(parts["weights"])


def describe(parts: dict[str, int], runtime: int) -> str:
    gib = lambda b: f"{b / 2**30:.2f}"  # noqa: E731
    return (f"predicted peak memory {gib(parts['total'] + runtime)} GiB (weights+grads+optimizer "
            f"{gib(parts['weights'] + parts['gradients'] + parts['optimizer'] + parts['casts'])}, activations "
            f"{gib(parts['activations'])}, logits {gib(parts['head'])}, runtime {gib(runtime)})")


def fits(need: int) -> bool:
    """Whether `need` bytes fit in the memory available now (always, where that cannot be read)."""
    free = available_bytes()
    return free is None or need <= free


def check_fits(parts: dict[str, int], runtime: int, where: str = "train", measured: int = 0) -> None:
    """UserError when the predicted peak (or a peak `measured` on a few steps) exceeds the memory
    available now, with the advice that fits what takes the most: the model's size or the batch's."""
    need = max(parts["total"] + runtime, measured)
    if fits(need):
        return
    model = 2 * parts["weights"] + parts["optimizer"] + parts["casts"]  # the gradients as large as the weights
    if model >= parts["activations"] + parts["head"]:
        advice = (f"the model's weights, gradients and optimizer state take {model / 2**30:,.1f} GiB of it; "
                  f"lower model.d_model or model.n_layer")
    else:
        advice = ("lower train.batch_size (and raise train.grad_accum to keep the tokens per step), "
                  "model.context_len or model.n_layer, or set model.grad_checkpoint=true")
    raise UserError(f"{where}: this run needs about {need / 2**30:,.1f} GiB at its peak but "
                    f"{available_bytes() / 2**30:.1f} GiB are available; {advice}")


def peak_memory_mb(device) -> float:
    """Peak device memory (CUDA) or this process's peak resident memory (CPU)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    try:  # Linux: VmHWM belongs to this address space; ru_maxrss survives exec and can be the parent's peak
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**10
    except (OSError, StopIteration, ValueError):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return kb / (2**20 if sys.platform == "darwin" else 2**10)


def reset_peak_memory(device) -> None:
    """Start peak_memory_mb over from the memory in use now (CUDA's counter; on Linux VmHWM,
    through /proc/self/clear_refs); where that cannot be done the peak keeps counting."""
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass
