"""Speed of single building blocks at scale, printed (never asserted in unit tests).

    python bench/bench_units.py

- master id assignment: 400k records, then a second run where 2 % regroup;
- evaluation: 300k records in 60k entities (contingency counts, no pair lists).
Timings on a shared machine vary by up to 40 %: compare figures from one run.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from crmclean.evaluate import evaluate
from crmclean.ids import assign_master_ids
from crmclean.store import PriorState


def bench_ids(n: int = 400_000) -> float:
    rng = np.random.default_rng(1)
    c = pd.DataFrame({"record_key": [f"crm_{i % 4}|{i}" for i in range(n)], "cluster": rng.integers(0, n // 2, n)})
    t0 = time.perf_counter()
    first = assign_master_ids(c, PriorState.empty())
    merged = c.merge(first, on="cluster")
    prior = PriorState.empty()
    prior.xref = merged[["record_key", "master_id"]]
    prior.next_master_number = int(merged["master_id"].str[1:].astype(int).max()) + 1
    regrouped = c.assign(cluster=np.where(rng.random(n) < 0.02, rng.integers(0, n // 2, n), c["cluster"]))
    assign_master_ids(regrouped, prior)
    return time.perf_counter() - t0


def bench_evaluate(n: int = 300_000) -> float:
    rng = np.random.default_rng(0)
    ent = rng.integers(0, 60_000, n)
    ids = np.arange(n).astype(str)
    truth = pd.DataFrame(
        {"source": "S", "source_record_id": ids, "entity_id": ent.astype(str), "scenario": "normal", "group_id": ""}
    )
    master = np.where(rng.random(n) < 0.05, rng.integers(0, 60_000, n), ent)
    xref = pd.DataFrame({"source": "S", "source_record_id": ids, "master_id": master.astype(str)})
    t0 = time.perf_counter()
    evaluate(truth, xref)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"assign_master_ids, 400k records twice: {bench_ids():.2f} s")
    print(f"evaluate, 300k records / 60k entities: {bench_evaluate():.2f} s")
