"""Tables of a page: run data -> `Table` (title, columns, rows of formatted cells).

The HTML page and its markdown twin render the same `Table` objects, so the two never disagree.
Builders for files other branches write stay generic: any list of rows, any dict of scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 200  # rows shown per table; the rest are counted in the note


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)  # right-aligned columns
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.rows) > MAX_ROWS:
            self.note = (self.note + " " if self.note else "") + f"(first {MAX_ROWS} of {len(self.rows)} rows)"
            self.rows = self.rows[:MAX_ROWS]
        if not self.numeric:
            self.numeric = [bool(self.rows) and all(is_number(r[i]) for r in self.rows if r[i] not in ("", "—"))
                            for i in range(len(self.columns))]


def is_number(text: str) -> bool:
    try:
        float(str(text).replace(",", "").rstrip("%"))
        return True
    except ValueError:
        return False


def fmt(value: Any) -> str:
    """A cell: ints with thousands separators, floats to 4 significant digits, lists joined."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e12 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    text = str(value)
    try:  # numbers read back from CSV files are strings
        return fmt(int(text)) if text.lstrip("-").isdigit() else fmt(float(text)) if is_number(text) else text
    except ValueError:
        return text


def kv_table(title: str, pairs: list[tuple[str, Any]], note: str = "") -> Table:
    return Table(title, ["", ""], [[k, fmt(v)] for k, v in pairs], [False, False], note)


def rows_table(title: str, rows: list[dict], note: str = "", columns: list[str] | None = None) -> Table:
    """Dict rows -> a table with the union of their keys (in first-seen order)."""
    cols = columns or list(dict.fromkeys(k for r in rows for k in r if not isinstance(r[k], (dict, list))))
    return Table(title, cols, [[fmt(r.get(c)) for c in cols] for r in rows], note=note)


def object_tables(title: str, value: Any) -> list[Table]:
    """Any JSON value -> tables: a list of dicts is one table; a dict gives its scalars as one
    key/value table and each of its lists of dicts (or dicts of dicts) as further tables."""
    if isinstance(value, list):
        rows = [r for r in value if isinstance(r, dict)]
        return [rows_table(title, rows)] if rows else [kv_table(title, [("values", value)])]
    if not isinstance(value, dict):
        return [kv_table(title, [("value", value)])]
    scalars = [(k, v) for k, v in value.items() if not isinstance(v, (dict, list))
               or isinstance(v, list) and not any(isinstance(x, dict) for x in v)]
    out = [kv_table(title, scalars)] if scalars else []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            out.append(rows_table(f"{title}: {key}", item))
        elif isinstance(item, dict) and item:
            if all(isinstance(x, dict) for x in item.values()):
                out.append(rows_table(f"{title}: {key}", [{"name": k, **v} for k, v in item.items()]))
            else:
                out.extend(object_tables(f"{title}: {key}", item))
    return out


# ----------------------------------------------------------------------------- run tables

def sources_line(cfg, stats: dict | None) -> str:
    """The real data sources, e.g. 'tinystories (text, weight 0.8), gsm8k (jsonl, weight 0.2)'."""
    if stats and stats.get("sources"):
        return ", ".join(f"{s['name']} ({s.get('kind', '?')}, weight {fmt(s.get('weight', 1.0))})"
                         for s in stats["sources"])
    return ", ".join(f"{s.label} ({s.kind}{', ' + s.path if s.path else ''})" for s in cfg.data.source_list())


def overview_table(run) -> Table:
    cfg, m, t = run.config, run.config.model, run.config.train
    pairs: list[tuple[str, Any]] = [
        ("run directory", str(run.root)),
        ("model", f"{m.arch}, {m.n_layer} layers × {m.d_model} wide, {m.n_head} heads, context {m.context_len}"),
        ("tokenizer", f"{cfg.tokenizer.kind}, vocabulary {m.vocab_size:,}" if m.vocab_size else cfg.tokenizer.kind),
        ("data", sources_line(cfg, run.stats)),
        ("training", f"{t.max_steps:,} steps × {t.batch_size * t.grad_accum} sequences, lr {t.lr} ({t.schedule}), "
                     f"precision {t.precision}")]
    if run.train:
        last = run.train[-1]
        pairs.append(("ran", f"{last['step']:,} steps, {fmt(last.get('tokens', 0))} tokens in "
                             f"{last.get('elapsed_s', 0):.1f} s ({fmt(tokens_per_s(run.train))} training tokens/s)"))
    scored = [r for r in run.evals if math.isfinite(r.get("val_loss", math.nan))]
    if scored:
        best = min(scored, key=lambda r: r["val_loss"])
        pairs.append(("best val loss", f"{best['val_loss']:.4f} at step {best['step']:,}"))
    if run.evals:
        last = run.evals[-1]
        pairs.append(("last val loss", f"{last.get('val_loss', math.nan):.4f} at step {last['step']:,}"))
    return kv_table("Overview", pairs)


def tokens_per_s(train: list[dict]) -> float:
    last = train[-1]
    return last.get("tokens", 0) / max(last.get("train_time_s", 0.0), 1e-9)


def diff_table(run) -> Table:
    what = f"preset {run.preset!r}" if run.preset != "defaults" else "lmlab's defaults (no preset of this name)"
    if not run.diff:
        return Table(f"Differences from {what}", ["field", "value"], [], note="none: the run is its preset")
    return Table(f"Differences from {what}", ["field", run.preset, "this run"],
                 [[k, fmt(a), fmt(b)] for k, a, b in run.diff], [False, False, False])


