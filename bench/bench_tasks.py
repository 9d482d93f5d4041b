#!/usr/bin/env python
"""Zero-shot tasks: how fast `lmlab eval --tasks` scores, and how it compares with lm-evaluation-harness.

    .venv/bin/python bench/bench_tasks.py [--limit 500] [--harness-items 100] [--steps 20]

1. Trains two short runs (speed does not depend on how well a model is trained): the 6 x 384 character
   model (preset shakespeare_6x384, context 256) and shakespeare_gpt2 (4 x 128, GPT-2's 50,257 ids,
   context 64); then times all ten tasks with --limit N in-process (items/s per task and in total).
2. On the first --harness-items ARC-Easy items (a local YAML over a local jsonl, offline), runs the
   harness with the `lmlab` adapter and with its own `hf` model on an HF export of the GPT-2-vocabulary
   run, and compares acc / acc_norm with the in-process scorer (and the harness's wall time with ours).
Writes bench/results_tasks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ALL = "hellaswag,arc_easy,arc_challenge,piqa,winogrande,boolq,openbook_qa,copa,siqa,lambada"



def train(preset: str, run: Path, steps: int) -> None:
    from lmlab.cli import main

    if not (run / "checkpoints" / "last").exists():
        assert main(["train", preset, "--run-dir", str(run), f"--train.max_steps={steps}"]) == 0


def speed(run: Path, limit: int) -> dict:
    from lmlab.eval.tasks.commands import format_table, run_tasks

    t0 = time.perf_counter()
    out = run_tasks(run, ALL, limit, progress=False, device="cpu")
    total = time.perf_counter() - t0
    print(format_table(out))
    items = sum(r["items"] for r in out["tasks"].values())
    print(f"{run.name}: {items} items in {total:.1f} s = {items / total:.1f} items/s (incl. loading the run)\n")
    return {"seconds": total, "items": items, "items_per_s": items / total,
            "tasks": {k: {f: v.get(f) for f in ("items", "skipped_unencodable", "truncated", "seconds",
                                                   "items_per_s", "acc", "acc_norm")}
                      for k, v in out["tasks"].items()}}


def harness_vs_in_process(run: Path, hf_dir: Path, n: int, work: Path) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    import lmlab.eval.harness  # noqa: F401  (registers "lmlab")
    from lmlab.eval.tasks import Item, score_task
    from lmlab.eval.tasks.harness_yaml import local_task_yaml
    from lmlab.load import load_run

    rows = [json.loads(x) for x in (DATA / "eval/arc_easy/arc_easy.jsonl").read_text().splitlines()[:n]]
    (work / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "tasks").mkdir(exist_ok=True)
    (work / "tasks" / "bench_arc.yaml").write_text(local_task_yaml("bench_arc", work / "items.jsonl", "arc_easy"))
    loaded = load_run(run, device="cpu")
    items = [Item(r["query"] + "\nAnswer:", r["choices"], r["gold"]) for r in rows]
    t0 = time.perf_counter()
    ours = score_task(loaded.model, loaded.tokenizer, items, "multiple_choice", loaded.cfg.model.context_len)
    t_ours = time.perf_counter() - t0
    out = {"items": n, "in_process": {"acc": ours["acc"], "acc_norm": ours["acc_norm"], "seconds": t_ours}}
    for name, args in (("harness_lmlab", f"run={run}"), ("harness_hf", f"pretrained={hf_dir},dtype=float32")):
        model = "lmlab" if name == "harness_lmlab" else "hf"
        t0 = time.perf_counter()
        res = lm_eval.simple_evaluate(model=model, model_args=args, tasks=["bench_arc"], device="cpu", batch_size=16,
                                      task_manager=TaskManager(include_path=str(work / "tasks")))["results"]["bench_arc"]
        out[name] = {"acc": res["acc,none"], "acc_norm": res["acc_norm,none"], "seconds": time.perf_counter() - t0}
    out["ratio_items_per_s_in_process_vs_harness_lmlab"] = out["harness_lmlab"]["seconds"] / t_ours
    print(json.dumps(out, indent=2))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--harness-items", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20, help="training steps of each run (speed does not depend on it)")
    ap.add_argument("--work", default=None, help="where the runs go (default: a temporary folder)")
    args = ap.parse_args()
    os.environ.setdefault("LMLAB_DATA", str(DATA))
    os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_tasks_"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"limit": args.limit, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    char, gpt2 = work / "shakespeare_6x384", work / "shakespeare_gpt2"
    train("shakespeare_6x384", char, args.steps)
    train("shakespeare_gpt2", gpt2, args.steps)
    from lmlab.cli import main as lmlab_main

    if not (work / "gpt2_hf").exists():
        assert lmlab_main(["export", str(gpt2), "--out", str(work / "gpt2_hf")]) == 0
    out = REPO / "bench" / "results_tasks.json"
    results["harness"] = harness_vs_in_process(gpt2, work / "gpt2_hf", args.harness_items, work)
    out.write_text(json.dumps(results, indent=2) + "\n")  # after each part: a long run keeps what it measured
    for name, run in (("shakespeare_gpt2", gpt2), ("shakespeare_6x384", char)):
        results[name] = speed(run, args.limit)
        out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
