"""Head roles, scored on repeated random token sequences [r_0 .. r_{L-1}, r_0 .. r_{L-1}]
(the TransformerLens / Olsson et al. 2022 set-up): for a query at position i,
  previous_token  weight on key i - 1 (all queries i >= 1)
  induction       weight on key i - L + 1, the token after the earlier occurrence of the current
                  token (queries in the second repeat): the pattern of an induction head
  duplicate_token weight on key i - L, the earlier occurrence itself (second repeat)
  first_token     weight on key 0, the "attention sink" (all queries i >= 1)
Each score is a mean weight, so 1 means the head does only that. Random tokens are drawn from the
ids seen in the validation windows when given (so a model trained on a small alphabet is probed
in-distribution), else from the whole vocabulary.
"""

from __future__ import annotations

import torch

from lmlab.analysis.attention import PATTERN, attention_layers, body
from lmlab.model.hooks import hooks

ROLES = ("previous_token", "induction", "duplicate_token", "first_token")


def repeated_tokens(n_seqs: int, half: int, token_ids: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(n_seqs, 2 * half): a random sequence of `half` ids from `token_ids`, twice."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(token_ids), (n_seqs, half), generator=gen)
    r = token_ids[pick]  # (N, half)
    return torch.cat([r, r], dim=1)


def role_scores_from_pattern(pattern: torch.Tensor, half: int) -> dict[str, torch.Tensor]:
    """pattern (B, H, 2L, 2L) of repeated sequences -> {role: (H,) mean weight}."""
    p = pattern.detach().float()
    T = p.size(-1)
    i = torch.arange(T)
    second = i[half:]  # queries in the second repeat
    return {"previous_token": p[:, :, i[1:], i[1:] - 1].mean((0, 2)),
            "induction": p[:, :, second, second - half + 1].mean((0, 2)),
            "duplicate_token": p[:, :, second, second - half].mean((0, 2)),
            "first_token": p[:, :, i[1:], 0].mean((0, 2))}


@torch.no_grad()
def head_roles(model, n_seqs: int = 32, half: int | None = None, token_ids=None, seed: int = 0,
               batch_size: int = 16) -> dict:
    """Scores of every head for each role; `half` defaults to min(context_len // 2, 64)."""
    n_layer, n_head = attention_layers(model), model.config.n_head
    half = half or max(min(model.config.context_len // 2, 64), 2)
    if token_ids is None:
        token_ids = torch.arange(model.config.vocab_size)
    tokens = repeated_tokens(n_seqs, half, torch.as_tensor(token_ids), seed)
    sums = {r: torch.zeros(n_layer, n_head) for r in ROLES}
    device = next(model.parameters()).device

    def collect(pattern, name):
        layer = int(name.split(".")[1])
        for role, value in role_scores_from_pattern(pattern.cpu(), half).items():
            sums[role][layer] += value * pattern.size(0)

    was_training = model.training
    model.eval()
    try:
        with hooks(model, {PATTERN: collect}):
            for i in range(0, n_seqs, batch_size):
                body(model)(tokens[i:i + batch_size].to(device))
    finally:
        model.train(was_training)
    scores = {r: (s / n_seqs) for r, s in sums.items()}
    return {"half": half, "n_seqs": n_seqs, "scores": {r: s.tolist() for r, s in scores.items()},
            "top": {r: top_heads(s) for r, s in scores.items()}}


def top_heads(scores: torch.Tensor, k: int = 3) -> list[dict]:
    flat = scores.flatten()
    order = torch.argsort(flat, descending=True)[:k]
    H = scores.size(1)
    return [{"layer": int(j) // H, "head": int(j) % H, "score": float(flat[j])} for j in order]


def head_rows(roles: dict) -> list[dict]:
    s = roles["scores"]
    L, H = len(s["induction"]), len(s["induction"][0])
    return [{"layer": i, "head": h, **{r: s[r][i][h] for r in ROLES}} for i in range(L) for h in range(H)]


def format_roles(roles: dict) -> str:
    lines = [f"head roles on {roles['n_seqs']} repeated random sequences of 2 x {roles['half']} tokens "
             f"(mean attention weight; 1 = the head does only that)"]
    for role in ROLES:
        tops = ", ".join(f"L{t['layer']}.H{t['head']} {t['score']:.3f}" for t in roles["top"][role])
        lines.append(f"  {role:<16} top: {tops}")
    return "\n".join(lines)
