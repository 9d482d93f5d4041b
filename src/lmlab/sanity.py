"""Sanity checks that catch a broken study from a run directory's files alone: numbers a correct
run cannot produce. Each check is a registered function of the run's facts returning a `Check`:

    initial_loss       the initialization's loss (metrics.jsonl "init", step 0) is within
                       INIT_TOLERANCE nats of ln(V), what uniform predictions score: further above
                       is a biased, over-confident init; below, an output already skewed (say so)
    val_not_in_train   few of the held-out windows (~100 bytes each) occur verbatim in the training
                       tokens (data/stats.json "overlap", data/overlap.py): a validation file also
                       training, or duplicated documents, make the val loss measure memory
    pads_not_scored    with padding (the pad and chunk layouts) no scored target is padding: every
                       evaluation records how many it scored ("val_pad_targets", lmlab.eval.metrics)
    perplexity_is_exp_loss  every val_perplexity is exp(val_loss) within 1e-6 (relative)
    loss_above_floor   a source whose entropy rate is known exactly (a synthetic Markov chain) is not
                       predicted better than that rate, in bits per byte, beyond sampling noise; no
                       floor is claimed for other text (a unigram entropy is not a lower bound)
    word_perplexity    on natural text the val perplexity per word stays above WORD_PPL_MIN: near 1
                       is leakage (pads counted as targets, validation seen in training), not skill

Statuses: ok, warn, fail, n/a (nothing to check, and why). `run_checks(run_dir)` runs them all;
`check_rows` makes table rows of them; `sanity_rows(run_dirs)` is one row per run for a study's
page. Nothing here imports torch: the checks read config.toml, metrics.jsonl and data/stats.json.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lmlab.errors import UserError
from lmlab.io import iter_jsonl
from lmlab.registry import Registry

STATUSES = ("fail", "warn", "ok", "n/a")  # worst first
INIT_TOLERANCE = 0.5  # nats; the trainer warns at the same distance (lmlab.train.checkpointing)
# shares of held-out windows found in training: stock phrases repeat by chance in natural text (WikiText-2's
# valid file against its train file: 0.17%, "a Grade II listed building, a national designation given to...")
OVERLAP_OK, OVERLAP_FAIL = 0.005, 0.02
PPL_RTOL = 1e-6
FLOOR_MARGIN_BITS, FLOOR_MARGIN_REL = 0.02, 0.05  # sampling noise allowed below an entropy floor
WORD_PPL_MIN = 2.0


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | n/a
    measured: str
    expected: str
    message: str


@dataclass
class RunFacts:
    """What the checks read from one run directory (missing files read as empty)."""

    root: Path
    config: dict = field(default_factory=dict)  # config.toml
    records: list[dict] = field(default_factory=list)  # metrics.jsonl
    stats: dict = field(default_factory=dict)  # data/stats.json

    def kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r.get("kind") == kind]

    @property
    def evals(self) -> list[dict]:
        return [r for r in self.kind("eval") if number(r.get("val_loss"))]

    def section(self, name: str) -> dict:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_facts(run_dir: str | Path) -> RunFacts:
    root = Path(run_dir)
    if not (root / "config.toml").is_file():
        raise UserError(f"{root} is not a run directory (no config.toml)")
    facts = RunFacts(root, records=list(iter_jsonl(root / "metrics.jsonl", quiet=True)))
    for attr, rel, read in (("config", "config.toml", tomllib.loads), ("stats", "data/stats.json", json.loads)):
        try:
            value = read((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # absent or unreadable: the checks that need it say n/a
        if isinstance(value, dict):
            setattr(facts, attr, value)
    return facts


CHECKS: Registry = Registry("sanity.check", config_field=False, noun="sanity check", plural="sanity checks")


def check(name: str, title: str) -> Callable:
    """Register `fn(facts) -> (status, measured, expected, message)` as the check `name`."""
    def add(fn: Callable) -> Callable:
        def run(facts: RunFacts) -> Check:
            return Check(name, *fn(facts))

        run.__doc__ = title
        return CHECKS.register(name, title)(run)

    return add


def run_checks(run_dir: str | Path) -> list[Check]:
    """Every registered check on one run directory, in registration order."""
    facts = read_facts(run_dir)
    return [CHECKS[name](facts) for name in CHECKS]


def title(name: str) -> str:
    """A check's title, as tables show it ("pads never scored")."""
    return CHECKS.describe()[name]


def check_rows(checks: list[Check]) -> list[dict]:
    """Rows for a table: check (its title), status, measured, expected, message."""
    return [{"check": title(c.name), "status": c.status, "measured": c.measured, "expected": c.expected,
             "message": c.message} for c in checks]


def worst(checks: list[Check]) -> str:
    return min((c.status for c in checks), key=STATUSES.index, default="n/a")


