"""The five seed studies (shared/seeds/*.md), one module each; importing this package registers
them in lmlab.study.library.STUDIES."""

from lmlab.study.library import SIZES, STUDIES, describe_studies, get_study
from lmlab.study.seeds import llm_lite, llmini, minigpt, mytnano, pico  # noqa: F401  (they register)

__all__ = ["SIZES", "STUDIES", "describe_studies", "get_study"]
