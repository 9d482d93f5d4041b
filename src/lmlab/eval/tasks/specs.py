"""The zero-shot tasks: how a row of each task's file becomes (context, choices, gold).

One `TaskSpec` per task, registered by name. Templates follow lm-evaluation-harness's task YAMLs
(ARC and PIQA end with "\\nAnswer:", BoolQ with "\\nAnswer:", HellaSwag is cleaned like its
`preprocess`), so the numbers are comparable with published harness numbers; the choice is
scored as `target_delimiter + choice` with the harness's delimiter " ".

Row formats: the llm-foundry ICL jsonl in shared/data/eval ({"query", "choices", "gold"};
WinoGrande {"context_options", "continuation", "gold"}; LAMBADA {"context", "continuation"}),
HellaSwag's original jsonl and its 6-lines-per-item text, and each dataset's Hugging Face schema
(`hf_rows`) for users who load by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from lmlab.registry import Registry

DELIMITER = " "  # lm-eval's target_delimiter between context and choice


@dataclass
class Item:
    """One scored question. Multiple choice: `context` + each of `choices`. Partial scoring
    (WinoGrande): each of `contexts` + the shared `choices[0]`. LAMBADA: one choice, the last word."""

    context: str
    choices: list[str]
    gold: int
    contexts: list[str] | None = None  # partial scoring: one context per option

    @property
    def n_options(self) -> int:
        return len(self.contexts) if self.contexts is not None else len(self.choices)


@dataclass
class TaskSpec:
    """Where a task's files live and how their rows become items."""

    name: str
    folder: str  # under <data root>/eval/
    files: tuple[str, ...]  # tried in order inside the folder
    row: Callable[[dict], Item]  # llm-foundry / original jsonl row -> Item
    required: tuple[str, ...]  # fields a jsonl row must have
    kind: str = "multiple_choice"  # multiple_choice | partial | last_word
    hf: tuple[str, str | None, str] | None = None  # (path, config name, split) on the HF hub
    hf_row: Callable[[dict], Item] | None = None
    hf_required: tuple[str, ...] = ()
    doc: str = ""
    extra: dict = field(default_factory=dict)


TASKS = Registry("eval.tasks", config_field=False, noun="task")  # task name -> TaskSpec


def task(spec: TaskSpec) -> TaskSpec:
    return TASKS.register(spec.name, spec.doc)(spec)


def text(value, name: str) -> str:
    """A row's text field, refused (not converted) when it is not a string."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def texts(value, name: str) -> list[str]:
    """A row's list of options: a non-empty list of non-empty strings (a string is not split)."""
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
        raise ValueError(f"{name} must be a non-empty list of non-empty strings, got {value!r}")
    return value


def index(value, name: str) -> int:
    """A row's answer index: an integer, or its decimal text (some datasets store labels as "1")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def _mc(suffix: str = "") -> Callable[[dict], Item]:
    """llm-foundry {"query", "choices", "gold"}; `suffix` completes the harness's prompt."""
    def row(r: dict) -> Item:
        return Item(text(r["query"], "query") + suffix, texts(r["choices"], "choices"), index(r["gold"], "gold"))
    row.prompt_suffix = suffix  # read by harness_yaml, which writes the same prompt for lm-eval
    return row