def sanity_rows(run_dirs: list[str | Path]) -> list[dict]:
    """One row per run: {"run", "status" (the worst), one column per check (its status), "problems"
    (the failing and warning checks' messages)}. For a study's page."""
    rows = []
    for run_dir in run_dirs:
        checks = run_checks(run_dir)
        problems = "; ".join(f"{c.name}: {c.message}" for c in checks if c.status in ("fail", "warn"))
        rows.append({"run": Path(run_dir).name, "status": worst(checks), **{c.name: c.status for c in checks},
                     "problems": problems})
    return rows


# --- the checks ---------------------------------------------------------------------------------

@check("initial_loss", "initial loss near ln(V)")
def initial_loss(facts: RunFacts):
    init = next((r for r in facts.kind("init") if number(r.get("loss"))), None)
    if init is None:
        return ("n/a", "—", "ln(V) at step 0", "no step-0 loss recorded: a count-based model (fitted before any "
                "step) or a run trained by an lmlab that did not record it")
    V = init.get("vocab_size") or facts.section("model").get("vocab_size") or 0
    if not V:
        return "n/a", f"{init['loss']:.3f}", "ln(V)", "the vocabulary size is not recorded"
    gap = init["loss"] - math.log(V)
    measured, expected = f"{init['loss']:.3f} at step 0", f"ln({V:,}) = {math.log(V):.3f} ± {INIT_TOLERANCE}"
    if abs(gap) <= INIT_TOLERANCE:
        return "ok", measured, expected, "the initial predictions are close to uniform"
    if gap > 0:
        return ("fail", measured, expected, f"biased initialization: {gap:.2f} nats above uniform, confidently "
                "wrong from the start (large embeddings with a tied head, model.init, a scaled output layer); "
                "the first steps are spent undoing it")
    return ("warn", measured, expected, f"{-gap:.2f} nats below uniform before any update: the output already "
            "favours the targets (an output bias set from token counts, or a tied head repeating the input token "
            "where targets repeat it, such as scored padding); fine only if intended")


@check("val_not_in_train", "no validation text in training")
def val_not_in_train(facts: RunFacts):
    overlap = facts.stats.get("overlap")
    if not isinstance(overlap, dict) or "window" not in overlap:
        return ("n/a", "—", "held-out windows absent from training", "data/stats.json records no overlap "
                "(prepared by an older lmlab; train again to record it)")
    W, generated = overlap["window"], {s["name"] for s in facts.stats.get("sources") or [] if s.get("generated")}
    expected = f"≤ {OVERLAP_OK:.1%} of held-out {W}-token windows found verbatim in training"
    parts = {(split, name): c for split in ("val", "test") for name, c in (overlap.get(split) or {}).items()
             if name not in generated and isinstance(c, dict) and c.get("windows")}
    skipped = f" (generated sources left out: {', '.join(sorted(generated))} repeat by construction)" \
        if generated else ""
    if not parts:
        return "n/a", "—", expected, f"no natural-text held-out source of {W} tokens or more{skipped}"
    share = {k: c["found"] / c["windows"] for k, c in parts.items()}
    measured = "; ".join(f"{split} {name}: {c['found']:,} of {c['windows']:,} ({share[split, name]:.2%})"
                         for (split, name), c in parts.items())
    top = max(share.values())
    if top <= OVERLAP_OK:
        return "ok", measured, expected, f"held-out text is not in the training data (beyond chance repeats){skipped}"
    status = "warn" if top <= OVERLAP_FAIL else "fail"
    return (status, measured, expected, "held-out text occurs in the training data: a validation or test file "
            "also listed as a training source, or duplicated documents; the val loss then measures memory")


@check("pads_not_scored", "pads never scored")
def pads_not_scored(facts: RunFacts):
    expected = "0 padding targets scored"
    recorded = [r for r in facts.kind("eval") if number(r.get("val_pad_targets"))]
    worst_eval = max(recorded, key=lambda r: r["val_pad_targets"], default=None)
    if facts.section("data").get("score_pads"):
        measured = pad_share(worst_eval) if worst_eval else "data.score_pads = true"
        return ("fail", measured, expected, "data.score_pads = true scores pad -> pad predictions, free to "
                "guess: the loss and perplexity fall toward 0 and 1 without any skill (the mistake behind "
                "LLM-Lite's perplexity 1.17); set it to false")
    if worst_eval is not None:
        if worst_eval["val_pad_targets"] > 0:
            return "fail", pad_share(worst_eval), expected, "the evaluation scored padding as targets"
        return ("ok", f"0 at each of {len(recorded)} evaluations", expected,
                "padding is masked out of the loss")
    layout = facts.stats.get("layout")
    if not isinstance(layout, dict):
        return "n/a", "—", expected, "data/stats.json does not say how the rows were laid out"
    if layout.get("padded_rows", 0) == 0:
        return ("n/a", "no padded rows", expected,
                f"nothing to score: the {layout.get('layout', 'run')} layout left no row padded")
    return ("warn", "not recorded", expected, "the rows are padded but no evaluation recorded the padding it "
            "scored (a run trained before val_pad_targets); train it again to check")


