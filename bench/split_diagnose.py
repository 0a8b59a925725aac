"""Why customers of a golden-bench run are split over several masters, counted by cause.

    python bench/golden.py --customers 200000 --profile crm_names --work /tmp/g   # the run
    python bench/split_diagnose.py /tmp/g --customers 200000 --profile crm_names [--show 10]

Reads the published run (records, customer_xref, match_edge, the saved model) of a
`bench/golden.py --work` folder without writing to it (the database is opened through a copy),
takes every customer whose records sit in more than one master, and for each pair of its
records in different masters says where the pair was lost: `match` (a stored match edge: the
cluster guards cut it; xref's reason says which), `review` (a stored review edge), `below review`
(a candidate scored under the review threshold) or `no candidate` (no blocking rule proposed it).
A customer counts under the best of its pairs (match > review > below review > no candidate).
Pairs not stored are compared and scored afresh with the saved model, so their levels and
weights can be tallied and shown. `--phone-misses` restricts to the customers the golden bench
counts as phone misses with the true phone in the other master.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAUSES = ("match", "review", "below review", "no candidate")
SHOWN = ["first_name_key", "last_name_key", "name_key", "birth_date_std", "email_key", "mobile_std", "landline_std"]
SHOWN += ["address_std", "postal_code_std", "gender_std"]


def _tables(db: Path) -> dict:
    """The published tables and the saved model, read from a copy of the database."""
    from crmclean.store import opened

    with tempfile.TemporaryDirectory(prefix="split-diag-") as tmp:
        copy = Path(tmp) / db.name
        shutil.copy(db, copy)
        for ext in ("-wal", "-shm"):
            if Path(str(db) + ext).exists():
                shutil.copy(str(db) + ext, str(copy) + ext)
        with opened(f"sqlite:///{copy}") as store:
            state = store.load_state()
    return {
        "records": state.records,
        "xref": state.xref,
        "edges": state.edges,
        "model": state.model,
        "masters": state.masters,
    }


def _split_pairs(truth: pd.DataFrame, xref: pd.DataFrame, entities: set | None) -> pd.DataFrame:
    """Per split customer, its record pairs that sit in different masters."""
    truth = truth[truth["entity_id"] != ""]
    rows = truth.merge(xref[["source", "source_record_id", "record_key", "master_id", "reason"]])
    if entities is not None:
        rows = rows[rows["entity_id"].isin(entities)]
    masters = rows.groupby("entity_id")["master_id"].transform("nunique")
    out = []
    for eid, g in rows[masters > 1].groupby("entity_id"):
        for (ka, ma), (kb, mb) in combinations(zip(g["record_key"], g["master_id"]), 2):
            if ma != mb:
                a, b = sorted((ka, kb))
                out.append((eid, a, b))
    return pd.DataFrame(out, columns=["entity_id", "record_key_l", "record_key_r"])


def _score_afresh(records: pd.DataFrame, pairs: pd.DataFrame, model: dict, rules) -> pd.DataFrame:
    """Candidate or not (the default blocking on the whole frame), and levels, weight and
    probability with the saved model, for the given pairs."""
    from crmclean.link import _shared_value_limit, _sorted_positions
    from crmclean.link.blocking import block
    from crmclean.link.compare import compare_pairs, compare_settings, feature_levels
    from crmclean.link.compare import extra_columns, pair_term_frequencies, prepare_columns, term_frequencies
    from crmclean.link.model import features_of, score_levels

    matching = dict(rules.matching or {})
    extras = tuple(extra_columns(records.columns, matching))
    rows = _sorted_positions(records)
    keys = pd.Index(records["record_key"].take(rows).astype(str))
    cols = prepare_columns(records, shared_value_limit=_shared_value_limit(matching), extras=extras, rows=rows)
    tf = term_frequencies(cols)
    left = keys.get_indexer(pairs["record_key_l"])
    right = keys.get_indexer(pairs["record_key_r"])
    cand = block(cols, matching)
    n = len(keys)
    candidate = np.isin(left.astype(np.int64) * n + right, cand.left.astype(np.int64) * n + cand.right)
    levels = compare_pairs(cols, left, right, compare_settings(matching))
    weight, prob, per_feature = score_levels(levels, pair_term_frequencies(tf, left, right, levels), model, matching)
    out = pairs.assign(candidate=candidate, weight=weight, probability=prob)
    for k, f in enumerate(features_of(model)[: levels.shape[1]]):
        out[f"lv_{f}"] = np.asarray(feature_levels(f), dtype=object)[levels[:, k]]
        out[f"w_{f}"] = per_feature[f]
    return out


def _classify(pairs: pd.DataFrame, edges: pd.DataFrame) -> pd.Series:
    """match / review (a stored edge), else below review (a candidate) or no candidate."""
    stored = edges.set_index(["record_key_l", "record_key_r"])["decision"]
    decision = pd.Series(
        stored.reindex(pd.MultiIndex.from_frame(pairs[["record_key_l", "record_key_r"]])).to_numpy(), index=pairs.index
    )
    cause = np.where(
        decision == "match",
        "match",
        np.where(decision == "review", "review", np.where(pairs["candidate"], "below review", "no candidate")),
    )
    return pd.Series(cause, index=pairs.index)


def _report(pairs: pd.DataFrame, records: pd.DataFrame, xref: pd.DataFrame, show: int) -> None:
    rank = {c: k for k, c in enumerate(CAUSES)}
    best = pairs.assign(r=pairs["cause"].map(rank)).groupby("entity_id")["r"].min().map(dict(enumerate(CAUSES)))
    print(f"split customers {best.size}, cross-master record pairs {len(pairs)}")
    print("customers by best cause:", dict(Counter(best)))
    print("pairs by cause:", dict(Counter(pairs["cause"])))
    reason = xref.set_index("record_key")["reason"]
    cut = pairs[pairs["cause"] == "match"]
    if len(cut):
        print("cut matches, xref reason of the left record:", dict(Counter(reason.reindex(cut["record_key_l"]))))
    lv = [c for c in pairs.columns if c.startswith("lv_")]
    recs = records.set_index(records["record_key"].astype(str))
    cols = [c for c in SHOWN if c in recs.columns]
    for cause in ("below review", "no candidate", "review"):
        sub = pairs[(pairs["cause"] == cause) & pairs["entity_id"].isin(best[best == cause].index)]
        if not len(sub):
            continue
        sub = sub.sort_values("probability", ascending=False).drop_duplicates("entity_id")
        print(f"\n== {cause}: {len(sub)} customers (their best pair); level patterns:")
        patt = sub[lv].apply(lambda r: " ".join(f"{c[3:]}={v}" for c, v in r.items() if v != "null"), axis=1)
        for p, k in Counter(patt).most_common(12):
            print(f"  {k:5d}  {p}")
        for _, row in sub.head(show).iterrows():
            print(f"  -- {row['entity_id']} p={row['probability']:.4f} w={row['weight']:+.1f}")
            for k in (row["record_key_l"], row["record_key_r"]):
                print("     ", k, " | ".join(str(recs.at[k, c]) for c in cols))
            print("     ", "  ".join(f"{c[3:]}:{row[c]}({row['w_' + c[3:]]:+.1f})" for c in lv if row[c] != "null"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--profile", default="crm")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--phone-misses", action="store_true", help="only the phone misses whose true phone is elsewhere")
    ap.add_argument("--show", type=int, default=8)
    ap.add_argument("--csv", type=Path, help="write the classified pairs here")
    args = ap.parse_args(argv)

    from crmclean.settings import load_rules

    gen = args.work / f"gen_{args.profile}_{args.customers}"
    t = _tables(args.work / f"{args.profile}_{args.customers}.db")
    truth = pd.read_csv(gen / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    entities = None
    if args.phone_misses:
        from crmclean.generate.entities import build_entities
        from crmclean.golden_quality import golden_misses

        ents = build_entities(args.customers, args.seed, profile=args.profile)
        misses = golden_misses(truth, t["xref"], t["records"], t["masters"], ents, "phone")
        entities = set(misses.loc[misses["split"], "entity_id"])
        print(f"phone misses {len(misses)}, split {len(entities)}")
    pairs = _split_pairs(truth, t["xref"], entities)
    rules = load_rules(None)
    pairs = _score_afresh(t["records"], pairs, t["model"], rules)
    pairs["cause"] = _classify(pairs, t["edges"])
    _report(pairs, t["records"], t["xref"], args.show)
    if args.csv:
        pairs.to_csv(args.csv, index=False)
    print(json.dumps({"model_lambda": t["model"]["lambda"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
