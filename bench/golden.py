"""Golden-record accuracy per field against the generator's truth, beside the ceiling.

    python bench/golden.py --customers 20000                        # crm profile, ~1-2 min
    python bench/golden.py --customers 20000 --profile crm_names    # accents, nicknames, Hanzi/pinyin, formulas
    python bench/golden.py --customers 200000 --work /tmp/g200k     # ~10-15 min on 2 cores

For each size: generate the exports (seed --seed), run the whole pipeline into SQLite, then score
the published masters: per field (full_name, email, phone, birth_date) the share of customers whose
master publishes the true value (`golden`) and the share for whom some record carries it after
standardization (`ceiling`, what survivorship can reach at best). `--work DIR` keeps the exports
and database; with `--reuse` a kept database is scored again without rerunning, and survivorship
is re-run on its records and clusters (timed) so a change to the rules shows at once.
`--misses FIELD` lists a sample of the customers whose true value is in their master's records
but not in the master, with each record's raw and standardized values and the lineage rule, and
counts every miss by kind (the true value only in another master; else whether as many, fewer
or more of the master's records hold the true value than the published one).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crmclean.generate import generate  # noqa: E402
from crmclean.generate.entities import build_entities  # noqa: E402
from crmclean.golden_quality import format_misses, format_scores, golden_misses, score_golden  # noqa: E402


def run_pipeline_once(gen: Path, db: Path, out: Path) -> float:
    from crmclean.run import RunOptions, run_pipeline

    t0 = time.perf_counter()
    run_pipeline(RunOptions(inputs=[gen], db_url=f"sqlite:///{db}", out_dir=out))
    return time.perf_counter() - t0


def read_tables(db: Path) -> dict[str, pd.DataFrame]:
    from crmclean.store import opened

    with opened(f"sqlite:///{db}") as store:
        names = ("customer_xref", "customer_record", "master_customer", "master_lineage")
        return {n: store.read_table(n) for n in names}


def resurvive(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Survivorship alone, with the current code and rules, on the published records and clusters."""
    from crmclean.settings import load_rules
    from crmclean.survivorship import build_golden

    xref = tables["customer_xref"]
    ids = pd.Index(sorted(xref["master_id"].unique()))
    clusters = pd.DataFrame({"record_key": xref["record_key"], "cluster": ids.get_indexer(xref["master_id"])})
    t0 = time.perf_counter()
    golden, lineage = build_golden(tables["customer_record"], clusters, load_rules(None))
    seconds = time.perf_counter() - t0
    golden["master_id"] = ids[golden["cluster"].to_numpy()]
    lineage["master_id"] = ids[lineage["cluster"].to_numpy()]
    return golden, lineage, seconds


def bench_size(customers: int, args, work: Path) -> dict:
    gen, db = work / f"gen_{args.profile}_{customers}", work / f"{args.profile}_{customers}.db"
    out: dict = {"customers": customers, "profile": args.profile, "seed": args.seed}
    if not (args.reuse and db.exists()):
        t0 = time.perf_counter()
        generate(customers=customers, seed=args.seed, out_dir=gen, profile=args.profile)
        out["generate_s"] = round(time.perf_counter() - t0, 1)
        db.unlink(missing_ok=True)
        out["pipeline_s"] = round(run_pipeline_once(gen, db, work / "out"), 1)
    truth = pd.read_csv(gen / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    ents = build_entities(customers, args.seed, profile=args.profile)
    tables = read_tables(db)
    master, lineage = tables["master_customer"], tables["master_lineage"]
    if args.reuse:
        master, lineage, out["survivorship_s"] = resurvive(tables)
    xref, records = tables["customer_xref"], tables["customer_record"]
    out["fields"] = score_golden(truth, xref, records, master, ents)
    for field in args.misses or ():
        misses = golden_misses(truth, xref, records, master, ents, field)
        print(format_misses(misses, xref, records, lineage, field, args.show))
        print(format_kinds(miss_kinds(misses, xref, records, field)))
    return out


#: the record columns holding a field's value (a phone: either slot)
VALUE_COLUMNS = {"phone": ("mobile_std", "landline_std"), "full_name": ("full_name_std",)}


def miss_kinds(misses: pd.DataFrame, xref: pd.DataFrame, records: pd.DataFrame, field: str) -> dict[str, int]:
    """How the misses of `golden_misses` split: the true value only in another master (`split`,
    and of those how many masters publish no value), else by how many records of the master hold
    the true value against the published one: one each (no majority to follow), the published
    value more (outvoted), the true value more (a rule overrode the majority, or the published
    value is composed). What survivorship could still win is mostly the last kind."""
    cols = VALUE_COLUMNS.get(field, (f"{field}_std",))
    true, golden = misses.columns[1], misses.columns[3]
    rows = xref[["record_key", "master_id"]].merge(records[["record_key", *cols]], on="record_key")
    rows = misses[["entity_id", "master_id", true, golden]].merge(rows, on="master_id")

    def norm(values: pd.Series) -> pd.Series:
        text = values.astype("string").str.strip()
        return text.str.lower() if field == "email" else text

    def holds(target: str) -> pd.Series:
        found = pd.Series(False, index=rows.index)
        for c in cols:
            found |= (norm(rows[c]) == norm(rows[target])).fillna(False)
        return found

    counts = rows.assign(t=holds(true), g=holds(golden)).groupby("entity_id")[["t", "g"]].sum()
    per = misses.set_index("entity_id")[["split", golden]].join(counts)
    split, own = per[per["split"]], per[~per["split"]]
    return {
        "split": len(split),
        "split_none": int(split[golden].isna().sum()),
        "one_each": int((own["t"] == own["g"]).sum()),
        "outvoted": int((own["t"] < own["g"]).sum()),
        "true_more": int((own["t"] > own["g"]).sum()),
    }


def format_kinds(kinds: dict[str, int]) -> str:
    return (
        f"   by kind: true value only in another master {kinds['split']} (this one publishes none: "
        f"{kinds['split_none']}); in the master, records holding the true / published value: "
        f"as many {kinds['one_each']}, fewer {kinds['outvoted']}, more {kinds['true_more']}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, action="append", help="customers to generate (repeatable)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile", default="crm", help="crm (default) or crm_names")
    ap.add_argument("--work", type=Path, help="keep exports and databases here")
    ap.add_argument("--reuse", action="store_true", help="score a kept database again, re-running survivorship")
    ap.add_argument("--json", type=Path, help="write the numbers as JSON")
    ap.add_argument(
        "--misses",
        action="append",
        choices=("full_name", "email", "phone", "birth_date"),
        help="list a sample of this field's survivorship misses with their records (repeatable)",
    )
    ap.add_argument("--show", type=int, default=15, help="how many misses --misses lists")
    args = ap.parse_args(argv)
    sizes = args.customers or [20000]
    work = args.work or Path(tempfile.mkdtemp(prefix="crmclean-golden-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for customers in sizes:
        res = bench_size(customers, args, work)
        results.append(res)
        timing = {k: v for k, v in res.items() if k.endswith("_s")}
        print(f"\n{customers} customers, profile {args.profile}, seed {args.seed}  {timing}")
        print(format_scores(res["fields"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
