"""Step-by-step mini GPT (seeds/step-by-step-mini-gpt.md): the ladder from bigram to a LLaMA-style model."""

from __future__ import annotations

from lmlab.study.library import CPU_RUN, study
from lmlab.study.spec import Study


LADDER = ["ladder_02", "ladder_03", "ladder_04", "ladder_05", "ladder_06", "ladder_07", "ladder_08", "ladder_09"]


LADDER_VARIANTS = {name.removeprefix("ladder_"): {"base": name} for name in LADDER}


@study("ladder", "full")
def ladder_full() -> Study:
    """Step-by-step mini GPT: stages 02-09 as variants, test loss / accuracy / bits per character."""
    return Study("ladder", "ladder_02", variants=LADDER_VARIANTS, seeds=[1337], baseline="02",
                 overrides={"data.test_fraction": 0.1},
                 description="the ladder's stages on Shakespeare (seed: each stage lowers the loss; "
                             "06's scale-up is the big step)")


@study("ladder", "cpu")
def ladder_cpu() -> Study:
    # Every stage at one small size and on characters (07-09's cl100k vocabulary changes what a
    # loss means; its bits per byte are the full study's): width 64, context 32, 300 steps.
    small = {"model.d_model": 64, "model.context_len": 32, "model.n_layer": 2, "model.n_head": 4,
             "model.n_kv_head": 0, "tokenizer.kind": "char", "model.vocab_size": 0, "train.batch_size": 32,
             "train.max_steps": 300, "eval.every": 100}
    cut = {k: {**v, **(small if k >= "06" else {"train.max_steps": 300, "eval.every": 100})}
           for k, v in LADDER_VARIANTS.items()}
    for k in ("07", "08", "09"):
        cut[k]["model.n_kv_head"] = 2  # GQA kept (4 query heads share 2 key/value heads)
    return Study("ladder", "ladder_02", variants=cut, seeds=3, baseline="02", description=ladder_full().description,
                 overrides={**CPU_RUN, "data.test_fraction": 0.1})