def pad_share(record: dict) -> str:
    n, total = record["val_pad_targets"], record.get("val_tokens") or 0
    share = f" ({n / total:.1%})" if total else ""
    return f"{n:,} of {total:,} scored targets were padding{share}, step {record.get('step', '?')}"


@check("perplexity_is_exp_loss", "perplexity consistent with loss")
def perplexity_is_exp_loss(facts: RunFacts):
    pairs = [(r["val_loss"], r["val_perplexity"], r.get("step")) for r in facts.kind("eval") + facts.kind("epoch")
             if number(r.get("val_loss")) and number(r.get("val_perplexity"))]
    expected = f"val_perplexity = exp(val_loss) within {PPL_RTOL:g} (relative)"
    if not pairs:
        return "n/a", "—", expected, "no evaluation recorded both"
    err = [(abs(ppl - math.exp(min(loss, 700.0))) / math.exp(min(loss, 700.0)), loss, ppl, step)
           for loss, ppl, step in pairs]
    top = max(err)
    measured = f"largest relative difference {top[0]:.1e} over {len(pairs)} records"
    if top[0] <= PPL_RTOL:
        return "ok", measured, expected, "each perplexity is the exponential of its loss"
    return ("fail", measured, expected, f"at step {top[3]}: perplexity {top[2]:.6g} but exp(loss {top[1]:.6g}) = "
            f"{math.exp(min(top[1], 700.0)):.6g}; perplexity must be exp of the mean loss over the same tokens "
            "(not a mean of per-batch perplexities, not 2**loss)")


def val_sources(facts: RunFacts) -> list[dict]:
    return [s for s in facts.stats.get("sources") or [] if isinstance(s, dict) and s.get("val_tokens")]


def source_metric(facts: RunFacts, record: dict, source: str, key: str):
    """One val source's metric in an eval record: its by-source entry, or the record's own when the
    val split has that one source."""
    by = record.get("val_by_source") or {}
    if by:
        return (by.get(source) or {}).get(key)
    return record.get(f"val_{key}") if [s["name"] for s in val_sources(facts)] == [source] else None


@check("loss_above_floor", "val loss not below a computable floor")
def loss_above_floor(facts: RunFacts):
    floors = {s["name"]: s["entropy_bits_per_symbol"] for s in val_sources(facts)
              if number(s.get("entropy_bits_per_symbol"))}
    if not floors:
        return ("n/a", "—", "no floor", "no computable floor: only a source of known entropy rate (a synthetic "
                "Markov chain) has one; a unigram entropy is not a lower bound on text")
    lines, status = [], "ok"
    for name, floor in floors.items():
        seen = [v for r in facts.evals if number(v := source_metric(facts, r, name, "bits_per_byte"))]
        if not seen:
            continue
        low, margin = min(seen), max(FLOOR_MARGIN_BITS, FLOOR_MARGIN_REL * floor)
        lines.append(f"{name}: {low:.4f} bits/byte vs floor {floor:.4f}")
        if low < floor - margin:
            status = "fail"
    if not lines:
        return "n/a", "—", "above the entropy rate", "no evaluation measured those sources' bits per byte"
    expected = (f"≥ the entropy rate (bits/symbol, one byte each), less {FLOOR_MARGIN_REL:.0%} or "
                f"{FLOOR_MARGIN_BITS} bits of sampling noise")
    message = ("predicted better than the source's exact entropy rate allows: the validation text was seen "
               "in training, or the loss skips targets it should count" if status == "fail" else
               "every source with a known entropy rate is predicted no better than that rate allows")
    return status, "; ".join(lines), expected, message


@check("word_perplexity", "word-level perplexity not near 1 on natural text")
def word_perplexity(facts: RunFacts):
    expected = f"≥ {WORD_PPL_MIN:g} per word on natural text"
    natural = [s for s in val_sources(facts) if not s.get("generated") and s.get("val_words")]
    if not natural:
        why = ("the val split is generated text" if val_sources(facts) else "data/stats.json records no val "
               "words (an older lmlab)")
        return "n/a", "—", expected, why
    found = []
    for s in natural:
        per_word = s["val_tokens"] / s["val_words"]  # real tokens per whitespace-separated word
        losses = [v for r in facts.evals if number(v := source_metric(facts, r, s["name"], "loss"))]
        if losses:
            low = min(losses)
            found.append((math.exp(min(low * per_word, 700.0)), s["name"], low, per_word))
    if not found:
        return "n/a", "—", expected, "no evaluation measured the natural-text sources"
    ppl, name, loss, per_word = min(found)
    measured = f"{ppl:.3g} per word on {name} (val loss {loss:.4g} nats/token × {per_word:.2f} tokens/word)"
    if ppl >= WORD_PPL_MIN:
        return "ok", measured, expected, "a plausible perplexity for natural text"
    return ("fail", measured, expected, "not credible on natural text: this is leakage, not skill. Likely "
            "causes: pads counted as targets (pad -> pad is free to predict), validation text seen in "
            "training, or targets visible in the input")
