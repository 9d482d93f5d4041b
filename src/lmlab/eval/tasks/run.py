"""Zero-shot evaluation of a model on named tasks: requests -> scores -> per-task metrics, each task
kind scored by its registered scorer (kinds.py says what acc, acc_norm and perplexity mean there).

Items whose text the tokenizer cannot encode (a character tokenizer's <unk>) are skipped and counted
(`skipped_unencodable`). Counted per item as well: `truncated`, a choice's context was cut from the left;
`continuation_windowed`, a choice longer than the context was scored in windows (scoring.py); an item
can be in both.
"""

from __future__ import annotations

import time

from lmlab.errors import UserError
from lmlab.eval.tasks.kinds import TASK_KINDS, binomial_stderr  # noqa: F401  (binomial_stderr: re-exported)
from lmlab.eval.tasks.loading import TaskSelection
from lmlab.eval.tasks.scoring import Scoring, encode_pair, score_requests
from lmlab.eval.tasks.specs import Item

STDERR = "binomial: sqrt(p(1-p)/(n-1)), as lm-eval's mean_stderr"


def requests_of(item: Item, kind: str) -> list[tuple[str, str]]:
    """(context, continuation) strings scored for one item."""
    return TASK_KINDS.get(kind)().requests(item)


def encode_items(tokenizer, items: list[Item], kind: str):
    """Token requests per item; items containing text the tokenizer maps to <unk> are dropped."""
    unk = getattr(tokenizer, "unk_id", None)
    kept, reqs, skipped = [], [], 0
    for item in items:
        pairs = [encode_pair(tokenizer, c, t) for c, t in requests_of(item, kind)]
        if unk is not None and any(unk in c or unk in t for c, t in pairs):
            skipped += 1
            continue
        kept.append(item)
        reqs.append(pairs)
    return kept, reqs, skipped


def score_task(model, tokenizer, items: list[Item], kind: str, scoring: Scoring, name: str = "task",
               encoded=None) -> dict:
    """Metrics of one task's items (see kinds.py). A task none of whose items the tokenizer can encode
    gets items = 0 and no scores."""
    t0 = time.perf_counter()
    scorer = TASK_KINDS.get(kind)()
    kept, reqs, skipped = encoded or encode_items(tokenizer, items, kind)
    if not kept:
        return {"kind": kind, "items": 0, "skipped_unencodable": skipped, "truncated": 0,
                "continuation_windowed": 0, "acc": None,
                "acc_stderr": None, "acc_norm": None, "acc_norm_stderr": None, "chance": None, "stderr": STDERR,
                "note": "the tokenizer cannot encode any item (characters outside its vocabulary)"}
    flat = [p for pairs in reqs for p in pairs]
    scored = score_requests(model, flat, scoring, name)
    k, truncated, windowed, scores = 0, 0, 0, []
    for item, pairs in zip(kept, reqs):
        s = scored[k:k + len(pairs)]
        k += len(pairs)
        truncated += any(x.truncated for x in s)
        windowed += any(x.windowed for x in s)
        scores.append(scorer.item_scores(item, s))
    out = {"kind": kind, "items": len(kept), "skipped_unencodable": skipped, "truncated": truncated,
           "continuation_windowed": windowed, **scorer.summarize(kept, scores, scored), "stderr": STDERR}
    out["seconds"] = time.perf_counter() - t0
    out["items_per_s"] = len(kept) / max(out["seconds"], 1e-9)
    return out


def evaluate_tasks(model, tokenizer, tasks: TaskSelection, scoring: Scoring) -> dict[str, dict]:
    """{task: metrics} for a model in memory (the Python API behind `lmlab eval --tasks`)."""
    loaded = tasks.load()
    encoded = {name: encode_items(tokenizer, items, spec.kind) for name, (spec, items, _) in loaded.items()}
    if not any(kept for kept, _, _ in encoded.values()):
        raise UserError(f"the tokenizer cannot encode any item of {', '.join(tasks.names)} (characters outside "
                        f"its vocabulary, e.g. a character tokenizer trained on other text); use a byte-level "
                        f"tokenizer")
    return {name: {"source": source, **score_task(model, tokenizer, items, spec.kind, scoring, name, encoded[name])}
            for name, (spec, items, source) in loaded.items()}
