"""What the loop does at its checkpoints: evaluate on validation (keeping `best`, saving `last`,
early stopping, the per-epoch record), save a checkpoint (never a non-finite one), keep the
checkpoints train.keep_checkpoints asks for, and say what is kept when a run fails."""

from __future__ import annotations

import math

from lmlab.checkpoint import all_finite, save_checkpoint
from lmlab.errors import LmlabError, TrainingDiverged
from lmlab.eval import evaluate
from lmlab.runs import step_checkpoint
from lmlab.train.distributed import checkpoint_state
from lmlab.train.job import Job, rng_tensors
from lmlab.train.loggers import FanOut
from lmlab.train.progress import Progress


def evaluate_and_save(job: Job, log: FanOut, bar: Progress, epoch_end: bool = False) -> dict:
    """Evaluate on validation, log it (and the epoch's summary at an epoch's end), keep `best`,
    save `last`, and apply early stopping."""
    state, ecfg = job.state, job.cfg.eval
    metrics = evaluate(job.model, job.data.splits["val"], job.tokenizer, job.cfg.model.context_len,
                       ecfg.batch_size or job.cfg.train.batch_size, ecfg.max_tokens, job.device,
                       job.precision.autocast)
    if not math.isfinite(metrics["loss"]):
        raise TrainingDiverged(f"validation loss is {metrics['loss']} at step {state.step}; "
                               f"{job.run.checkpoint('last')} keeps the last good state")
    log.write({"kind": "eval", "step": state.step, "elapsed_s": state.elapsed,
               **{f"val_{k}": v for k, v in metrics.items()}})
    if epoch_end:
        log.write(epoch_record(job, metrics))
    log.flush()
    if metrics["loss"] < state.best_val:
        state.best_val, state.best_step, state.bad_evals = metrics["loss"], state.step, 0
        save(job, "best", metrics)
    else:
        state.bad_evals += 1
        patience = job.cfg.train.patience
        if patience and state.bad_evals >= patience:
            state.stopped_early = True
            bar.message(f"early stop at step {state.step}: no better val loss for {patience} evaluations "
                        f"(best {state.best_val:.4f} at step {state.best_step})")
    save(job, "last", metrics)
    return metrics


def epoch_record(job: Job, metrics: dict) -> dict:
    """The per-epoch row the seed studies tabulate: mean train loss over the epoch's steps, val
    metrics at its end, and the gap between them. Resets the epoch's running sum."""
    state = job.state
    train_loss = state.epoch_loss_sum / max(state.epoch_loss_steps, 1)
    state.epoch_loss_sum, state.epoch_loss_steps = 0.0, 0
    return {"kind": "epoch", "epoch": job.batches.epoch_of(state.step - 1) + 1, "step": state.step,
            "tokens": state.tokens, "elapsed_s": state.elapsed, "train_loss": train_loss,
            **{f"val_{k}": v for k, v in metrics.items()}, "gap": metrics["loss"] - train_loss}


def save(job: Job, which: str, metrics: dict) -> None:
    """Save a checkpoint, never one holding NaN or inf (that would poison every resume)."""
    if not all_finite(job.model):
        raise TrainingDiverged(f"the weights hold NaN or inf at step {job.state.step}; not saving them. "
                               f"{kept_note(job)}")
    meta = {"step": job.state.step, "state": job.state.to_dict(), "metrics": metrics,
            "config": job.cfg.to_dict(), "tokenizer": job.tokenizer.kind,
            "data_position": {"step": job.state.step, "seed": job.cfg.train.seed},
            "precision": job.precision.name, "device": str(job.device),
            "tokenizer_sha256": _tokenizer_sha(job)}
    if job.precision.scaler is not None:
        meta["scaler"] = job.precision.scaler.state_dict()
    model, optimizer, rng = checkpoint_state(job, rng_tensors())  # collective: every rank takes part
    meta["world_size"] = job.dist.world
    if job.dist.is_main:
        save_checkpoint(job.run.checkpoint(which), model, optimizer, meta, rng)
        job.run.note_checkpoint()  # from now on a missing checkpoints/ is a deleted one, not a failed start
    job.dist.barrier()


def _tokenizer_sha(job: Job) -> str | None:
    from lmlab.checkpoint import sha256_file
    from lmlab.tokenizer.base import FILE_NAME

    file = job.run.tokenizer / FILE_NAME
    return sha256_file(file) if file.is_file() else None

def keep_if_due(job: Job, metrics: dict) -> None:
    """train.keep_checkpoints (e.g. "log"): also save checkpoints/step-XXXXXX at the kept steps."""
    from lmlab.train.keep import KEEP

    cfg = job.cfg.train
    if KEEP.get(cfg.keep_checkpoints)(job.state.step, cfg, job.cfg.eval.every):
        save(job, step_checkpoint(job.state.step), metrics)


def check_finite(loss: float, job: Job, bar: Progress) -> None:
    if not math.isfinite(loss):
        last = job.run.checkpoint("last")
        kept = (f"{last} (step {_saved_step(job)}) is the last good state" if job.run.has_checkpoint()
                else "no checkpoint had been saved yet")
        raise TrainingDiverged(f"training diverged: the loss is {loss} at step {job.state.step + 1}; {kept}. "
                               f"Try a lower train.lr (now {job.cfg.train.lr}), train.grad_clip=1.0, "
                               f"or train.precision=fp32")


def _saved_step(job: Job) -> int:
    from lmlab.checkpoint import read_meta

    return read_meta(job.run.checkpoint("last"))["step"]


def kept_note(job: Job) -> str:
    try:
        if job.run.has_checkpoint():
            return f"{job.run.checkpoint('last')} (step {_saved_step(job)}) is intact"
    except LmlabError:
        pass
    return "no checkpoint had been saved yet"


def initial_record(loss: float, vocab_size: int) -> dict:
    """metrics.jsonl's {"kind": "init"} record: the first step's loss, taken before any update (the
    initialization's loss on one training batch), next to ln(V), what uniform predictions score.
    lmlab.sanity reads it (a biased init shows here); the train record of step 1 is written only when
    train.log_every allows."""
    return {"kind": "init", "step": 0, "loss": loss, "vocab_size": vocab_size, "ln_vocab": math.log(vocab_size)}


def warn_initial_loss(loss: float, vocab_size: int, bar: Progress) -> None:
    """A model that starts far from uniform predictions (loss ln V) is usually mis-initialized."""
    expected = math.log(vocab_size)
    if abs(loss - expected) > 0.5:
        bar.message(f"lmlab: warning: initial loss {loss:.3f} is far from ln(V) = {expected:.3f} "
                    f"(V = {vocab_size}); check model.init and the data")
