"""Comparing runs: time to reach a loss, per-pair comparisons, the aggregate over repeats, the markdown table."""

from __future__ import annotations

import math
import statistics
from typing import Any


def best_by_time(evals: list[dict[str, Any]], t: float, key: str) -> float | None:
    vals = [e["val_loss"] for e in evals if e.get(key) is not None and e[key] <= t + 1e-9]
    return min(vals) if vals else None


def time_to_reach(evals: list[dict[str, Any]], target: float, key: str) -> dict[str, Any]:
    """First eval at which val_loss <= target; also a linear interpolation in (time, loss)."""
    prev = None
    for e in evals:
        if e.get(key) is None:
            continue
        if e["val_loss"] <= target:
            interp = e[key]
            if prev is not None and prev["val_loss"] > e["val_loss"]:
                frac = (prev["val_loss"] - target) / (prev["val_loss"] - e["val_loss"])
                interp = prev[key] + frac * (e[key] - prev[key])
            return {"step": e["step"], "at_eval_s": e[key], "interp_s": interp}
        prev = e
    return {"step": None, "at_eval_s": None, "interp_s": None}


def compare_pair(ng: dict[str, Any], lm: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ng_e, lm_e = ng["evals"], lm["evals"]
    lm_by_step = {e["step"]: e["val_loss"] for e in lm_e}
    out["val_at_equal_steps"] = [
        {"step": e["step"], "nanogpt": e["val_loss"], "lmlab": lm_by_step[e["step"]]}
        for e in ng_e if e["step"] in lm_by_step]
    for key in ("wall_s", "train_s"):
        out[f"val_at_equal_{key}"] = [
            {"t": e[key], "step_nanogpt": e["step"], "nanogpt": e["val_loss"],
             "lmlab_best": best_by_time(lm_e, e[key], key)} for e in ng_e]
    if ng_e:
        target = ng_e[-1]["val_loss"]
        out["target_val_loss"] = target
        out["nanogpt_final_step"] = ng_e[-1]["step"]
        for key in ("wall_s", "train_s"):
            out[f"reach_{key}"] = {"nanogpt": time_to_reach(ng_e, target, key),
                                   "lmlab": time_to_reach(lm_e, target, key),
                                   "nanogpt_final": ng_e[-1][key]}
    return out


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def aggregate(runs: list[dict[str, Any]], speedrun_target: float = 0.2) -> dict[str, Any]:
    agg: dict[str, Any] = {}
    for impl in ("nanogpt", "lmlab"):
        rs = [r for r in runs if r["impl"] == impl and r.get("ok")]
        agg[impl] = {
            "runs": len(rs),
            "ms_per_step": med([r["ms_per_step"] for r in rs]),
            "tokens_per_s": med([r["tokens_per_s"] for r in rs]),
            "final_val_loss": med([r["evals"][-1]["val_loss"] for r in rs if r["evals"]]),
            "final_step": med([r["evals"][-1]["step"] for r in rs if r["evals"]]),
            "wall_at_final_eval_s": med([r["evals"][-1]["wall_s"] for r in rs if r["evals"]]),
            "process_s": med([r["process_s"] for r in rs]),
        }
    n, l = agg["nanogpt"], agg["lmlab"]
    agg["tokens_per_s_ratio_lmlab_over_nanogpt"] = (
        l["tokens_per_s"] / n["tokens_per_s"] if n["tokens_per_s"] and l["tokens_per_s"] else None)
    pairs = [r["comparison"] for r in runs if r["impl"] == "lmlab" and r.get("comparison")]
    if pairs:
        # median over repeats, point by point
        def med_points(name, idx_key, fields):
            table: dict[Any, dict[str, list]] = {}
            for p in pairs:
                for row in p.get(name, []):
                    k = row[idx_key] if idx_key != "t" else row["step_nanogpt"]
                    d = table.setdefault(k, {f: [] for f in fields})
                    for f in fields:
                        d[f].append(row.get(f))
            return [{idx_key if idx_key != "t" else "step_nanogpt": k, **{f: med(v) for f, v in d.items()}}
                    for k, d in sorted(table.items())]
        agg["val_at_equal_steps"] = med_points("val_at_equal_steps", "step", ["nanogpt", "lmlab"])
        for key in ("wall_s", "train_s"):
            agg[f"val_at_equal_{key}"] = med_points(f"val_at_equal_{key}", "t",
                                                    ["t", "nanogpt", "lmlab_best"])
            reach = [p.get(f"reach_{key}") for p in pairs if p.get(f"reach_{key}")]
            agg[f"reach_{key}"] = {
                "target_val_loss": med([p.get("target_val_loss") for p in pairs]),
                "nanogpt_final": med([r["nanogpt_final"] for r in reach]),
                "nanogpt": med([r["nanogpt"]["interp_s"] for r in reach]),
                "lmlab": med([r["lmlab"]["interp_s"] for r in reach]),
                "lmlab_at_eval": med([r["lmlab"]["at_eval_s"] for r in reach]),
                "lmlab_reached": sum(r["lmlab"]["step"] is not None for r in reach),
                "pairs": len(reach),
            }
        rw = agg["reach_wall_s"]
        if rw["lmlab"] is not None and rw["nanogpt_final"]:
            agg["speedrun_ratio_wall"] = rw["lmlab"] / rw["nanogpt_final"]
            agg["speedrun_target"] = speedrun_target
            agg["speedrun_pass"] = (rw["lmlab_reached"] == rw["pairs"]
                                    and all(p["reach_wall_s"]["lmlab"]["interp_s"] <=
                                            speedrun_target * p["reach_wall_s"]["nanogpt_final"]
                                            for p in pairs if p.get("reach_wall_s")))
        else:
            agg["speedrun_ratio_wall"], agg["speedrun_pass"] = None, False
    return agg


def fmt(x, spec=".4f", none="—"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


def add_utilization(results: dict[str, Any]) -> None:
    """Useful GFLOP/s (tokens/s x the model's training FLOPs per token, the same model for both) and
    its share of the fp32 and bf16 matmul peaks measured in the same bench run."""
    flops = med([r.get("flops_per_token") for r in results["runs"] if r.get("flops_per_token")])
    peak = results["bench"].get("peak_gflops")
    if not flops:
        return
    util = {"flops_per_token": flops}
    for impl in ("nanogpt", "lmlab"):
        tps = results["aggregate"][impl]["tokens_per_s"]
        if tps:
            g = tps * flops / 1e9
            util[impl] = {"gflops": g, **({f"share_of_{k}_peak": g / v for k, v in peak.items()} if peak else {})}
    results["aggregate"]["utilization"] = util


def markdown(results: dict[str, Any]) -> str:
    L = []
    cfg = results["bench"]
    L.append(f"### lmlab vs nanoGPT — config `{cfg['config']}`, {cfg['steps']} steps, "
             f"{cfg['repeats']} repeat(s), threads={cfg['threads'] or 'default'}"
             + (f", lmlab preset `{cfg['lmlab_preset']}`" if cfg.get("lmlab_preset") else ""))
    if cfg.get("cpu"):  # a CPU's speed is its vector features as much as its name
        cpu = cfg["cpu"]
        L.append(f"\nCPU {cpu['model']} ({', '.join(cpu['features'] or ['features unknown'])})"
                 + (f", ONEDNN_MAX_CPU_ISA={cpu['onednn_max_cpu_isa']}" if cpu.get("onednn_max_cpu_isa") else "")
                 + (f"; lmlab precision {', '.join(cfg['lmlab_precision'])}" if cfg.get("lmlab_precision") else ""))
    L.append("")
    L.append("| run | impl | ok | ms/step | tok/s | final step | final val | wall@final eval (s) | process (s) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        ev = r.get("evals") or []
        L.append(f"| {r['repeat']} | {r['impl']} | {'yes' if r.get('ok') else 'NO'} | "
                 f"{fmt(r.get('ms_per_step'), '.2f')} | {fmt(r.get('tokens_per_s'), ',.0f')} | "
                 f"{ev[-1]['step'] if ev else '—'} | {fmt(ev[-1]['val_loss'] if ev else None)} | "
                 f"{fmt(ev[-1]['wall_s'] if ev else None, '.1f')} | {fmt(r.get('process_s'), '.1f')} |")
    agg = results["aggregate"]
    n, l = agg["nanogpt"], agg["lmlab"]
    L.append("")
    L.append("| median | nanoGPT | lmlab | lmlab/nanoGPT |")
    L.append("|---|---|---|---|")

    def ratio(a, b):
        return fmt(b / a, ".3f") if a and b else "—"
    L.append(f"| ms/step | {fmt(n['ms_per_step'], '.2f')} | {fmt(l['ms_per_step'], '.2f')} | "
             f"{ratio(n['ms_per_step'], l['ms_per_step'])} |")
    L.append(f"| tokens/s | {fmt(n['tokens_per_s'], ',.0f')} | {fmt(l['tokens_per_s'], ',.0f')} | "
             f"{fmt(agg['tokens_per_s_ratio_lmlab_over_nanogpt'], '.3f')} |")
    L.append(f"| final val loss | {fmt(n['final_val_loss'])} | {fmt(l['final_val_loss'])} | |")
    L.append(f"| wall @ final eval (s) | {fmt(n['wall_at_final_eval_s'], '.1f')} | "
             f"{fmt(l['wall_at_final_eval_s'], '.1f')} | {ratio(n['wall_at_final_eval_s'], l['wall_at_final_eval_s'])} |")
    util, peak = agg.get("utilization") or {}, results["bench"].get("peak_gflops")
    if util:
        L.append("")
        L.append(f"useful work ({util['flops_per_token'] / 1e6:.1f} MFLOPs/token): " + ", ".join(
            f"{impl} {util[impl]['gflops']:.0f} GFLOP/s" + "".join(
                f" = {100 * util[impl][f'share_of_{k}_peak']:.0f}% of {k}" for k in (peak or {}))
            for impl in ("nanogpt", "lmlab") if impl in util)
            + (f"; peaks measured in this run: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items())
               if peak else ""))
    if "val_at_equal_steps" in agg:
        L.append("")
        L.append("| step | nanoGPT val | lmlab val | t wall (s) | nanoGPT val | lmlab best val by t |")
        L.append("|---|---|---|---|---|---|")
        by_t = {row["step_nanogpt"]: row for row in agg["val_at_equal_wall_s"]}
        steps = sorted({row["step"] for row in agg["val_at_equal_steps"]} | set(by_t))
        eq = {row["step"]: row for row in agg["val_at_equal_steps"]}
        for s in steps:
            a, b = eq.get(s, {}), by_t.get(s, {})
            L.append(f"| {s} | {fmt(a.get('nanogpt'))} | {fmt(a.get('lmlab'))} | {fmt(b.get('t'), '.1f')} | "
                     f"{fmt(b.get('nanogpt'))} | {fmt(b.get('lmlab_best'))} |")
        L.append("")
        for key, label in (("wall_s", "wall"), ("train_s", "train-only")):
            r = agg[f"reach_{key}"]
            L.append(f"- time to nanoGPT's final val loss {fmt(r['target_val_loss'])} ({label}): "
                     f"nanoGPT {fmt(r['nanogpt'], '.1f')} s (final eval at {fmt(r['nanogpt_final'], '.1f')} s), "
                     f"lmlab {fmt(r['lmlab'], '.1f')} s interpolated / {fmt(r['lmlab_at_eval'], '.1f')} s at eval "
                     f"(reached in {r['lmlab_reached']}/{r['pairs']} runs)")
        if cfg["config"] == "speedrun" or cfg.get("lmlab_preset"):
            L.append(f"- speedrun criterion (lmlab reaches it in <= {agg.get('speedrun_target', 0.2)}x nanoGPT's wall time): "
                     f"{'PASS' if agg.get('speedrun_pass') else 'FAIL'} "
                     f"(ratio {fmt(agg.get('speedrun_ratio_wall'), '.3f')})")
    return "\n".join(L)
