"""An lm-evaluation-harness task definition for a local jsonl in the llm-foundry schema
({"query", "choices", "gold"}, as shared/data/eval/* holds), so the harness can score the very items
`lmlab eval --tasks` scores, offline: write it into a folder and pass `--include_path FOLDER`."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def local_task_yaml(name: str, data: str | Path) -> str:
    """The YAML of a multiple-choice task `name` over the jsonl file `data` (prompt: query + "\\nAnswer:")."""
    return TEMPLATE.format(name=name, data=Path(data))
