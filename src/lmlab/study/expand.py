"""Expansion: a Study -> variants (named override sets) -> runs (variant x seed) with readable
slugs, each an ordinary run directory `STUDY_DIR/runs/<slug>-s<seed>/`. Every variant's config is
built and validated here, before anything trains, so a bad combination is refused up front and
named."""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from lmlab.config import RunConfig, apply_overrides, check_choices
from lmlab.errors import UserError
from lmlab.study.spec import Study
from lmlab.progress import Progress
from lmlab.model import build_model
from lmlab.presets.resolve import resolve_config


@dataclass
class Variant:
    slug: str
    overrides: dict[str, Any]  # the variant's own settings (its axis values)
    axes: dict[str, Any] = field(default_factory=dict)  # column -> value for the results table


@dataclass
class RunPlan:
    variant: Variant
    seed: int
    cfg: RunConfig

    @property
    def name(self) -> str:
        return f"{self.variant.slug}-s{self.seed}"


def text(value: Any) -> str:
    """A TOML value as the command line would spell it (what apply_overrides parses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def slug_part(key: str, value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{short(key)}{text(value)}")


MAX_RUNS = 10_000  # a study of more runs is a typo (--seeds 1000000); planning it alone would take hours


def check_size(study: Study) -> None:
    """Refuse a study of more than MAX_RUNS runs, counted before any variant is made."""
    n_variants = max(len(study.variants), 1) * max(len(next(iter(study.zip.values()))) if study.zip else 1, 1)
    for values in study.grid.values():
        n_variants *= len(values)
    runs = n_variants * len(study.seeds)
    if runs > MAX_RUNS:
        raise UserError(f"study {study.name}: {n_variants:,} variants x {len(study.seeds):,} seeds = {runs:,} runs; "
                        f"at most {MAX_RUNS:,} runs per study: use fewer seeds or axis values")


def variants(study: Study) -> list[Variant]:
    """grid x zip x named variants, in declaration order; slugs are unique and filesystem-safe."""
    check_size(study)
    grid = [[(k, v) for v in vals] for k, vals in study.grid.items()]
    grid_choices = [list(c) for c in itertools.product(*grid)] if grid else [[]]
    n_zip = len(next(iter(study.zip.values()))) if study.zip else 0
    zip_choices = [[(k, vals[i]) for k, vals in study.zip.items()] for i in range(n_zip)] or [[]]
    named = list(study.variants.items()) or [("", {})]
    out = []
    for (name, extra), zc, gc in itertools.product(named, zip_choices, grid_choices):
        pairs = zc + gc
        parts = ([name] if name else []) + [slug_part(k, v) for k, v in pairs]
        slug = "-".join(parts) or "base"
        axes = {"variant": name} if name else {}
        axes.update({k: v for k, v in pairs})
        if "base" in extra:
            axes["preset"] = extra["base"]
        out.append(Variant(slug, {**extra, **dict(pairs)}, axes))
    slugs = [v.slug for v in out]
    if len(set(slugs)) != len(slugs):
        raise UserError(f"study {study.name}: variants collide on slugs {sorted({s for s in slugs if slugs.count(s) > 1})}")
    if study.baseline and study.baseline not in slugs:
        raise UserError(f"study {study.name}: baseline {study.baseline!r} is not one of its variants; "
                        f"valid: {', '.join(slugs)}")
    return out


BUDGET_KEYS = ("train.max_steps", "train.epochs", "train.max_tokens", "train.max_time")


def with_settings(study: Study, settings: dict[str, Any]) -> Study:
    """Command-line settings that hold for every run of `study`. A budget key (or one the study's
    budget sets) goes into its budget, which a study applies over its base, any other key into its
    base overrides; a variant that sets the key itself gets the new value too (the cut-down ladder
    gives every stage its own train.max_steps). train.max_steps alone also sets train.epochs = 0,
    since epochs would replace it. A key whose value differs between the study's runs -- an axis,
    or a variant of its own -- is refused: one value for every run would drop that difference."""
    settings = dict(settings)
    if "train.max_steps" in settings and "train.epochs" not in settings:
        settings["train.epochs"] = 0
    base = base_config(study)
    runs = [(v, variant_config(study, v, study.seeds[0], base)) for v in track(variants(study), "settings", "variant")]
    for key, value in settings.items():
        section, _, name = key.partition(".")
        now = {v.slug: getattr(getattr(cfg, section, None), name, None) for v, cfg in runs}
        by_value: dict[str, str] = {}
        for slug, x in now.items():
            by_value.setdefault(repr(x), slug)  # each value with its first variant
        if len(by_value) > 1:
            shown = ", ".join(f"{slug}: {x}" for x, slug in list(by_value.items())[:4])
            raise UserError(f"--{key}: study {study.name} varies it ({shown}{', ...' if len(by_value) > 4 else ''}); "
                            f"a setting for every run cannot also be an axis")
        for name_, extra in study.variants.items():
            if key in extra:
                study.variants[name_] = {**extra, key: value}
        target = study.budget if key in BUDGET_KEYS or key in study.budget else study.overrides
        target[key] = value
    return study


def base_config(study: Study) -> RunConfig:
    return resolve_config(study.base, study.data or None, {k: text(v) for k, v in study.overrides.items()})


def variant_config(study: Study, variant: Variant, seed: int, base: RunConfig | None = None,
                   budget: dict | None = None) -> RunConfig:
    """The run config of one variant x seed; a bad key or value is a UserError naming the variant."""
    settings = {**(study.budget if budget is None else budget), **variant.overrides}
    own_base = settings.pop("base", None)  # a variant may start from its own preset (ladder stages)
    try:
        if own_base:
            base = resolve_config(str(own_base), study.data or None, {k: text(v) for k, v in study.overrides.items()})
        base = base or base_config(study)
        cfg = apply_overrides(base, {k: text(v) for k, v in settings.items()})
        check_choices(cfg)
    except UserError as err:
        raise UserError(f"study {study.name}, variant {variant.slug}: {err}") from None
    return cfg.replace(name=f"{study.name}/{variant.slug}-s{seed}", train={"seed": seed, "progress": False})


def with_seed(cfg: RunConfig, study: Study, variant: Variant, seed: int) -> RunConfig:
    """variant_config's result for another seed: the name and train.seed are all that differ, so
    the checked config is copied, not built again (sections are values: nothing edits them in place)."""
    return dataclasses.replace(cfg, name=f"{study.name}/{variant.slug}-s{seed}",
                               train=dataclasses.replace(cfg.train, seed=seed))


def plan(study: Study) -> list[RunPlan]:
    """Every run, variants outer and seeds inner; every config validated and its model built
    (once per variant: seeds share them)."""
    base = base_config(study)
    runs = []
    for v in track(variants(study), "planning", "variant"):
        first = variant_config(study, v, study.seeds[0], base)
        model_stats(first, v.slug)  # builds the model on the meta device: catches bad combinations
        runs += [RunPlan(v, s, first if i == 0 else with_seed(first, study, v, s)) for i, s in enumerate(study.seeds)]
    return runs


def track(items, desc: str, unit: str):
    """`items` with a bar on stderr once a planning step has taken more than a second (many variants),
    else silent. The clock starts after the first item, which pays one-off imports and torch's start-up:
    a quick refusal after a few variants stays one line."""
    items, bar = list(items), None
    try:
        for item in items:
            yield item
            if bar is None:
                bar = Progress(len(items), desc=desc, unit=unit, initial=1, delay=1.0, leave=False)
            else:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


TOKENIZER_VOCAB = {"byte": 257, "gpt2": 50257, "cl100k_base": 100277}


_STATS: dict[str, dict] = {}  # model_stats by model config: building one takes ~20 ms even on meta


def model_stats(cfg: RunConfig, slug: str = "") -> dict:
    """Parameters and FLOPs per token of a config's model, built on the meta device (no memory),
    once per distinct model config (the runs of a study share a few).
    The vocabulary is the config's, else the tokenizer's (a char vocabulary is assumed 128 wide)."""
    vocab = cfg.model.vocab_size or cfg.tokenizer.vocab_size or TOKENIZER_VOCAB.get(cfg.tokenizer.kind, 128)
    key = repr((cfg.model, vocab))
    if key not in _STATS:
        try:
            with torch.device("meta"):
                model = build_model(cfg.model, vocab)
        except (UserError, ValueError) as err:
            raise UserError(f"variant {slug}: {err}") from None
        _STATS[key] = {"params": model.num_params(), "params_non_embedding": model.num_params(embeddings=False),
                       "flops_per_token": model.flops_per_token(), "vocab_assumed": vocab}
    return dict(_STATS[key])
