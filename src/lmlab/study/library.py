"""The seed studies as named studies (shared/seeds/*.md), each at two sizes:

  cpu   finishes on 2 CPU cores in minutes: the seed's architectures cut to small widths, short
        contexts and capped data, at least 3 seeds wherever the finding is a comparison;
  full  the seed's own dimensions and budget (its presets unchanged), for a GPU.

`lmlab studies` lists them; `lmlab study NAME --size cpu` runs one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lmlab.registry import Registry
from lmlab.presets.llm_lite import LLM_LITE_GRID
from lmlab.study.spec import Study

CPU_RUN = {"train.precision": "fp32", "train.warmup_steps": 10, "eval.max_tokens": 8192, "eval.batch_size": 32}

SIZES = Registry("study.sizes", config_field=False, noun="size")
SIZES.register("cpu", "finishes on 2 CPU cores in minutes: small widths, capped data, >= 3 seeds")("cpu")
SIZES.register("full", "the seed's own dimensions and budget (its presets unchanged), for a GPU")("full")


@dataclass
class NamedStudy:
    """A named study: one function per size, each returning its Study (no fork on the size)."""

    doc: str
    sizes: dict[str, Callable[[], Study]] = field(default_factory=dict)


STUDIES = Registry("studies", config_field=False, noun="study", plural="named studies", hint="or a STUDY.toml")


def study(name: str, size: str):
    """Register the decorated function as study `name` at `size` (its docstring describes the study)."""
    SIZES.get(size)

    def add(fn: Callable[[], Study]) -> Callable[[], Study]:
        if name not in STUDIES:
            STUDIES.register(name, (fn.__doc__ or "").strip().split("\n")[0])(NamedStudy(fn.__doc__ or ""))
        STUDIES[name].sizes[size] = fn
        return fn
    return add


def get_study(name: str, size: str = "cpu") -> Study:
    named = STUDIES.get(name)
    SIZES.get(size)
    return named.sizes[size]()


def describe_studies() -> dict[str, str]:
    return STUDIES.describe()


@study("llmini_scale", "full")
def llmini_scale_full() -> Study:
    """LLmini: scales A/B/C (10x384, 9x320, 8x256) with identical hyperparameters, per-epoch tables."""
    return Study("llmini_scale", "llmini_a", zip={"model.d_model": [384, 320, 256], "model.n_head": [6, 5, 4],
                                                  "model.n_layer": [10, 9, 8]},
                 seeds=[42], budget={"train.epochs": 3}, scaling=True,
                 description="LLmini's three scales on its mixture, 3 epochs each (seed: larger is better, "
                             "the train-val gap grows with size)")


@study("llmini_scale", "cpu")
def llmini_scale_cpu() -> Study:
    # The same three-step size ladder at a quarter of the depth and a sixth of the width; the
    # GPT-2 vocabulary stays (the seed's), so the head dominates and tokens are capped.
    return Study("llmini_scale", "llmini_a", zip={"model.d_model": [64, 48, 32], "model.n_head": [2, 2, 2],
                                                  "model.n_layer": [3, 2, 2]},
                 seeds=3, scaling=True, description=llmini_scale_full().description,
                 overrides={**CPU_RUN, "model.context_len": 64, "train.batch_size": 16, "train.lr": 2e-3,
                            "data.stride": 32, **{f"data.sources.{i}.max_tokens": 8000 for i in range(7)}},
                 budget={"train.epochs": 3})


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


@study("llm_lite_grid", "full")
def llm_lite_grid_full() -> Study:
    """LLM-Lite: lr x layers x heads x width grid with early stopping; retrain the best 2x longer; test."""
    return Study("llm_lite_grid", "llm_lite", grid=LLM_LITE_GRID, seeds=[0], select="val_loss",
                     overrides={"train.batch_size": 64, "train.warmup_steps": 500},
                     budget={"train.epochs": 10}, retrain={"train.epochs": 20},
                     description="LLM-Lite's 36-point grid, 10 epochs each with early stopping, the best "
                                 "retrained for 20 epochs and tested once")


@study("llm_lite_grid", "cpu")
def llm_lite_grid_cpu() -> Study:
    return Study("llm_lite_grid", "llm_lite", grid={"train.lr": [1e-3, 3e-3], "model.n_layer": [1, 2],
                                                     "model.d_model": [32, 64]},
                 seeds=3, select="val_loss", description="LLM-Lite's grid search cut to 8 points",
                 overrides={**CPU_RUN, "model.n_head": 2, "model.context_len": 64, "train.batch_size": 16,
                            "tokenizer.vocab_size": 512, "data.sources.0.max_tokens": 20000,
                            "data.sources.1.max_tokens": 20000, "data.sources.2.max_tokens": 20000,
                            "train.patience": 3, "eval.every": 20},
                 budget={"train.epochs": 2}, retrain={"train.epochs": 4})


@study("minigpt_sizes", "full")
def minigpt_sizes_full() -> Study:
    """Mini GPT: small / medium / large on TinyStories, the same number of steps."""
    return Study("minigpt_sizes", "minigpt_small", zip={"model.d_model": [128, 256, 384],
                                                        "model.d_mlp": [256, 512, 768]},
                 seeds=[0], scaling=True,
                 description="Mini GPT's three sizes (seed: larger is better at the same steps)")


@study("minigpt_sizes", "cpu")
def minigpt_sizes_cpu() -> Study:
    return Study("minigpt_sizes", "minigpt_small", zip={"model.d_model": [32, 64, 128], "model.d_mlp": [64, 128, 256],
                                                        "model.n_layer": [2, 2, 2]},
                 seeds=3, scaling=True, description=minigpt_sizes_full().description,
                 overrides={**CPU_RUN, "model.n_head": 4, "model.context_len": 64, "train.batch_size": 16,
                            "tokenizer.vocab_size": 1000, "model.vocab_size": 1000, "train.lr": 2e-3,
                            "data.sources.0.max_tokens": 100000},
                 budget={"train.max_steps": 200, "eval.every": 50})


PICO_FULL = {"kgram_onehot": {"base": "pico_kgram_onehot"}, "kgram_embedding": {"base": "pico_kgram_embedding"},
             "lstm": {"base": "pico_lstm"}, "transformer": {"base": "pico_transformer"},
             "transformer_nopos": {"base": "pico_transformer", "model.position": "none"},
             "prenorm": {"base": "pico_underfit", "train.max_steps": 7500},
             "postnorm": {"base": "pico_postnorm"},
             "underfit": {"base": "pico_underfit"}, "overfit": {"base": "pico_overfit"}}


@study("pico", "full")
def pico_full() -> Study:
    """Pico-LLM: k-gram one-hot vs embedding, LSTM vs transformer, pre vs post norm, positions, under/over-training."""
    return Study("pico", "pico_transformer", variants=PICO_FULL, seeds=[0], baseline="transformer",
                 description="Pico-LLM's comparisons on TinyStories + counting")


@study("pico", "cpu")
def pico_cpu() -> Study:
    # Byte tokens instead of GPT-2's (the one-hot k-gram's input is 3 x V wide); small widths.
    tiny = {"model.d_model": 64, "model.n_layer": 2, "model.n_head": 4, "model.context_len": 64}
    variants = {
        "kgram_onehot": {"base": "pico_kgram_onehot", "model.context_len": 64},
        "kgram_embedding": {"base": "pico_kgram_embedding", "model.context_len": 64},
        "lstm": {"base": "pico_lstm", "model.context_len": 64},
        "transformer": {"base": "pico_transformer", **tiny},
        "transformer_nopos": {"base": "pico_transformer", **tiny, "model.position": "none"},
        "postnorm": {"base": "pico_postnorm", **tiny, "model.n_head": 4},
        "underfit": {"base": "pico_transformer", **tiny, "train.max_steps": 30},
        "overfit": {"base": "pico_transformer", **tiny, "train.max_steps": 600, "data.sources.0.max_tokens": 3000},
    }
    return Study("pico", "pico_transformer", variants=variants, seeds=3, baseline="transformer",
                 description="Pico-LLM's comparisons at byte level on TinyStories + counting",
                 overrides={**CPU_RUN, "tokenizer.kind": "byte", "model.vocab_size": 0, "train.batch_size": 16,
                            "train.lr": 2e-3, "data.sources.0.max_tokens": 60000, "data.sources.1.max_tokens": 15000},
                 budget={"train.max_steps": 200, "eval.every": 50})
