"""Running the trainers as subprocesses (timestamped output), finding the data, and nanoGPT's data preparation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nanogpt_bench.config import (LMLAB_METRICS_FILE, LMLAB_TASK, NANOGPT_WIDE_DATASET, lmlab_command,
                                  lmlab_common_flags, lmlab_hparam_flags, nanogpt_command, tokens_per_step)
from nanogpt_bench.parse import parse_lmlab, parse_nanogpt, read_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_streaming(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                  timeout: float, echo: bool) -> tuple[int, list[tuple[float, str]], float]:
    """Run cmd, timestamping each stdout/stderr line on arrival (seconds since start)."""
    t_start = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                t = time.perf_counter() - t_start
                lines.append((t, line.rstrip("\n")))
                log.write(f"[{t:9.3f}] {line}")
                if echo:
                    sys.stderr.write(line)
                if t > timeout:
                    proc.kill()
                    break
            rc = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t_start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return rc, lines, time.perf_counter() - t_start


def dataset_name(data: Path) -> str:
    """nanoGPT's dataset for --data: its own `shakespeare_char` for Tiny Shakespeare, else `lmlab_<stem>_char`."""
    return "shakespeare_char" if data.parent.name == "tinyshakespeare" else f"lmlab_{data.stem}_char"


def ensure_nanogpt_data(nanogpt: Path, data: Path, python: str, env: dict[str, str]) -> str:
    """Prepare nanoGPT's char-level train.bin / val.bin / meta.pkl from --data and return the
    dataset name to pass it: `shakespeare_char` for Tiny Shakespeare, else `lmlab_<stem>_char`.

    Both run nanoGPT's own data/shakespeare_char/prepare.py (first 90% train, last 10% val,
    sorted characters), which reads the input.txt beside itself: another corpus gets its own
    directory with a link to that script. prepare.py imports `requests` unconditionally although
    it only uses it to download a missing input.txt; a stub module avoids installing it.
    """
    shakespeare = nanogpt / "data" / "shakespeare_char"
    if not (nanogpt / "train.py").is_file() or not shakespeare.is_dir():
        sys.exit(f"error: {nanogpt} does not look like a nanoGPT checkout (no train.py / data/shakespeare_char)")
    ours = data.read_bytes()
    name = dataset_name(data)
    d = nanogpt / "data" / name
    d.mkdir(exist_ok=True)
    if name != "shakespeare_char" and not (d / "prepare.py").exists():
        (d / "prepare.py").symlink_to(shakespeare / "prepare.py")
    inp = d / "input.txt"
    if inp.is_file() and inp.read_bytes() != ours:
        sys.exit(f"error: {inp} differs from --data {data}; remove it (and *.bin, meta.pkl) to re-prepare")
    wide = nanogpt / "data" / NANOGPT_WIDE_DATASET  # the same tokens, no meta.pkl (vocabulary 50,304)
    if not (all((d / f).is_file() for f in ("train.bin", "val.bin", "meta.pkl")) and inp.is_file()):
        if not inp.is_file():
            shutil.copyfile(data, inp)
        print(f"preparing nanoGPT data in {d} ...", file=sys.stderr)
        code = ("import sys, types, runpy; sys.modules.setdefault('requests', types.ModuleType('requests')); "
                f"runpy.run_path('data/{name}/prepare.py', run_name='__main__')")
        subprocess.run([python, "-c", code], cwd=nanogpt, env=env, check=True)
    if name == "shakespeare_char":
        _link_wide(d, wide)
    return name


def _link_wide(d: Path, wide: Path) -> None:
    wide.mkdir(exist_ok=True)
    for f in ("train.bin", "val.bin"):
        if not (wide / f).exists():
            (wide / f).symlink_to(d / f)


def find_data(arg: str | None) -> Path:
    if arg:
        p = Path(arg).expanduser()
        if not p.is_absolute() and not p.exists():
            p = REPO_ROOT / p
        if not p.is_file():
            sys.exit(f"error: --data {arg}: no such file")
        return p.resolve()
    candidates = [REPO_ROOT.parent / "shared/data/tinyshakespeare/input.txt"]
    if os.environ.get("LMLAB_SHAKESPEARE"):
        candidates.insert(0, Path(os.environ["LMLAB_SHAKESPEARE"]))
    for up in [REPO_ROOT, *REPO_ROOT.parents]:
        candidates.append(up / "shared/data/tinyshakespeare/input.txt")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    sys.exit("error: tinyshakespeare input.txt not found; pass --data PATH")


