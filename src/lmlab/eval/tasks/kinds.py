"""How each kind of task turns an item into scored requests and its scores into metrics: one
registered scorer per `TaskSpec.kind`, so scoring never forks on the kind's name.

multiple_choice  context + " " + each choice; acc = the highest summed log-probability is the gold
                 choice, acc_norm divides by the choice's length in characters (lm-eval's), acc_bytes
                 by its UTF-8 bytes
partial          WinoGrande: each option fills the blank; the shared continuation is scored after each
                 filled context (acc_norm = acc, since every option scores the same continuation)
last_word        LAMBADA: acc = the last word is the greedy continuation; perplexity = exp(-mean log-prob)
Standard errors are binomial, sqrt(p (1 - p) / (n - 1)) (lm-eval's mean_stderr of 0/1 scores).
"""

from __future__ import annotations

import math

import numpy as np

from lmlab.eval.tasks.specs import DELIMITER, Item
from lmlab.registry import Registry

TASK_KINDS = Registry("eval.task_kinds", config_field=False, noun="task kind")


def binomial_stderr(hits) -> float | None:
    n = len(hits)
    if n < 2:
        return None
    p = float(np.mean(hits))
    return math.sqrt(p * (1 - p) / (n - 1))


@TASK_KINDS.register("multiple_choice")
class MultipleChoice:
    """context + each choice; acc, acc_norm (per character) and acc_bytes"""

    def requests(self, item: Item) -> list[tuple[str, str]]:
        return [(item.context, DELIMITER + c) for c in item.choices]

    def item_scores(self, item: Item, scored) -> dict[str, float]:
        lls = np.array([x.logprob for x in scored])
        chars = np.array([float(len(c)) for c in item.choices])
        nbytes = np.array([float(len(c.encode("utf-8"))) for c in item.choices])
        return {"acc": float(np.argmax(lls) == item.gold), "acc_norm": float(np.argmax(lls / chars) == item.gold),
                "acc_bytes": float(np.argmax(lls / nbytes) == item.gold)}

    def summarize(self, kept: list[Item], scores: list[dict], scored) -> dict:
        col = {k: [s[k] for s in scores] for k in ("acc", "acc_norm", "acc_bytes")}
        return {"acc": float(np.mean(col["acc"])), "acc_stderr": binomial_stderr(col["acc"]),
                "acc_norm": float(np.mean(col["acc_norm"])), "acc_norm_stderr": binomial_stderr(col["acc_norm"]),
                "acc_bytes": float(np.mean(col["acc_bytes"])),
                "chance": float(np.mean([1.0 / it.n_options for it in kept]))}


@TASK_KINDS.register("partial")
class Partial(MultipleChoice):
    """each filled context + the shared continuation (WinoGrande); acc_norm = acc"""

    def requests(self, item: Item) -> list[tuple[str, str]]:
        return [(c, DELIMITER + item.choices[0]) for c in item.contexts]

    def item_scores(self, item: Item, scored) -> dict[str, float]:
        acc = float(np.argmax([x.logprob for x in scored]) == item.gold)
        return {"acc": acc, "acc_norm": acc, "acc_bytes": acc}


@TASK_KINDS.register("last_word")
class LastWord(MultipleChoice):
    """the last word as the greedy continuation (LAMBADA); acc and perplexity"""

    def item_scores(self, item: Item, scored) -> dict[str, float]:
        return {"greedy": float(scored[0].greedy), "logprob": scored[0].logprob}

    def summarize(self, kept: list[Item], scores: list[dict], scored) -> dict:
        greedy = [s["greedy"] for s in scores]
        mean_ll = float(np.mean([s["logprob"] for s in scores]))
        return {"acc": float(np.mean(greedy)), "acc_stderr": binomial_stderr(greedy), "acc_norm": None,
                "acc_norm_stderr": None, "perplexity": math.exp(min(-mean_ll, 700.0)), "chance": 0.0}