def model_table(run) -> Table:
    m, info = run.config.model, run.model
    pairs = [("architecture", info.get("arch", m.arch)), ("layers", m.n_layer), ("width (d_model)", m.d_model),
             ("heads", m.n_head), ("context", m.context_len), ("vocabulary", m.vocab_size)]
    labels = {"params": "parameters", "params_non_embedding": "parameters without embeddings",
              "flops_per_token_train": "training FLOPs per token", "flops_per_token": "FLOPs per token",
              "activation_bytes_estimate": "activation memory estimate (bytes)"}
    pairs += [(labels.get(k, k.replace("_", " ")), v) for k, v in info.items()
              if k != "arch" and isinstance(v, (int, float, str))]
    return kv_table("Model", pairs)


STAT_COLUMNS = [("name", "source"), ("kind", "kind"), ("samples", "samples"), ("tokens", "tokens"),
                ("pct_tokens", "% tokens"), ("avg_tokens", "avg tokens/sample"), ("p50", "p50"), ("p90", "p90"),
                ("max", "max"), ("train_share", "share of training")]


def stats_tables(stats: dict) -> list[Table]:
    rows = [[fmt(s.get(k)) if k != "train_share" else (f"{100 * s[k]:.1f}%" if s.get(k) else "eval only")
             for k, _ in STAT_COLUMNS] for s in stats.get("sources", [])]
    out = [Table("Sources", [c for _, c in STAT_COLUMNS], rows)]
    total, lay, tok = stats.get("total") or {}, stats.get("layout") or {}, stats.get("tokenizer") or {}
    pairs: list[tuple[str, Any]] = [("documents", total.get("samples")), ("tokens", total.get("tokens")),
                                    ("layout", lay.get("layout")), ("context window", lay.get("context_len")),
                                    ("training rows", lay.get("rows")), ("padded rows", lay.get("padded_rows")),
                                    ("chunked documents", lay.get("chunked_docs")),
                                    ("token utilization", pct(lay.get("utilization"))),
                                    ("tokenizer", tok.get("kind")), ("vocabulary", tok.get("vocab_size")),
                                    ("bytes per token", tok.get("bytes_per_token")),
                                    ("vocabulary coverage", pct(tok.get("vocab_coverage")))]
    for split, n in (stats.get("splits", {}).get("tokens") or {}).items():
        if n:
            pairs.append((f"{split} tokens", n))
    for src in stats.get("sources", []):
        if "entropy_bits_per_symbol" in src:
            bits = src["entropy_bits_per_symbol"]
            pairs.append((f"entropy rate of {src['name']}", f"{bits:.4f} bits/symbol ({bits * math.log(2):.4f} nats)"))
    pairs = [(k, v) for k, v in pairs if v is not None]
    out.append(kv_table("Corpus", pairs))
    return out


def pct(value: Any) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def evals_table(run) -> Table:
    steps_tokens = {r["step"]: r.get("tokens") for r in run.train}
    keys = [k for k in ("val_loss", "val_perplexity", "val_accuracy", "val_bits_per_byte", "val_bits_per_char")
            if any(k in r for r in run.evals)]
    sources = list(dict.fromkeys(s for r in run.evals for s in (r.get("val_by_source") or {})))
    cols = ["step", "tokens"] + [k[4:].replace("_", " ") for k in keys] + [f"{s} loss" for s in sources]
    rows = [[fmt(r["step"]), fmt(steps_tokens.get(r["step"]))] + [fmt(r.get(k)) for k in keys]
            + [fmt((r.get("val_by_source") or {}).get(s, {}).get("loss")) for s in sources] for r in run.evals]
    return Table("Validation", cols, rows)


SANITY_COLUMNS = ("check", "status", "measured", "expected", "message")


def sanity_table(rows: list[dict]) -> Table:
    """lmlab.sanity.check_rows: one row per check, its status in capitals when it fails."""
    cells = [[status_cell(r[c]) if c == "status" else r[c] for c in SANITY_COLUMNS] for r in rows]
    return Table("Sanity checks", list(SANITY_COLUMNS), cells, [False] * len(SANITY_COLUMNS))


def status_cell(status: str) -> str:
    return status.upper() if status == "fail" else status


def tasks_table(tasks: dict) -> Table:
    """eval/tasks.json: a row per task with accuracy ± standard error next to the chance level."""
    rows = []
    for name, t in (tasks.get("tasks") or {}).items():
        rows.append([name, pm(t.get("acc"), t.get("acc_stderr")), pm(t.get("acc_norm"), t.get("acc_norm_stderr")),
                     fmt(t.get("chance")), fmt(t.get("items")), fmt(t.get("truncated")),
                     ", ".join(f"{k} {fmt(v)}" for k, v in t.items() if k not in TASK_KEYS
                               and isinstance(v, (int, float)))])
    extra = ", ".join(f"{k} {fmt(v)}" for k, v in tasks.items() if k != "tasks" and not isinstance(v, (dict, list)))
    return Table("Zero-shot tasks", ["task", "acc ± s.e.", "acc_norm ± s.e.", "chance", "items", "truncated",
                                     "other"], rows, [False, True, True, True, True, True, False], note=extra)


TASK_KEYS = ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "chance", "items", "truncated")


def pm(value: Any, err: Any) -> str:
    if value is None:
        return "—"
    return f"{fmt(value)} ± {fmt(err)}" if err is not None else fmt(value)