def torch_info(python: str, env: dict[str, str]) -> dict[str, Any]:
    try:
        out = subprocess.run([python, "-c", "import torch, json; print(json.dumps({'torch': torch.__version__, "
                              "'threads': torch.get_num_threads(), 'interop_threads': torch.get_num_interop_threads()}))"],
                             env=env, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as err:  # noqa: BLE001
        return {"error": str(err)}


def cpu_info() -> dict[str, Any]:
    """The CPU's model and vector features (lmlab.cpu reads them without torch), for the results."""
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from lmlab.cpu import cpu_info as info

    return info().to_dict()


def run_nanogpt(args, hp, env, workdir: Path, repeat: int) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix="nanogpt_out_", dir=args.tmp))
    cmd = nanogpt_command(args.python, hp, out_dir, args.nanogpt_dataset)
    log = workdir / f"nanogpt_r{repeat}.log"
    print(f"[{repeat}] nanoGPT: {' '.join(cmd)}", file=sys.stderr)
    rc, lines, wall = run_streaming(cmd, args.nanogpt, env, log, args.timeout, args.verbose)
    shutil.rmtree(out_dir, ignore_errors=True)  # ckpt.pt can be large
    res: dict[str, Any] = {"impl": "nanogpt", "repeat": repeat, "cmd": cmd, "rc": rc,
                           "process_s": wall, "log": str(log)}
    try:
        p = parse_nanogpt(lines, args.warmup_steps)
        res.update(p)
        res["ms_per_step"] = p["median_step_s"] * 1000
        res["tokens_per_s"] = tokens_per_step(hp) / p["median_step_s"]
        res["ok"] = rc == 0
    except ValueError as err:
        res.update(ok=False, error=str(err), tail=[t for _, t in lines[-15:]])
    if not res["ok"]:
        print(f"[{repeat}] nanoGPT FAILED (rc={rc}); log: {log}", file=sys.stderr)
    return res


def run_lmlab(args, hp, env, workdir: Path, repeat: int) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="lmlab_run_", dir=args.tmp))
    if args.lmlab_preset:
        task = args.lmlab_preset
        overrides = lmlab_common_flags(args.lmlab_precision)
        if args.steps is not None:
            overrides.append(f"--train.max_steps={args.steps}")
    else:
        task = LMLAB_TASK
        overrides = lmlab_common_flags(args.lmlab_precision) + lmlab_hparam_flags(hp)
    if args.threads:
        overrides.append(f"--train.threads={args.threads}")
    overrides += args.lmlab_args
    cmd = lmlab_command(args.lmlab_python, task, args.data, run_dir, overrides)
    log = workdir / f"lmlab_r{repeat}.log"
    print(f"[{repeat}] lmlab: {' '.join(cmd)}", file=sys.stderr)
    rc, lines, wall = run_streaming(cmd, REPO_ROOT, env, log, args.timeout, args.verbose)
    res: dict[str, Any] = {"impl": "lmlab", "repeat": repeat, "cmd": cmd, "rc": rc,
                           "process_s": wall, "log": str(log), "run_dir": str(run_dir)}
    metrics = run_dir / LMLAB_METRICS_FILE
    try:
        if not metrics.is_file():
            raise ValueError(f"{metrics} was not written")
        tps = None if args.lmlab_preset else tokens_per_step(hp)
        p = parse_lmlab(read_jsonl(metrics), args.warmup_steps, tokens_per_step=tps)
        res.update(p)
        res["ms_per_step"] = p["median_step_s"] * 1000
        res["tokens_per_s"] = p["tokens_per_step"] / p["median_step_s"]
        res["ok"] = rc == 0
        model_json = run_dir / "model.json"  # the same model as nanoGPT's: its FLOPs/token serve both
        manifest = run_dir / "manifest.json"  # the precision `auto` resolved to on this CPU
        if manifest.is_file():
            res["precision"] = json.loads(manifest.read_text()).get("precision")
        if model_json.is_file():
            res["flops_per_token"] = json.loads(model_json.read_text()).get("flops_per_token_train")
        if args.keep_runs:
            shutil.copyfile(metrics, workdir / f"lmlab_r{repeat}_metrics.jsonl")
    except ValueError as err:
        res.update(ok=False, error=str(err), tail=[t for _, t in lines[-15:]])
    if not res["ok"]:
        print(f"[{repeat}] lmlab FAILED (rc={rc}): {res.get('error', '')}; log: {log}", file=sys.stderr)
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def slim(run: dict[str, Any]) -> dict[str, Any]:
    """Drop bulky per-step arrays unless asked for."""
    return {k: v for k, v in run.items() if k not in ("step_times_s", "train_losses")}


def _git_head(path: Path) -> str | None:
    stamp = path / "NANOGPT_COMMIT"  # written by the setup in README_nanogpt_notes.md
    if stamp.is_file():
        return stamp.read_text().strip()
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


def measure_peak(python: str, env: dict, size: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """This CPU's fp32 and bf16 matmul GFLOP/s (`lmlab bench-peak`), measured inside the bench run."""
    import subprocess

    out = subprocess.run([python, "-m", "lmlab", "bench-peak", "--json", "--size", str(size),
                          "--seconds", str(seconds)], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                         check=True).stdout
    result = json.loads(out)
    return {k: result[k] / 1e9 for k in ("fp32", "bf16") if k in result}