def hellaswag_clean(text: str) -> str:
    """lm-eval's HellaSwag `preprocess`: strip, " [title]" -> ". ", drop [tags], no double spaces."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_row(r: dict) -> Item:
    """Original rowanz (and HF Rowan/hellaswag) schema."""
    ctx = text(r["ctx_a"], "ctx_a") + " " + text(r["ctx_b"], "ctx_b").capitalize()
    return Item(hellaswag_clean(text(r["activity_label"], "activity_label") + ": " + ctx),
                [hellaswag_clean(e) for e in texts(r["endings"], "endings")], index(r["label"], "label"))


def winogrande_row(r: dict) -> Item:
    opts = texts(r["context_options"], "context_options")
    return Item(opts[0], [text(r["continuation"], "continuation")], index(r["gold"], "gold"), contexts=opts)


def winogrande_hf(r: dict) -> Item:
    """HF allenai/winogrande: the sentence is split at "_"; each option fills it (lm-eval's partial scoring)."""
    idx = r["sentence"].index("_")
    contexts = [r["sentence"][:idx] + r[f"option{i}"] for i in (1, 2)]
    cont = r["sentence"][idx + 1:].strip()
    return Item(contexts[0], [cont], int(r["answer"]) - 1, contexts=contexts)


def lambada_row(r: dict) -> Item:
    return Item(text(r["context"], "context"), [text(r["continuation"], "continuation").strip()], 0)


def lambada_hf(r: dict) -> Item:
    """EleutherAI/lambada_openai: the last space-separated word is the target (lm-eval's template)."""
    words = r["text"].split(" ")
    return Item(" ".join(words[:-1]), [words[-1]], 0)


def _hf_choices(r: dict, question: str, suffix: str) -> Item:
    labels = list(r["choices"]["label"])
    return Item(question + suffix, list(r["choices"]["text"]), labels.index(r["answerKey"]))


MC = ("query", "choices", "gold")
ARC_HF = ("question", "choices", "answerKey")

task(TaskSpec("hellaswag", "hellaswag", ("hellaswag_val.jsonl", "hellaswag_val_full.txt", "hellaswag_val_sample1000.jsonl"),
              hellaswag_row, ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
              hf=("Rowan/hellaswag", None, "validation"), hf_row=hellaswag_row,
              hf_required=("activity_label", "ctx_a", "ctx_b", "endings", "label"),
              doc="HellaSwag validation: pick the sentence ending (4 choices)"))
task(TaskSpec("arc_easy", "arc_easy", ("arc_easy.jsonl",), _mc("\nAnswer:"), MC,
              hf=("allenai/ai2_arc", "ARC-Easy", "test"), hf_required=ARC_HF,
              hf_row=lambda r: _hf_choices(r, "Question: " + r["question"], "\nAnswer:"),
              doc="ARC-Easy test: grade-school science questions"))
task(TaskSpec("arc_challenge", "arc_challenge", ("arc_challenge.jsonl",), _mc("\nAnswer:"), MC,
              hf=("allenai/ai2_arc", "ARC-Challenge", "test"), hf_required=ARC_HF,
              hf_row=lambda r: _hf_choices(r, "Question: " + r["question"], "\nAnswer:"),
              doc="ARC-Challenge test: the harder science questions"))
task(TaskSpec("piqa", "piqa", ("piqa.jsonl",), _mc("Answer:"), MC,
              hf=("ybisk/piqa", None, "validation"), hf_required=("goal", "sol1", "sol2", "label"),
              hf_row=lambda r: Item(f"Question: {r['goal']}\nAnswer:", [r["sol1"], r["sol2"]], int(r["label"])),
              doc="PIQA validation: physical commonsense, 2 solutions"))
task(TaskSpec("winogrande", "winogrande", ("winogrande.jsonl",), winogrande_row,
              ("context_options", "continuation", "gold"), kind="partial",
              hf=("allenai/winogrande", "winogrande_xl", "validation"), hf_row=winogrande_hf,
              hf_required=("sentence", "option1", "option2", "answer"),
              doc="WinoGrande validation: partial scoring of the shared continuation"))
task(TaskSpec("boolq", "boolq", ("boolq.jsonl",), _mc("\nAnswer:"), MC,
              hf=("google/boolq", None, "validation"), hf_required=("question", "passage", "answer"),
              hf_row=lambda r: Item(f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", ["no", "yes"],
                                    int(bool(r["answer"]))),
              doc="BoolQ validation: yes/no questions about a passage"))
task(TaskSpec("openbook_qa", "openbook_qa", ("openbook_qa.jsonl",), _mc(), MC,
              hf=("allenai/openbookqa", "main", "test"), hf_required=("question_stem", "choices", "answerKey"),
              hf_row=lambda r: _hf_choices(r, r["question_stem"], ""),
              doc="OpenBookQA test: elementary science, 4 choices"))
task(TaskSpec("copa", "copa", ("copa.jsonl",), _mc(), MC,
              hf=("aps/super_glue", "copa", "validation"),
              hf_required=("premise", "choice1", "choice2", "question", "label"),
              hf_row=lambda r: Item(r["premise"].strip()[:-1] + (" because" if r["question"] == "cause"
                                                                 else " therefore"),  # lm-eval's copa
                                    [c[0].lower() + c[1:] for c in (r["choice1"], r["choice2"])], int(r["label"])),
              doc="COPA: cause or effect, 2 choices"))
task(TaskSpec("siqa", "siqa", ("siqa.jsonl",), _mc(), MC,
              hf=("allenai/social_i_qa", None, "validation"),
              hf_required=("context", "question", "answerA", "answerB", "answerC", "label"),
              hf_row=lambda r: Item(f"Q: {r['context']} {r['question']}\nA:", [r["answerA"], r["answerB"], r["answerC"]],
                                    int(r["label"]) - 1),
              doc="Social IQa validation: social commonsense"))
task(TaskSpec("lambada", "lambada_openai", ("lambada_openai.jsonl",), lambada_row, ("context", "continuation"),
              kind="last_word", hf=("EleutherAI/lambada_openai", "default", "test"), hf_row=lambada_hf,
              hf_required=("text",), doc="LAMBADA (OpenAI): last-word accuracy and perplexity"))
