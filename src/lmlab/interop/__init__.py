"""Hugging Face interop: run directories to and from `transformers` model folders.

    family     the HF_FAMILIES registry and the Family adapter base; hf_family(cfg)
    gpt2, llama   one adapter per model family: config and weights, both ways
    models     to_hf_model / from_hf_model through the adapters
    tokenizers lmlab tokenizers as transformers tokenizers (one exporter per tokenizer kind)
    runs       `lmlab export` / `lmlab import`: export_run, import_run

Everything that imports `transformers` does so inside the function that needs it.
"""

from lmlab.interop.family import HF_FAMILIES, hf_family
from lmlab.interop.models import from_hf_config, from_hf_model, to_hf_model
from lmlab.interop.runs import export_run, import_run
from lmlab.interop.tokenizers import TOKENIZER_EXPORTS, to_hf_tokenizer

__all__ = ["HF_FAMILIES", "TOKENIZER_EXPORTS", "export_run", "from_hf_config", "from_hf_model", "hf_family",
           "import_run", "to_hf_model", "to_hf_tokenizer"]
