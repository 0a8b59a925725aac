"""Link accuracy on the generator's hard data (households, twins, Jr/Sr, common names, moves).

    python bench/bench_link_generated.py CUSTOMERS [SEED]

Generates exports, runs ingest + standardize, links, clusters match edges by connected
components and reports pairwise precision/recall/F1 against truth.csv, plus the share of
hard-negative pairs (different entities in the same household/twins/Jr-Sr/common-name group)
that were merged.
"""

from __future__ import annotations

import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_febrl import connected_components, pairwise_scores  # noqa: E402
from crmclean import ingest, standardize  # noqa: E402
from crmclean.generate import generate  # noqa: E402
from crmclean.link import link  # noqa: E402
from crmclean.settings import load_rules  # noqa: E402


def standardized(customers: int, seed: int, workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = generate(customers, seed, workdir)
    rules = load_rules()
    ing = ingest.ingest(ingest.discover_inputs([workdir]), rules)
    std, _ = standardize.standardize(ing.records, rules, workers=2)
    std, _ = standardize.quarantine_unidentifiable(std, rules)
    truth = pd.read_csv(out["truth"], dtype=str)
    truth["record_key"] = truth["source"] + "|" + truth["source_record_id"]
    return std, truth


def evaluate(std: pd.DataFrame, truth: pd.DataFrame, rules=None) -> dict:
    rules = rules or load_rules()
    t0 = time.perf_counter()
    res = link(std, rules, workers=2)
    seconds = time.perf_counter() - t0
    truth = truth[truth["record_key"].isin(set(std["record_key"]))]
    entity = dict(zip(truth["record_key"], truth["entity_id"]))
    by_entity = truth.groupby("entity_id")["record_key"].apply(sorted)
    true_pairs = {p for keys in by_entity if len(keys) > 1 for p in combinations(keys, 2)}
    matches = res.pairs[res.pairs["decision"] == "match"]
    clusters = connected_components(std["record_key"].tolist(), matches)
    scores = pairwise_scores(true_pairs, clusters)
    # hard negatives: different entities in the same scenario group
    grouped = truth[truth["group_id"].notna()]
    hard = {
        p
        for keys in grouped.groupby("group_id")["record_key"].apply(sorted)
        for p in combinations(keys, 2)
        if entity[p[0]] != entity[p[1]]
    }
    merged = sum(1 for a, b in hard if clusters.get(a) == clusters.get(b))
    scenario = dict(zip(truth["record_key"], truth["scenario"])) if "scenario" in truth.columns else {}
    per_kind: dict[str, list[int]] = {}
    for a, b in hard:
        count = per_kind.setdefault(str(scenario.get(a, "?")), [0, 0])
        count[0] += 1
        count[1] += clusters.get(a) == clusters.get(b)
    scores.update(
        records=len(std),
        candidates=int(res.blocking_summary.iloc[-1]["pairs"]),
        review=int((res.pairs["decision"] == "review").sum()),
        hard_negative_pairs=len(hard),
        hard_negative_merged=merged,
        hard_negative_merge_rate=merged / len(hard) if hard else 0.0,
        link_seconds=round(seconds, 1),
        **{f"false_merge_{k}": c[1] / c[0] for k, c in sorted(per_kind.items())},
    )
    return scores, res


if __name__ == "__main__":
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as d:
        std, truth = standardized(customers, seed, Path(d))
    scores, _ = evaluate(std, truth)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in scores.items()))
