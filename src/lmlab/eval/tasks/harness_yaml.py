"""An lm-evaluation-harness task definition for a local jsonl in the llm-foundry schema
({"query", "choices", "gold"}, as shared/data/eval/* holds), so the harness can score the very items
`lmlab eval --tasks` scores, offline: write it into a folder and pass `--include_path FOLDER`.
The prompt is the one lmlab's own task builds from such a row: the query plus that task's suffix
("\\nAnswer:" for ARC and BoolQ, "Answer:" for PIQA, whose queries end in a newline, nothing for
OpenBookQA, COPA and SIQA)."""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.errors import UserError

TEMPLATE = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: {text}
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def local_task_yaml(name: str, data: str | Path, task: str) -> str:
    """The YAML of a multiple-choice task `name` over the jsonl file `data`, prompted as lmlab's
    task `task` (e.g. arc_easy, piqa, copa) prompts the same rows."""
    from lmlab.eval.tasks.specs import TASKS

    suffix = getattr(TASKS.get(task).row, "prompt_suffix", None)
    if suffix is None:
        mc = [n for n in TASKS.names() if getattr(TASKS.get(n).row, "prompt_suffix", None) is not None]
        raise UserError(f"task {task!r} does not read query/choices/gold rows; valid: {', '.join(mc)}")
    return TEMPLATE.format(name=name, data=Path(data), text=json.dumps("{{query}}" + suffix))
