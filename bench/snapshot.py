"""Fingerprint of a run's published tables, to prove a refactor changed no outcome.

    python bench/snapshot.py --customers 20000 --seed 42 > before.json
    ... change the code ...
    python bench/snapshot.py --customers 20000 --seed 42 > after.json && diff before.json after.json

Generates the bench's exports, runs the whole pipeline (no Prefect) into a fresh SQLite file, and
prints per table the row count and a hash of its rows (run ids, timestamps and durations left out:
they differ between any two runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from crmclean.generate import generate
from crmclean.run import RunOptions, run_pipeline

TABLES = (
    "master_customer",
    "customer_xref",
    "quarantine",
    "customer_record",
    "review_queue",
    "master_lineage",
    "master_id_history",
    "match_edge",
)
VOLATILE = (
    "run_id",
    "created_at",
    "updated_at",
    "first_seen_run",
    "last_seen_run",
    "last_run_id",
    "published_at",
    "at",
    "event_at",
    "loaded_at",
    "decided_at",
)


def _as_text(column: pd.Series) -> pd.Series:
    """Floats to 10 significant digits: a library upgrade (numpy's summation order, say) moves a
    trained probability in its last bits without changing any decision, and the snapshot is
    about outcomes."""
    if pd.api.types.is_float_dtype(column):
        return column.map(lambda x: "nan" if pd.isna(x) else f"{x:.10g}")
    return column.astype(str)


def table_hash(frame: pd.DataFrame) -> str:
    keep = sorted(c for c in frame.columns if c not in VOLATILE and not c.endswith("_run") and not c.endswith("_at"))
    rows = frame[keep].apply(_as_text).apply("\x1f".join, axis=1).sort_values()
    return hashlib.sha256("\n".join(keep + list(rows)).encode()).hexdigest()[:16]


def snapshot(customers: int, seed: int, work: Path) -> dict[str, dict[str, object]]:
    data = work / "data"
    inputs = [Path(p) for p in generate(customers=customers, seed=seed, out_dir=data)["files"]]
    db = f"sqlite:///{work / 'master.db'}"
    result = run_pipeline(RunOptions(inputs=inputs, db_url=db, out_dir=work / "out"))
    if result.status != "success":
        raise SystemExit(f"run failed: {result.error}")
    engine = sa.create_engine(db)
    out: dict[str, dict[str, object]] = {}
    with engine.connect() as conn:
        for table in TABLES:
            frame = pd.read_sql_table(table, conn)
            out[table] = {"rows": len(frame), "hash": table_hash(frame)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        json.dump(snapshot(args.customers, args.seed, Path(tmp)), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
