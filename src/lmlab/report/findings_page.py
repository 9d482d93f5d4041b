"""The study page's findings: each claim with the seed's evidence, lmlab's measurement and the
computed verdict; the seed's tables beside ours; what every instrument measured."""

from __future__ import annotations

from lmlab.report import tables as T
from lmlab.report.load import StudyData
from lmlab.report.page import PageBlock, PageSection, existing_figure, table

CLAIM_INTRO = ("Each verdict is computed from the per-seed measurements: holds / does not hold (p < 0.05 "
               "and beyond the seed-to-seed noise floor), within noise (the whole 95% interval inside "
               "the margin), unresolved (the study cannot tell at this budget: 'detects' gives the "
               "smallest effect it could find), not tested (a variant or instrument failed).")


def claims_section(study: StudyData) -> PageSection:
    s = PageSection("claims", "Claims and verdicts", intro=CLAIM_INTRO if study.claims else "")
    if study.claims:
        rows = [{"claim": r.get("claim"), "seed's evidence": r.get("seed"), "lmlab measured": r.get("measured"),
                 "verdict": r.get("verdict"), "why": r.get("why")} for r in study.claims]
        s.blocks.append(table(T.rows_table("Claims", rows)))
    for t in study.seed_tables:
        note = f"Source: {t.get('source', '')}." + (f" Set-up differences: {t['note']}" if t.get("note") else "")
        s.blocks.append(table(T.rows_table(f"Seed's table: {t.get('title', '')}", t.get("rows", []), note=note)))
    return s


def sanity_section(study: StudyData) -> PageSection:
    """Every run's sanity checks (lmlab.sanity): the failing and warning runs first, named."""
    from lmlab.errors import UserError
    from lmlab.sanity import sanity_rows

    s = PageSection("sanity", "Sanity checks")
    try:
        rows = sanity_rows(study.runs)
    except UserError as err:
        s.blocks.append(PageBlock("text", text=f"not checked: {err}"))
        return s
    bad = [r for r in rows if r.get("status") in ("fail", "warn")]
    s.intro = (f"{len(bad)} of {len(rows)} runs fail or warn a check." if bad else
               f"All {len(rows)} runs pass every applicable check.") if rows else ""
    order = {"fail": 0, "warn": 1}
    rows = sorted(rows, key=lambda r: order.get(r.get("status"), 2))
    if rows:
        s.blocks.append(table(T.rows_table("Per run (initial loss, leakage, pads, perplexity, floor, word-level "
                                           "perplexity)", rows)))
    return s


def instruments_section(study: StudyData) -> PageSection:
    s = PageSection("instruments", "Instruments (after training)")
    for r in study.instruments:
        title = f"{r.get('instrument')} · {r.get('run')}"
        if r.get("status") != "done":
            s.blocks.append(PageBlock("text", title, text=f"{r.get('status')}: {r.get('note', '')}"))
            continue
        if r.get("text"):
            s.blocks.append(PageBlock("pre", title, text=str(r["text"]), collapsed=True))
        pngs = [f for f in r.get("files", []) if str(f).endswith(".png") and (study.root / f).is_file()]
        if pngs:
            s.blocks.append(PageBlock("figures", title, figures=[existing_figure(study.root, study.root / f)
                                                                   for f in pngs]))
    return s
