"""Two studies' claims side by side (`lmlab table A B`): the same claim judged on two corpora or
budgets, and whether its verdict survived the change."""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.errors import UserError
from lmlab.tables import markdown


def read_claims(out: Path) -> list[dict]:
    path = out / "claims.json"
    if not path.is_file():
        raise UserError(f"{out} has no claims.json: run the study first (`lmlab table {out}` judges its claims "
                        f"when its runs are done), or give a study that declares claims")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [r for r in rows if isinstance(r, dict) and "id" in r]
    except ValueError:
        raise UserError(f"{path} is damaged; run `lmlab table {out}` to write it again") from None


def compare_rows(a: list[dict], b: list[dict]) -> list[dict]:
    by_b = {r["id"]: r for r in b}
    rows = []
    for r in a + [r for r in b if r["id"] not in {x["id"] for x in a}]:
        va = next((x["verdict"] for x in a if x["id"] == r["id"]), "—")
        vb = by_b.get(r["id"], {}).get("verdict", "—")
        rows.append({"claim": r["id"], "A": va, "B": vb,
                     "same verdict": "yes" if va == vb else ("—" if "—" in (va, vb) else "no")})
    return rows


def compare_text(a: Path, b: Path) -> str:
    rows = compare_rows(read_claims(a), read_claims(b))
    same = sum(r["same verdict"] == "yes" for r in rows)
    return (f"A = {a}\nB = {b}\n{markdown(rows)}"
            f"{same} of {len(rows)} claims have the same verdict in both\n")
