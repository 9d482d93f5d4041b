"""A study's predicted wall time, from measurements on this machine (`--dry-run`, and at the start
of every study so that its end can print predicted vs actual and keep both in timing.json).

Each distinct shape (a config less its name, seed and learning rate, which change no step's cost)
is built once and a few of its steps and an evaluation probe are timed (lmlab.train.plan). A run
then costs its per-run overhead + steps x seconds per step + evaluations x seconds per evaluation,
where steps already follow every budget (steps, tokens, epochs; a time budget caps them) and early
stopping is counted as never firing (an upper bound). The overhead is measured too: building the
run here (data from the token cache, model, optimizer), writing its checkpoints (a file of its
size, timed), and starting a process for executors that start one per run; a warm worker pays its
start once. The runs are then dealt to the workers in order, as the executors take them."""

from __future__ import annotations

import heapq
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.study import executors
from lmlab.study.expand import RunPlan, model_stats

STARTS_PER_RUN = {"process": True, "ray": True}  # executors that start a Python process for each run


@dataclass
class Forecast:
    workers: int
    threads: int
    seconds: dict[str, float]  # run -> predicted seconds in its worker
    startup_s: float  # a worker's start (imports), paid once per worker by a warm pool
    rows: list[dict] = field(default_factory=list)  # one per variant, for the dry-run's table

    @property
    def wall_s(self) -> float:
        return self.startup_s + deal(list(self.seconds.values()), self.workers)

    def record(self, actual_s: float | None = None) -> dict:
        out = {"predicted_s": round(self.wall_s, 1), "workers": self.workers, "threads": self.threads,
               "runs": {k: round(v, 2) for k, v in self.seconds.items()}}
        if actual_s is not None:
            out.update(actual_s=round(actual_s, 1), ratio=round(actual_s / max(self.wall_s, 1e-9), 3))
        return out


def deal(seconds: list[float], workers: int) -> float:
    """Wall time of running these jobs in order on `workers` (each takes the next when free)."""
    free = [0.0] * max(workers, 1)
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def worker_layout(pending: list[RunPlan], workers: int | str) -> tuple[int, int]:
    """(parallel workers, CPU threads each) for these runs: `--workers auto` decides by model size;
    more workers than runs would only idle, so there are at most as many as runs."""
    params = max(model_stats(r.cfg)["params"] for r in pending)
    n_workers = executors.auto_workers(len(pending), params) if workers == "auto" else int(workers)
    n_workers = max(1, min(n_workers, len(pending)))
    return n_workers, max(1, executors.cpu_count() // n_workers)


def shape_key(run: RunPlan) -> str:
    values = run.cfg.to_dict()
    values.pop("name", None)
    values["train"] = {k: v for k, v in values["train"].items() if k not in ("seed", "lr")}
    return json.dumps(values, sort_keys=True, default=str)


def forecast(runs: list[RunPlan], workers: int, threads: int, executor: str = "local",
             strict: bool = True) -> Forecast:
    """The study's forecast; a shape that cannot be built is refused (`strict`, the dry-run) or
    predicted to fail at once (a study, where that run fails alone with its own error)."""
    import torch._dynamo  # noqa: F401 — a warm worker has it imported; else the first build would count it
    from lmlab.errors import UserError
    from lmlab.train.plan import STARTUP, estimate_run

    from lmlab.study.expand import track

    measured: dict[str, tuple] = {}
    seconds, rows, seeds = {}, {}, {}
    per_run_start = STARTUP if STARTS_PER_RUN.get(executor) else 0.0
    for r in track(runs, "timing", "run"):
        key = shape_key(r)
        if key not in measured:
            try:
                est = estimate_run(r.cfg, threads)
            except UserError as err:
                if strict:
                    raise UserError(f"variant {r.variant.slug}: {err}") from None
                est = None
            measured[key] = (est, checkpoint_seconds(est.params) if est else 0.0)
        est, save_s = measured[key]
        if est is None:
            seconds[r.name] = per_run_start
            continue
        overhead = per_run_start + max(est.build_seconds - STARTUP, 0.0) + saves(r, est) * save_s
        seconds[r.name] = overhead + est.steps * est.seconds_per_step + est.evals * est.seconds_per_eval
        rows.setdefault(r.variant.slug, variant_row(r, est, overhead, seconds[r.name]))
        seeds.setdefault(r.variant.slug, []).append(r.seed)
    for slug, row in rows.items():
        row["seeds"] = seed_ranges(seeds[slug])
    return Forecast(workers, threads, seconds, 0.0 if per_run_start else STARTUP, list(rows.values()))


def retrain_forecast(study, runs: list[RunPlan], fc: Forecast, executor: str = "local") -> Forecast | None:
    """A select study's retrain, which runs after the grid: the selected variant is not known yet,
    so the costliest variant of the grid is measured with the retrain budget (an upper bound)."""
    from lmlab.study.expand import variant_config

    if not study.select or not runs:
        return None
    costliest = max(runs, key=lambda r: fc.seconds.get(r.name, 0.0))
    cfg = variant_config(study, costliest.variant, costliest.seed, budget={**study.budget, **study.retrain})
    plan = RunPlan(costliest.variant, costliest.seed, cfg.replace(name=f"{study.name}/retrain/{costliest.name}"))
    return forecast([plan], *worker_layout([plan], 1), executor)


def saves(run: RunPlan, est) -> int:
    """Checkpoints a run writes: `last` at each evaluation and every checkpoint_every steps, `best`
    at each improvement (counted at every evaluation: an upper bound)."""
    every = run.cfg.train.checkpoint_every
    return 2 * est.evals + (est.steps // every if every else 0)


def checkpoint_seconds(params: int) -> float:
    """Seconds to write one checkpoint of a model this size (weights and two AdamW moments), timed."""
    import torch
    from safetensors.torch import save_file

    tensor = torch.zeros(max(3 * params, 1))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_file({"x": tensor}, str(Path(tmp) / "x.safetensors"))
        return time.perf_counter() - t0


def variant_row(r: RunPlan, est, overhead: float, seconds: float) -> dict:
    return {"variant": r.variant.slug, "seeds": str(r.seed), "params": est.params,
            "params_non_emb": est.params_non_embedding, "flops_per_token": est.flops_per_token,
            "steps": est.steps, "tokens": est.tokens, "peak_mem_gib": round(est.memory_bytes / 2**30, 2),
            "ms_per_step": round(est.seconds_per_step * 1e3, 1), "overhead_s": round(overhead, 2),
            "est_s_per_run": round(seconds, 1)}


def seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 7] -> "0-3,7": a table cell that stays short for thousands of seeds."""
    parts, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            a, b = seeds[start], seeds[i - 1]
            parts.append(str(a) if a == b else f"{a},{b}" if b == a + 1 else f"{a}-{b}")
            start = i
    return ",".join(parts)
