"""Why a matrix data set misses or merges: the true pairs lost and the false pairs made, by cause.

    python bench/matrix.py --only b2b --keep /tmp/k       # writes /tmp/k/b2b.db and /tmp/k/b2b/truth
    python bench/diagnose.py /tmp/k b2b [--show 15] [--rules DIR]

Reads the standardized records of the kept run, links and clusters them again in-process (the
default rules, no saved model: what a first run does), and sorts every true pair that did not end
in one cluster by where it was lost — never a candidate (no blocking rule proposed it), scored
below review, in review, or matched but split by the cluster guards — and every false merged pair
by whether the pair itself was matched or the cluster chained it. Examples are printed with the
pair's records and per-feature evidence, so the cause can be read off; the model's m/u per level
is printed first.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import combinations
from pathlib import Path

import pandas as pd
from matrix import _align_located  # bench/ is the script's folder

SHOWN = [
    "first_name_key",
    "last_name_key",
    "birth_date_std",
    "email_key",
    "phone_std",
    "address_std",
    "city_std",
    "company_key",
]


def _truth_pairs(truth: pd.DataFrame, keys: set[str]) -> set[tuple[str, str]]:
    truth = truth.assign(record_key=truth["source"].astype(str) + "|" + truth["source_record_id"].astype(str))
    truth = truth[truth["record_key"].isin(keys)]
    out = set()
    for _, g in truth.groupby("entity_id"):
        out.update(tuple(sorted(p)) for p in combinations(g["record_key"], 2))
    return out


def _cluster_pairs(clusters: pd.DataFrame) -> set[tuple[str, str]]:
    out = set()
    for _, g in clusters.groupby("cluster"):
        if len(g) > 1:
            out.update(tuple(sorted(p)) for p in combinations(g["record_key"].astype(str), 2))
    return out


def _show(records: pd.DataFrame, pair, scored: dict, scenario: dict) -> None:
    a, b = pair
    row = scored.get(pair)
    head = f"  {a}  ~  {b}   [{scenario.get(a, '')}/{scenario.get(b, '')}]"
    if row is not None:
        head += f"  p={row['match_probability']:.4f} {row['decision']} {row['cap'] or ''}"
    print(head)
    cols = [c for c in SHOWN + sorted(c for c in records.columns if str(c).startswith("attr_")) if c in records]
    for k in (a, b):
        print("     ", " | ".join(str(records.at[k, c]) if k in records.index else "?" for c in cols))
    if row is not None:
        ev = json.loads(row["evidence"])
        print(
            "      " + "  ".join(f"{f}:{v['level']}({v['weight']:+.1f})" for f, v in ev.items() if v["level"] != "null")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("dataset")
    ap.add_argument("--show", type=int, default=10)
    ap.add_argument("--rules", type=Path, default=None)
    args = ap.parse_args(argv)

    from crmclean.cluster import cluster_records
    from crmclean.link import link, model_summary
    from crmclean.settings import load_rules
    from crmclean.store import open_store

    store = open_store(f"sqlite:///{args.work / (args.dataset + '.db')}")
    try:
        records = store.load_state().records
    finally:
        store.close()
    rules = load_rules(args.rules)
    linked = link(records, rules, model=None)
    clusters = cluster_records(records, linked.pairs, rules, None, model=linked.model)
    summary = model_summary(linked.model, linked.usage)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("features",)}, indent=1, default=str)[:3000])
    for f, levels in summary.get("features", {}).items():
        print(
            f"  {f:<16}" + "  ".join(f"{x['level']} m={x['m']:.3f} u={x['u']:.2g} w={x['weight']:+.1f}" for x in levels)
        )
    truth = pd.read_csv(args.work / args.dataset / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    # a source whose ID column ingest did not recognise is keyed by line (@line:N), as in matrix.py
    split = records["record_key"].astype(str).str.split("|", n=1, expand=True)
    truth = _align_located(truth, pd.DataFrame({"source": split[0], "source_record_id": split[1]}))
    keyed = truth.assign(record_key=truth["source"] + "|" + truth["source_record_id"])
    scenario = dict(zip(keyed["record_key"], keyed["scenario"]))
    recs = records.set_index(records["record_key"].astype(str))
    true = _truth_pairs(truth, set(recs.index))
    made = _cluster_pairs(clusters)
    pairs = linked.pairs
    scored = {(r["record_key_l"], r["record_key_r"]): r for r in pairs.to_dict("records")}
    blocked = set()
    print(f"true pairs {len(true)}  merged pairs {len(made)}  kept pairs {len(pairs)}")
    missed = sorted(true - made)
    wrong = sorted(made - true)
    groups: dict[str, list] = {
        "not kept (never a candidate or below review)": [],
        "review": [],
        "match, split by cluster": [],
    }
    for p in missed:
        row = scored.get(p)
        if row is None:
            groups["not kept (never a candidate or below review)"].append(p)
        elif row["decision"] == "review":
            groups["review"].append(p)
        else:
            groups["match, split by cluster"].append(p)
    del blocked
    for name, ps in groups.items():
        print(f"\nMISSED {name}: {len(ps)}")
        for p in ps[: args.show]:
            _show(recs, p, scored, scenario)
    direct = [p for p in wrong if p in scored and scored[p]["decision"] == "match"]
    chained = [p for p in wrong if p not in direct]
    for name, ps in (("matched directly", direct), ("chained in a cluster", chained)):
        print(f"\nFALSE MERGE {name}: {len(ps)}")
        for p in ps[: args.show]:
            _show(recs, p, scored, scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
