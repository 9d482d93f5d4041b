"""RunConfig = {data, tokenizer, model, train, eval}: one typed tree per run.

Saved with every run as `config.toml`, loaded from TOML, and edited from the command line
with dotted overrides (`--train.lr=3e-4`). Every section validates itself on construction
and fails with one line naming the field, the bad value and what would be valid.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmlab.config_base import (
    Section,
    coerce,
    is_str_list,
    require,
    require_choice,
    section_list_type,
)
from lmlab.data.config import DataConfig
from lmlab.errors import UserError
from lmlab.hardware import BACKENDS, PRECISIONS, device_choices, device_kind
from lmlab.model.config import ModelConfig


@dataclass
class TokenizerConfig(Section):
    """How text becomes token ids."""

    kind: str = "char"  # char | byte | bpe (trained on the training split) | gpt2 | cl100k_base (tiktoken) | hf
    path: str = ""  # pretrained file: hf: a tokenizer.json; gpt2: gpt2.tiktoken or a folder with encoder.json +
    # vocab.bpe; cl100k_base: cl100k_base.tiktoken; "" = download by name (needs network)
    vocab_size: int = 0  # bpe: tokens in all (256 bytes + merges + <|endoftext|>); 0 = the kind's own (bpe: 4096)
    min_frequency: int = 2  # bpe: merge a byte pair only if it occurs at least this often in the training split

    _section = "tokenizer"

    def __post_init__(self) -> None:
        require(self.vocab_size >= 0, self, "vocab_size", "0 (the kind's default) or a positive integer")
        require(self.min_frequency >= 1, self, "min_frequency", "a positive integer")


@dataclass
class TrainConfig(Section):
    """Optimization, precision, logging and checkpointing."""

    max_steps: int = 2000  # optimizer steps (replaced by train.epochs when that is set)
    epochs: int = 0  # passes over every training row, each in its own seeded order; 0 = use max_steps
    max_tokens: int = 0  # stop after this many training tokens (the schedule ends there too); 0 = no cap
    max_time: float = 0.0  # stop after this many wall-clock seconds (evaluates and saves first); 0 = no limit
    batch_size: int = 32  # sequences per micro-batch, all ranks together (each of N ranks trains on batch_size / N)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # floor of the cosine decay, as a fraction of train.lr
    schedule: str = "cosine"  # cosine (linear warmup, cosine decay) | constant (warmup, then flat)
    warmup_steps: int = 100
    decay_steps: int = 0  # length of the cosine decay; 0 = max_steps
    optimizer: str = "adamw"  # adamw | muon (Muon on the hidden matrices, AdamW on the rest; see lmlab.train.optim)
    muon_lr: float = 0.02  # muon: peak lr of the hidden matrices (the schedule scales it like train.lr)
    muon_momentum: float = 0.95  # muon: momentum (Nesterov)
    weight_decay: float = 0.1  # applied to matrices only (see lmlab.train.optim)
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global grad norm; 0 = no clipping (the norm is still logged)
    precision: str = "auto"  # a lmlab.hardware.PRECISIONS name: auto, fp32, bf16, fp16 (CUDA only)
    device: str = "auto"  # a lmlab.hardware.DEVICES name: auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps
    seed: int = 1337
    compile: bool = False  # torch.compile the model
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    checkpoint_every: int = 0  # also save `last` every N steps; 0 = at each evaluation only
    patience: int = 0  # early stopping: stop after N evaluations without a new best; 0 = off
    log_every: int = 1  # write a metrics.jsonl train record every N steps
    progress: bool = True  # progress bar on stderr
    skip_nonfinite: int = 0  # skip (no update) up to N steps whose loss or grad norm is NaN/inf; 0 = stop at once
    debug_nan_at_step: int = 0  # fault testing: make the loss of this step (1-based) NaN; 0 = off
    parallel: str = "none"  # none | ddp | fsdp (per-block FSDP2); ddp/fsdp run under torchrun or `lmlab train --nproc N`
    dist_backend: str = "auto"  # a lmlab.hardware.BACKENDS name: auto (nccl on CUDA, gloo on CPU), gloo, nccl
    fsdp_offload: bool = False  # fsdp: keep parameters, gradients and optimizer state on the CPU between uses
    loggers: list[str] = field(default_factory=lambda: ["jsonl"])  # experiment trackers: jsonl (always on),
    # tensorboard (event files in RUN/tensorboard), wandb (offline in RUN/wandb unless WANDB_API_KEY is set)
    keep_checkpoints: str = "none"  # none | log: also keep checkpoints/step-XXXXXX at steps 0, 1, 2, 4, ...
    # up to train.keep_every, then every keep_every steps, and the last (Pythia-style; for lmlab analyze)
    keep_every: int = 0  # spacing of kept checkpoints after the log-spaced start; 0 = eval.every

    _section = "train"

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "log_every"):
            require(getattr(self, name) >= 1, self, name, "a positive integer")
        for name in ("warmup_steps", "decay_steps", "checkpoint_every", "patience", "threads", "skip_nonfinite",
                     "debug_nan_at_step", "epochs", "max_tokens"):
            require(getattr(self, name) >= 0, self, name, "a non-negative integer")
        require(self.lr > 0, self, "lr", "a positive float")
        require(self.muon_lr > 0, self, "muon_lr", "a positive float")
        require(0 <= self.muon_momentum < 1, self, "muon_momentum", "a float in [0, 1)")
        require(not (self.optimizer == "muon" and self.parallel == "fsdp"), self, "optimizer",
                "adamw with train.parallel=fsdp (Muon orthogonalizes whole matrices; fsdp shards them)")
        require(self.max_time >= 0, self, "max_time", "a non-negative number of seconds (0 = no limit)")
        require(0 <= self.min_lr_ratio <= 1, self, "min_lr_ratio", "a float in [0, 1]")
        require(self.weight_decay >= 0, self, "weight_decay", "a non-negative float")
        require(0 <= self.beta1 < 1, self, "beta1", "a float in [0, 1)")
        require(0 <= self.beta2 < 1, self, "beta2", "a float in [0, 1)")
        require(self.grad_clip >= 0, self, "grad_clip", "a non-negative float (0 = off)")
        require_choice(self, "precision", tuple(PRECISIONS))
        require(self.keep_every >= 0, self, "keep_every", "a non-negative integer (0 = eval.every)")
        require_choice(self, "dist_backend", tuple(BACKENDS))
        require(device_kind(self.device) is not None, self, "device", device_choices())


@dataclass
class EvalConfig(Section):
    """How often and on how much held-out text the model is evaluated."""

    every: int = 250  # evaluate (and save `last`) every N steps; the final step always evaluates
    max_tokens: int = 131072  # scored validation tokens per evaluation; 0 = the whole split
    batch_size: int = 0  # sequences per eval batch; 0 = train.batch_size

    _section = "eval"

    def __post_init__(self) -> None:
        require(self.every >= 1, self, "every", "a positive integer")
        require(self.max_tokens >= 0, self, "max_tokens", "0 (all) or a positive integer")
        require(self.batch_size >= 0, self, "batch_size", "0 (= train.batch_size) or a positive integer")


SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig, "tokenizer": TokenizerConfig, "model": ModelConfig,
    "train": TrainConfig, "eval": EvalConfig,
}


@dataclass
class RunConfig:
    """The whole experiment. `name` labels the run; sections are typed dataclasses."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{s: getattr(self, s).to_dict() for s in SECTIONS}}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> "RunConfig":
        unknown = sorted(set(values) - set(SECTIONS) - {"name"})
        if unknown:
            raise UserError(f"{where}: unknown section {unknown[0]!r}; valid: name, {', '.join(SECTIONS)}")
        parts = {}
        for name, section in SECTIONS.items():
            body = values.get(name, {})
            if not isinstance(body, dict):
                raise UserError(f"{where}: {name} must be a table of fields, got {body!r}")
            parts[name] = section.from_dict(body, where)
        cfg = cls(name=str(values.get("name", "run")), **parts)
        check_choices(cfg)
        return cfg

    def replace(self, **sections: dict[str, Any]) -> "RunConfig":
        """A copy with some fields changed: `cfg.replace(train={"lr": 3e-4})`."""
        values = self.to_dict()
        for section, changes in sections.items():
            if section == "name":
                values["name"] = changes
            else:
                values[section] = {**values[section], **changes}
        return RunConfig.from_dict(values)

    def to_toml(self) -> str:
        """TOML through tomli-w: scalars of each section, then its lists of tables ([[data.sources]])
        with only the fields that differ from their defaults; empty lists are left out."""
        import tomli_w

        values: dict[str, Any] = {"name": self.name}
        for name in SECTIONS:
            section = getattr(self, name)
            types = section.field_types()
            body = {k: v for k, v in section.to_dict().items() if not section_list_type(types[k])}
            for k, items in section.to_dict().items():
                if section_list_type(types[k]) and items:  # lists of tables; lists of strings stay above
                    body[k] = [item.non_defaults() for item in getattr(section, k)]
            values[name] = body
        return tomli_w.dumps(values)

    def save(self, path: str | Path) -> None:
        from lmlab.io import atomic_write_text

        atomic_write_text(Path(path), self.to_toml())


