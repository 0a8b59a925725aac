"""Stable master ids: kept, merged (oldest wins), split (largest part keeps), new (deterministic)."""

from __future__ import annotations


import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmclean.ids import assign_master_ids, format_master_id
from crmclean.store import PriorState


def prior_with(xref: dict[str, str], next_number: int | None = None) -> PriorState:
    p = PriorState.empty()
    p.xref = pd.DataFrame({"record_key": list(xref), "master_id": list(xref.values())})
    nums = [int(m[1:]) for m in xref.values()]
    p.next_master_number = next_number or (max(nums, default=0) + 1)
    return p


def clusters_of(groups: list[list[str]], labels: list[int] | None = None) -> pd.DataFrame:
    labels = labels or list(range(len(groups)))
    return pd.DataFrame([(k, labels[i]) for i, g in enumerate(groups) for k in g], columns=["record_key", "cluster"])


def ids_by_key(clusters: pd.DataFrame, assigned: pd.DataFrame) -> dict[str, str]:
    m = clusters.merge(assigned, on="cluster")
    return dict(zip(m["record_key"], m["master_id"]))


def test_first_run_numbers_clusters_by_their_smallest_record_key():
    c = clusters_of([["b|2", "b|1"], ["a|9"], ["c|1", "a|5"]], labels=[7, 3, 5])
    a = assign_master_ids(c, PriorState.empty())
    assert ids_by_key(c, a) == {
        "b|2": "C0000003",
        "b|1": "C0000003",
        "a|9": "C0000002",
        "c|1": "C0000001",
        "a|5": "C0000001",
    }
    assert set(a["status"]) == {"new"} and a["retired_ids"].map(len).sum() == 0
    assert list(a.columns) == ["cluster", "master_id", "status", "retired_ids", "origin_id"]


def test_kept_ids_and_new_clusters_numbered_after_every_issued_id():
    prior = prior_with({"a|1": "C0000004", "a|2": "C0000004", "a|3": "C0000002"}, next_number=10)
    c = clusters_of([["a|1", "a|2"], ["a|3"], ["z|1"], ["b|1"]])
    a = assign_master_ids(c, prior).set_index("cluster")
    assert a["master_id"].tolist() == ["C0000004", "C0000002", "C0000011", "C0000010"]
    assert a["status"].tolist() == ["kept", "kept", "new", "new"]


def test_merge_keeps_the_oldest_id_and_retires_the_others():
    prior = prior_with({"a|1": "C0000007", "b|1": "C0000003", "c|1": "C0000005", "c|2": "C0000005"})
    c = clusters_of([["a|1", "b|1", "c|1", "c|2"]])
    a = assign_master_ids(c, prior).iloc[0]
    assert a["master_id"] == "C0000003" and a["status"] == "merged"
    assert sorted(a["retired_ids"]) == ["C0000005", "C0000007"]


def test_split_largest_part_keeps_the_id_others_get_new_ids():
    prior = prior_with({"a|1": "C0000001", "a|2": "C0000001", "a|3": "C0000001", "a|4": "C0000001"})
    c = clusters_of([["a|1"], ["a|2", "a|3", "a|4"]])
    a = assign_master_ids(c, prior).set_index("cluster")
    assert a.loc[1, ["master_id", "status"]].tolist() == ["C0000001", "kept"]
    assert a.loc[0, ["master_id", "status", "origin_id"]].tolist() == ["C0000002", "split", "C0000001"]


def test_split_tie_goes_to_the_part_with_the_smallest_record_key():
    prior = prior_with({"a|1": "C0000001", "a|2": "C0000001", "b|1": "C0000001", "b|2": "C0000001"})
    c = clusters_of([["b|1", "b|2"], ["a|2", "a|1"]])
    assert ids_by_key(c, assign_master_ids(c, prior))["a|1"] == "C0000001"
    assert ids_by_key(c, assign_master_ids(c, prior))["b|1"] == "C0000002"


