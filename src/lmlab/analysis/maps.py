"""Attention maps of one prompt: the (query x key) pattern of each head, the tokens as labels,
and the top-k attended tokens of each query as text (Pico-LLM's "query 11 ('Lily') attends to
'girl' 0.399 ...")."""

from __future__ import annotations

import torch

from lmlab.analysis.attention import attention_layers
from lmlab.errors import UserError
from lmlab.model.hooks import run_with_cache
from lmlab.load import check_known


def encode_prompt(tokenizer, text: str, context_len: int, what: str = "--prompt") -> list[int]:
    """The prompt's ids; empty prompts, prompts with characters the tokenizer does not know (they
    would become <unk>) and prompts longer than the context are refused, naming `what`."""
    if not text or not text.strip():
        raise UserError(f"{what} is empty; give some text (one prompt per line in a prompts file)")
    check_known(tokenizer, text, what)
    ids = tokenizer.encode(text)
    if len(ids) > context_len:
        raise UserError(f"{what} is {len(ids)} tokens long; the model's context is model.context_len="
                        f"{context_len} tokens: shorten it")
    return ids


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """Each token's text, with whitespace made visible for axis labels."""
    out = []
    for i in ids:
        text = tokenizer.decode([i])
        out.append(text.replace("\n", "\\n").replace(" ", "·") or f"<{i}>")
    return out


@torch.no_grad()
def prompt_patterns(model, ids: list[int]) -> torch.Tensor:
    """(L, H, T, T) attention patterns of the prompt."""
    n_layer = attention_layers(model)
    device = next(model.parameters()).device
    _, cache = run_with_cache(model, torch.tensor([ids], device=device), "blocks.*.attn.hook_pattern")
    return torch.stack([cache[f"blocks.{i}.attn.hook_pattern"][0].float().cpu() for i in range(n_layer)])


def check_head(layer: int | None, head: int | None, n_layer: int, n_head: int) -> None:
    if layer is not None and not 0 <= layer < n_layer:
        raise UserError(f"--layer {layer} is out of range; the model has layers 0..{n_layer - 1}")
    if head is not None and not 0 <= head < n_head:
        raise UserError(f"--head {head} is out of range; the model has heads 0..{n_head - 1}")
    if head is not None and layer is None:
        raise UserError("--head needs --layer (e.g. --layer 1 --head 2)")


def top_attended(pattern: torch.Tensor, labels: list[str], k: int = 3) -> list[dict]:
    """pattern (T, T) of one head -> per query its k largest weights with the key tokens."""
    rows = []
    for q in range(pattern.size(0)):
        w = pattern[q, :q + 1]
        vals, keys = torch.topk(w, min(k, q + 1))
        rows.append({"query": q, "token": labels[q],
                     "top": [{"key": int(j), "token": labels[int(j)], "weight": float(v)} for v, j in zip(vals, keys)]})
    return rows


def format_top(rows: list[dict], layer: int, head: int) -> str:
    lines = [f"layer {layer} head {head}: top attended tokens per query"]
    for r in rows:
        tops = ", ".join(f"{t['key']} ({t['token']!r}) {t['weight']:.3f}" for t in r["top"])
        lines.append(f"  query {r['query']} ({r['token']!r}) attends to {tops}")
    return "\n".join(lines)


def attention_map(model, tokenizer, text: str, layer: int | None = None, head: int | None = None,
                  k: int = 3) -> dict:
    """Patterns and top-k tables of a prompt for every head, or one layer / one head."""
    cfg = model.config
    ids = encode_prompt(tokenizer, text, cfg.context_len)
    check_head(layer, head, attention_layers(model), cfg.n_head)
    patterns = prompt_patterns(model, ids)  # (L, H, T, T)
    labels = token_labels(tokenizer, ids)
    layers = [layer] if layer is not None else list(range(patterns.size(0)))
    heads = [head] if head is not None else list(range(patterns.size(1)))
    top = {f"{l}.{h}": top_attended(patterns[l, h], labels, k) for l in layers for h in heads}
    return {"prompt": text, "tokens": labels, "ids": ids, "layers": layers, "heads": heads,
            "patterns": patterns, "top": top}