# Fields whose default changed after runs were saved without them: a run's saved config lists
# every field, so one that is missing predates the field and gets the value that was in force.
SAVED_RUN_DEFAULTS = {("model", "vocab_pad"): 0}  # padding to 64 rows came later; old weights are unpadded


def load_config(path: str | Path, saved_run: bool = False) -> RunConfig:
    """Read a config TOML file (as written with every run, or by hand listing only changes).
    `saved_run`: the file is a run directory's config.toml (see SAVED_RUN_DEFAULTS)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    if saved_run:
        for (section, name), value in SAVED_RUN_DEFAULTS.items():
            if isinstance(values.get(section), dict):
                values[section].setdefault(name, value)
    return RunConfig.from_dict(values, where=str(path))


def apply_overrides(cfg: RunConfig, overrides: dict[str, str]) -> RunConfig:
    """Apply `{"train.lr": "3e-4", ...}` (strings from the command line), type-checked per field."""
    values = cfg.to_dict()
    for key, text in overrides.items():
        if key == "name":
            values["name"] = text
            continue
        section, _, name = key.partition(".")
        if section not in SECTIONS or not name:
            raise UserError(f"--{key}: unknown setting; use --SECTION.FIELD=VALUE with SECTION one of "
                            f"{', '.join(SECTIONS)}")
        types = SECTIONS[section].field_types()
        head, _, rest = name.partition(".")
        item = section_list_type(types.get(head))
        if item is not None:  # --data.sources.0.weight=0.5
            index, _, sub = rest.partition(".")
            items = values[section][head]
            if not index.isdigit() or int(index) >= len(items) or sub not in item.field_types():
                raise UserError(f"--{key}: expected --{section}.{head}.N.FIELD with N in 0..{len(items) - 1} "
                                f"and FIELD one of {', '.join(item.field_types())}")
            items[int(index)][sub] = coerce(text, item.field_types()[sub], key)
            continue
        if name not in types:
            raise UserError(f"--{key}: unknown field; valid fields of {section}: {', '.join(types)}")
        values[section][name] = coerce(text, types[name], key)
    return RunConfig.from_dict(values, where="command line")


def check_choices(cfg: RunConfig) -> None:
    """Check every string field that a registry resolves (model.norm, tokenizer.kind, ...)."""
    from lmlab.registry import config_registries

    for field_name, registry in config_registries().items():
        section, _, name = field_name.partition(".")
        value = getattr(getattr(cfg, section), name)
        for item in value if isinstance(value, list) else [value]:  # list fields name several components
            registry.get(item)
    from lmlab.data.sources import SOURCES

    for i, source in enumerate(cfg.data.sources):
        try:
            SOURCES.get(source.kind)
        except UserError as err:
            raise UserError(f"data.sources[{i}]: {err}") from None


def field_docs() -> dict[str, list[tuple[str, str, str]]]:
    """For help texts: per section, (field, type, default) rows."""
    rows = {}
    for name, section in SECTIONS.items():
        types = section.field_types()
        rows[name] = [(f.name, "str,..." if is_str_list(types[f.name]) else
                       getattr(types[f.name], "__name__", str(types[f.name])),
                       repr(f.default) if f.default is not dataclasses.MISSING else repr(f.default_factory()))
                      for f in dataclasses.fields(section)]
    return rows


def format_fields() -> str:
    """Every config field with its type and default, as `lmlab presets --fields` prints them."""
    from lmlab.data.config import SourceConfig

    lines = []
    for section, rows in field_docs().items():
        lines.append(f"\n[{section}]")
        for name, kind, default in rows:
            if kind == "list":
                lines.append(f"  --{section}.{name}.N.FIELD  (a list of tables; see [[{section}.{name}]] below)")
            else:
                lines.append(f"  --{section}.{name}=<{kind}>  (default {default})")
    lines.append("\n[[data.sources]]  (a TOML table per source; on the command line --data.sources.N.FIELD=VALUE)")
    lines += [f"  {f}=<{kind.__name__}>  (default {getattr(SourceConfig(), f)!r})"
              for f, kind in SourceConfig.field_types().items()]
    return "\n".join(lines)
