"""Named experiments: functions that return a RunConfig. `lmlab presets` lists them;
`lmlab train NAME --section.field=value` runs one with changes.

    registry   PRESETS, @preset, get_preset, describe_presets
    resolve    resolve_config(preset|file, --data, overrides) -> RunConfig (CLI, studies, launcher)
    basic      demo, tiny, the tinyshakespeare recipes
    corpora    the seed studies' corpora and vocabularies as [[data.sources]] lists
    llmini, minigpt, ladder, llm_lite, pico   one module per seed study (shared/seeds/*.md)
    scale      full-size runs for one 24 GB GPU or many (gpt2_124m)

Seed-study presets set what their write-up states; a field the write-up leaves unstated keeps
lmlab's default unless a comment says where the value comes from. Vocabularies are set
explicitly (`model.vocab_size`) and match the tokenizer: `gpt2` and `cl100k_base` load by name
through tiktoken when online, or from a local file with `--tokenizer.path=...`; `bpe` is trained
on the training split. Each family reads its seed's corpus from the data presets (corpora.py);
relative paths resolve under data.root / $LMLAB_DATA, and `--data PATH` trains on a file.
Parameter counts (tests/test_presets_seeds.py) are `model.num_params()`: every trainable
parameter, tied weights once, sinusoidal tables (buffers) not at all.
"""

from lmlab.presets import basic, corpora, ladder, llm_lite, llmini, minigpt, pico, scale  # noqa: F401  (register)
from lmlab.presets.registry import PRESETS, describe_presets, get_preset, preset
from lmlab.presets.resolve import resolve_config

SEED_MODULES = (llmini, minigpt, ladder, llm_lite, pico)  # the five seed studies, one module each

__all__ = ["PRESETS", "SEED_MODULES", "describe_presets", "get_preset", "preset", "resolve_config"]
