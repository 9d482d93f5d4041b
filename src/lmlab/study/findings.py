"""What a study finds after training: its instruments run on the best checkpoints, its claims
judged from the measurements, and the seed's tables set beside ours. Written as claims.json /
claims.md / seed_tables.json / seed_tables.md / instruments.json in the study folder and shown on
its page; `lmlab table A B` sets two studies' verdicts side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmlab.io import atomic_write_text
from lmlab.study.claims import Claim, check_claims, claim_from_dict, tally, verdict_rows
from lmlab.study.instruments import InstrumentSpec, check_instruments, parse_instrument, run_instruments
from lmlab.study.measure import failed_variants, measurements, metric_names
from lmlab.study.seed_tables import SeedTable, check_seed_tables, seed_table_from_dict, side_by_side
from lmlab.tables import markdown


@dataclass
class Findings:
    instruments: list[InstrumentSpec]
    claims: list[Claim]
    seed_tables: list[SeedTable]


def parse_findings(study) -> Findings:
    where = f"study {study.name}"
    return Findings([parse_instrument(v, where) for v in study.instruments],
                    [claim_from_dict(v, where) for v in study.claims],
                    [seed_table_from_dict(v, where) for v in study.seed_tables])


def n_epochs(study) -> int:
    return int({**study.overrides, **study.budget}.get("train.epochs") or 0)


def check_findings(study, variants: list[str]) -> Findings:
    """Every instrument, claim and seed table names variants and metrics the study has (before
    anything is trained or written)."""
    f = parse_findings(study)
    where = f"study {study.name}"
    check_instruments(f.instruments, variants, where)
    metrics = metric_names(n_epochs(study), [m for s in f.instruments for m in s.metric_names()])
    check_claims(f.claims, variants, metrics, where)
    check_seed_tables(f.seed_tables, variants, metrics, where)
    return f


def find(study, out: Path, runs, rows: list[dict], epochs: list[dict], stream=None) -> str:
    """Run the instruments, judge the claims, set the seed tables; return the text to print."""
    f = parse_findings(study)
    if not (f.instruments or f.claims or f.seed_tables):
        return ""
    done = {r["run"] for r in rows if r.get("status") == "done"}
    records = run_instruments(f.instruments, out, runs, done, stream) if f.instruments else []
    measured = measurements(rows, epochs, records)
    text = instruments_text(records)
    if f.claims:
        verdicts = verdict_rows(f.claims, measured, failed_variants(rows))
        atomic_write_text(out / "claims.json", json.dumps(verdicts, indent=1, default=str) + "\n")
        table = [{k: r[k] for k in ("id", "claim", "seed", "measured", "verdict")} for r in verdicts]
        atomic_write_text(out / "claims.md", markdown(table))
        text += f"\nclaims ({tally(verdicts)}):\n" + markdown([{k: r[k] for k in ("id", "verdict", "measured")}
                                                              for r in verdicts])
    if f.seed_tables:
        tables = [{"title": t.title, "source": t.source, "note": t.note, "rows": side_by_side(t, measured)}
                  for t in f.seed_tables]
        atomic_write_text(out / "seed_tables.json", json.dumps(tables, indent=1, default=str) + "\n")
        md = "".join(f"\n### {t['title']}\n(seed: {t['source']}{'; ' + t['note'] if t['note'] else ''})\n\n"
                     f"{markdown(t['rows'])}" for t in tables)
        atomic_write_text(out / "seed_tables.md", md)
        text += "\nthe seed's tables beside lmlab's:" + md
    if study.setup:
        text += f"\nset-up differences from the seed: {study.setup}\n"
    return text


def instruments_text(records: list[dict]) -> str:
    if not records:
        return ""
    lines = [f"\ninstruments ({sum(r['status'] == 'done' for r in records)} of {len(records)} done):"]
    for r in records:
        if r["status"] != "done":
            lines.append(f"  {r['instrument']} on {r['run']}: {r['status']} ({r.get('note', '')})")
    return "\n".join(lines) + "\n"
