"""What `lmlab train` prints when a run ends: speed, validation metrics, per-source losses, and
how far the loss is from a synthetic source's entropy rate (the floor no model can beat)."""

from __future__ import annotations

import json
import math
from pathlib import Path


def format_result(result) -> str:
    """A TrainResult as a few lines of text."""
    if result.idle:  # a resumed run with no step left: no speed, no new evaluation
        return f"{result.idle}\nrun directory: {result.run_dir}"
    m = result.metrics
    line = f"done: {result.steps} steps, {result.tokens_per_s:,.0f} tokens/s"
    if m:
        line += (f"; val loss {m['loss']:.4f}, perplexity {m['perplexity']:.2f}, accuracy {m['accuracy']:.3f}, "
                 f"bits/byte {m['bits_per_byte']:.3f}")
    lines = [line]
    for name, values in (m or {}).get("by_source", {}).items():
        lines.append(f"  val {name}: loss {values['loss']:.4f}, bits/byte {values['bits_per_byte']:.3f}")
    stats_file = Path(result.run_dir) / "data" / "stats.json"
    if m and stats_file.is_file():
        for src in json.loads(stats_file.read_text()).get("sources", []):
            if "entropy_bits_per_symbol" in src:
                floor = src["entropy_bits_per_symbol"] * math.log(2)
                lines.append(f"entropy rate of {src['name']}: {floor:.4f} nats/symbol, the floor for its loss; "
                             f"val loss is {m['loss'] - floor:+.4f} from it")
    lines.append(f"run directory: {result.run_dir}")
    return "\n".join(lines)
