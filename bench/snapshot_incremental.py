"""Fingerprint of the published tables after an incremental run, to prove a change to the
incremental path changed no outcome (bench/snapshot.py does the same for one full run).

    python bench/snapshot_incremental.py --customers 20000 --work /tmp/me > before.json
    ... change the code ...
    python bench/snapshot_incremental.py --customers 20000 --work /tmp/me > after.json && diff before.json after.json

Splits the generated exports as bench/bench.py does (99 % of the customers, then the late 1 %),
runs the 99 % into a fresh SQLite master, then on copies of it the late 1 % two ways: as
`<source>_delta` files and as the whole export again. Prints per variant and table the row
count and a hash of the rows (run ids and timestamps left out, as bench/snapshot.py does).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from crmclean.evaluate import read_truth
from crmclean.generate import generate
from crmclean.run import RunOptions, run_pipeline

BENCH = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"crmclean_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(inputs: Path, db: Path, out: Path) -> None:
    result = run_pipeline(RunOptions(inputs=[inputs], db_url=f"sqlite:///{db}", out_dir=out))
    if result.status != "success":
        raise SystemExit(f"run on {inputs} failed: {result.error}")


def fingerprints(db: Path, table_hash) -> dict[str, dict[str, object]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    out: dict[str, dict[str, object]] = {}
    with engine.connect() as conn:
        for table in _load("snapshot").TABLES:
            frame = pd.read_sql_table(table, conn)
            out[table] = {"rows": len(frame), "hash": table_hash(frame) if len(frame) else ""}
    engine.dispose()
    return out


def snapshot(customers: int, seed: int, work: Path) -> dict[str, dict]:
    gen = work / f"gen{customers}_seed{seed}"
    if not (gen / "truth" / "truth.csv").exists():
        generate(customers=customers, seed=seed, out_dir=gen)
    base, whole, delta = work / f"snap_base{customers}", work / f"snap_inc{customers}", work / f"snap_delta{customers}"
    if not any(delta.glob("*_delta*")):
        truth = read_truth(str(gen / "truth" / "truth.csv"))
        _load("bench").split_exports(gen, truth, 0.01, base, whole, seed, delta_dir=delta)
    base_db = work / f"snap_base{customers}.db"
    base_db.unlink(missing_ok=True)
    _run(base, base_db, work / "snap_out")
    table_hash = _load("snapshot").table_hash
    out = {"base": fingerprints(base_db, table_hash)}
    for variant, inputs in (("delta_files", delta), ("whole_export", whole)):
        db = work / f"snap_{variant}{customers}.db"
        shutil.copyfile(base_db, db)
        _run(inputs, db, work / "snap_out")
        out[variant] = fingerprints(db, table_hash)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="keep the exports, split and masters here (reused)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="crmclean-snapinc-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        json.dump(snapshot(args.customers, args.seed, work), sys.stdout, indent=1, sort_keys=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
