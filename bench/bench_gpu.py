"""GPU throughput and MFU, and a DDP-vs-single check on one GPU, for bench/gpu_check.sh.

    python bench/bench_gpu.py --out bench/results/gpu_check.json [--steps 30] [--quick]

Measures, on the first CUDA device, through lmlab's own training loop (metrics.jsonl):
  - the GPT-2-124M shape (preset gpt2_124m, context 1024, bf16 autocast) eager and with
    torch.compile: median tokens/s, MFU and peak memory over the steps after warm-up;
  - LLmini A (preset llmini_a, context 256) eager;
  - 2 DDP ranks sharing the GPU (gloo) vs 1 process on the tiny preset: max loss difference.
Data: Tiny Shakespeare through GPT-2's vocabulary (fast to prepare; throughput does not depend
on the text). Writes JSON and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lmlab.presets import get_preset  # noqa: E402
from lmlab.runs import RunDir  # noqa: E402
from lmlab.train import train  # noqa: E402


def throughput(preset: str, steps: int, compile_: bool, work: Path, **train_over) -> dict:
    """Median tokens/s, MFU and peak memory of `steps` training steps, the first third dropped."""
    data = get_preset("shakespeare_gpt2")
    cfg = get_preset(preset).replace(data=data.to_dict()["data"], tokenizer=data.to_dict()["tokenizer"],
                                     train={"max_steps": steps, "compile": compile_, "progress": False,
                                            "device": "cuda", **train_over},
                                     eval={"every": 10 * steps, "max_tokens": 8192})
    run = work / f"{preset}_{'compile' if compile_ else 'eager'}"
    t0 = time.perf_counter()
    train(cfg, run, overwrite=True)
    records = RunDir(run).read_metrics("train")[steps // 3:]
    mfu = [r["mfu"] for r in records if r.get("mfu") is not None]
    return {"preset": preset, "compile": compile_, "steps": steps, "wall_s": time.perf_counter() - t0,
            "tokens_per_step": cfg.train.batch_size * cfg.train.grad_accum * cfg.model.context_len,
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in records),
            "mfu": statistics.median(mfu) if mfu else None,
            "peak_mem_mb": max(r["peak_mem_mb"] for r in records)}


def ddp_vs_single(work: Path, steps: int = 20) -> dict:
    """The tiny preset on the GPU: 2 gloo DDP ranks sharing it vs one process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    common = ["tiny", f"--train.max_steps={steps}", "--train.device=cuda", "--eval.every=10"]
    single, ddp = work / "tiny_single", work / "tiny_ddp"
    lmlab = [sys.executable, "-m", "lmlab", "train"]
    subprocess.run([*lmlab, *common, "--run-dir", str(single), "--force"], env=env, check=True)
    subprocess.run([*lmlab, *common, "--run-dir", str(ddp), "--force", "--nproc", "2",
                    "--train.dist_backend=gloo"], env=env, check=True)
    a = [r["loss"] for r in RunDir(single).read_metrics("train")]
    b = [r["loss"] for r in RunDir(ddp).read_metrics("train")]
    return {"steps": len(a), "max_abs_loss_diff": max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) else None}


def markdown(result: dict) -> str:
    rows = ["| run | tokens/s | MFU | peak MiB |", "|---|---:|---:|---:|"]
    for r in result["throughput"]:
        mfu = "unknown" if r["mfu"] is None else f"{r['mfu']:.1%}"
        rows.append(f"| {r['preset']} {'compile' if r['compile'] else 'eager'} | {r['tokens_per_s']:,.0f} | "
                    f"{mfu} | {r['peak_mem_mb']:,.0f} |")
    eq = result.get("ddp_vs_single", {})
    return (f"{result['device']} (torch {result['torch']})\n\n" + "\n".join(rows) +
            f"\n\nDDP (2 ranks sharing the GPU, gloo) vs 1 process, tiny preset: max |loss diff| over "
            f"{eq.get('steps')} steps = {eq.get('max_abs_loss_diff')}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench/results/gpu_check.json")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="skip the compiled 124M run and LLmini A")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = [("gpt2_124m", False)] + ([] if args.quick else [("gpt2_124m", True), ("llmini_a", False)])
        for preset, compile_ in plan:
            result["throughput"].append(throughput(preset, args.steps, compile_, work, grad_accum=1))
            out.write_text(json.dumps(result, indent=1))  # partial results survive a timeout
            print(json.dumps(result["throughput"][-1]), flush=True)
        result["ddp_vs_single"] = ddp_vs_single(work)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
