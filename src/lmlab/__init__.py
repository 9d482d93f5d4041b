"""lmlab: a laboratory for small decoder-only language models.

The stages follow the data flow: data -> tokenizer -> batches -> model -> train ->
checkpoint -> eval / generate -> report. The names below are the Python API; the CLI
(`lmlab --help`) is a thin layer over the same functions.
"""

__version__ = "0.1.0"

from lmlab.config import RunConfig, load_config  # noqa: E402
from lmlab.errors import LmlabError, UserError  # noqa: E402

__all__ = ["RunConfig", "load_config", "LmlabError", "UserError", "__version__"]