def test_merge_and_split_at_once():
    # C1 = {a1,a2,a3}, C2 = {b1}; now {a1,a2,b1} and {a3}: C1 (older, its larger part) keeps,
    # C2 merges into it, {a3} is a split-off with a new id
    prior = prior_with({"a|1": "C0000001", "a|2": "C0000001", "a|3": "C0000001", "b|1": "C0000002"})
    c = clusters_of([["a|1", "a|2", "b|1"], ["a|3"]])
    a = assign_master_ids(c, prior).set_index("cluster")
    assert a.loc[0, "master_id"] == "C0000001" and a.loc[0, "retired_ids"] == ["C0000002"]
    assert a.loc[1, ["master_id", "status", "origin_id"]].tolist() == ["C0000003", "split", "C0000001"]


def _random_clusters(draw_sizes: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = [f"s{rng.integers(3)}|{i}" for i in range(sum(draw_sizes))]
    labels = np.repeat(np.arange(len(draw_sizes)), draw_sizes)
    return pd.DataFrame({"record_key": keys, "cluster": rng.permutation(len(draw_sizes))[labels]})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=30), st.integers(0, 10_000), st.integers(0, 10_000))
def test_properties_stable_unique_and_label_free(sizes, seed, relabel_seed):
    """Same grouping again → same ids; ids unique; cluster labels do not matter."""
    c = _random_clusters(sizes, seed)
    first = assign_master_ids(c, PriorState.empty())
    assert first["master_id"].is_unique
    mapping = ids_by_key(c, first)
    prior = prior_with(mapping)
    # the same clusters under different labels keep every id and create none
    perm = np.random.default_rng(relabel_seed).permutation(c["cluster"].max() + 1)
    again_c = c.assign(cluster=perm[c["cluster"]] + 100)
    again = assign_master_ids(again_c, prior)
    assert ids_by_key(again_c, again) == mapping
    assert set(again["status"]) == {"kept"}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=25), st.integers(0, 10_000), st.integers(0, 10_000))
def test_properties_after_any_regrouping(sizes, seed, seed2):
    """Regroup the same records arbitrarily: ids stay unique, every prior id is either still
    used or retired into a used id, and new ids start at next_master_number."""
    c = _random_clusters(sizes, seed)
    prior = prior_with(ids_by_key(c, assign_master_ids(c, PriorState.empty())))
    rng = np.random.default_rng(seed2)
    c2 = c.assign(cluster=rng.integers(0, max(2, len(sizes) // 2 + 1), len(c)))
    a = assign_master_ids(c2, prior)
    assert a["master_id"].is_unique
    used = set(a["master_id"])
    retired = {r for rs in a["retired_ids"] for r in rs}
    assert retired.isdisjoint(used)
    prior_ids = set(prior.xref["master_id"])
    assert prior_ids <= used | retired  # no prior id silently disappears while its records live
    new_nums = sorted(int(m[1:]) for m in used - prior_ids)
    assert new_nums == list(range(prior.next_master_number, prior.next_master_number + len(new_nums)))
    # every merged id's winner is older than it
    for _, row in a.iterrows():
        assert all(r > row["master_id"] for r in row["retired_ids"])


def test_four_hundred_thousand_records_keep_their_ids_when_two_percent_regroup():
    """Correctness at scale; the speed of this is printed by bench/bench_units.py, not asserted."""
    n = 400_000
    rng = np.random.default_rng(1)
    keys = np.array([f"crm_{i % 4}|{i}" for i in range(n)])
    cluster = rng.integers(0, n // 2, n)
    c = pd.DataFrame({"record_key": keys, "cluster": cluster})
    first = assign_master_ids(c, PriorState.empty())
    prior = prior_with(ids_by_key(c, first))
    c2 = c.assign(cluster=np.where(rng.random(n) < 0.02, rng.integers(0, n // 2, n), cluster))  # 2 % regrouped
    second = assign_master_ids(c2, prior)
    assert second["master_id"].is_unique and (second["status"] == "kept").mean() > 0.9


def test_format_master_id():
    assert format_master_id(123) == "C0000123"
