"""Zero-shot multiple-choice tasks (HellaSwag, ARC, PIQA, WinoGrande, BoolQ, OpenBookQA, COPA, SIQa, LAMBADA)
scored in-process with lm-evaluation-harness's conventions.

Names are imported on first use, so that the CLI's parser (which imports `commands`) does not import torch."""

_WHERE = {"TASKS": "specs", "Item": "specs", "TaskSpec": "specs", "evaluate_tasks": "run", "score_task": "run"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"lmlab.eval.tasks.{_WHERE[name]}"), name)
    raise AttributeError(name)


__all__ = sorted(_WHERE)
