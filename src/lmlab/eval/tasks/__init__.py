"""Zero-shot multiple-choice tasks (HellaSwag, ARC, PIQA, WinoGrande, BoolQ, OpenBookQA, COPA, SIQa, LAMBADA)
scored in-process with lm-evaluation-harness's conventions.
Names load on first use (lmlab.lazy), so the CLI's parser (which imports `commands`) does not import torch."""

from lmlab.lazy import lazy

__getattr__, __all__ = lazy(__name__, {"TASKS": "specs", "Item": "specs", "TaskSpec": "specs",
                                       "evaluate_tasks": "run", "score_task": "run",
                                       "TaskSelection": "loading", "Scoring": "scoring"})
