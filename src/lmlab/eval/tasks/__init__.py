"""Zero-shot multiple-choice tasks (HellaSwag, ARC, PIQA, WinoGrande, BoolQ, OpenBookQA, COPA, SIQa, LAMBADA)
scored in-process with lm-evaluation-harness's conventions."""

from lmlab.eval.tasks.run import evaluate_tasks, score_task
from lmlab.eval.tasks.specs import TASKS, Item, TaskSpec

__all__ = ["TASKS", "Item", "TaskSpec", "evaluate_tasks", "score_task"]
