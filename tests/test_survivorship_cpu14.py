"""Issue 14's CPU shortcuts in survivorship and build_tables give what the plain code gave:
the record_key rank taken from cluster_records' sorted order, the e-mail's value groups made
once per field, and customer_xref's strongest link found over key positions."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import crmclean.survivorship as survivorship
from crmclean.store import build

from factories import generated_truth_clusters


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Standardized records of 400 generated customers, clustered by the truth, sorted by
    record_key as cluster_records gives them."""
    std, clusters, rules = generated_truth_clusters(400, 11, tmp_path_factory.mktemp("gen"))
    return std, clusters.sort_values("record_key").reset_index(drop=True), rules


def test_key_rank_of_sorted_clusters_is_free_and_changes_nothing(generated, monkeypatch):
    std, clusters, rules = generated
    shuffled = clusters.sample(frac=1.0, random_state=3)  # not sorted: the keys are ranked as text
    plain = survivorship.build_golden(std, shuffled, rules)

    def no_text_rank(keys):
        raise AssertionError("record_keys ranked as text although cluster_records sorted them")

    monkeypatch.setattr(survivorship, "_rank", no_text_rank)
    golden, lineage = survivorship.build_golden(std, clusters, rules)
    pd.testing.assert_frame_equal(golden, plain[0])
    pd.testing.assert_frame_equal(lineage, plain[1])


def test_email_value_groups_are_made_once_per_field(generated, monkeypatch):
    std, clusters, rules = generated
    calls = []
    made = survivorship._value_groups

    def counted(*args):
        calls.append(1)
        return made(*args)

    monkeypatch.setattr(survivorship, "_value_groups", counted)
    golden, lineage = survivorship.build_golden(std, clusters, rules)
    assert len(calls) == 1  # identity_match, common_domain and most_similar share the e-mail's
    monkeypatch.setattr(survivorship, "_candidate_groups", lambda t, c, x, k: made(c, x, k, k[:, 0] >= 0))
    plain_golden, plain_lineage = survivorship.build_golden(std, clusters, rules)
    pd.testing.assert_frame_equal(golden, plain_golden)
    pd.testing.assert_frame_equal(lineage, plain_lineage)
    assert lineage["rule"].isin(["identity_match", "most_similar", "common_domain"]).any()


def _plain_strongest(pairs: pd.DataFrame, key_cluster: pd.Series) -> pd.Series:
    """The former string-keyed version: map both ends to clusters, group by key, max."""
    mp = pairs[pairs["decision"] == "match"]
    cl = mp["record_key_l"].map(key_cluster)
    mp = mp[cl.notna() & (cl == mp["record_key_r"].map(key_cluster))]
    p = pd.to_numeric(mp["match_probability"], errors="coerce")
    both = pd.concat(
        [pd.Series(p.values, index=mp["record_key_l"].values), pd.Series(p.values, index=mp["record_key_r"].values)]
    )
    return both.groupby(level=0).max()


@pytest.mark.parametrize("sort_keys", [True, False])
def test_xref_strongest_link_and_order(sort_keys):
    keys = ["s|%02d" % i for i in range(12)]
    clusters = pd.DataFrame({"record_key": keys, "cluster": [0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5]})
    if not sort_keys:
        clusters = clusters.iloc[::-1].reset_index(drop=True)
    pairs = pd.DataFrame(
        {
            "record_key_l": ["s|00", "s|01", "s|03", "s|02", "s|06", "s|08", "s|10", "s|99"],
            "record_key_r": ["s|01", "s|02", "s|04", "s|03", "s|07", "s|09", "s|11", "s|00"],
            "match_probability": [0.9, 0.95, 0.99, 0.999, None, "0.7", 0.5, 0.999],
            "decision": ["match", "match", "match", "match", "match", "match", "review", "match"],
        }
    )
    records = pd.DataFrame({"record_key": keys[::-1], "source": "s", "source_record_id": [k[2:] for k in keys[::-1]]})
    ids = pd.Series(["C%07d" % (9 - c) for c in range(6)], index=range(6))  # master order ≠ cluster order
    key_cluster = clusters.set_index("record_key")["cluster"]
    x = build.customer_xref_rows("r1", records, clusters, ids, pairs, key_cluster)
    plain = x.sort_values(["master_id", "record_key"], kind="stable")
    assert x["record_key"].tolist() == plain["record_key"].tolist()
    expected = x["record_key"].map(_plain_strongest(pairs, key_cluster))
    np.testing.assert_array_equal(x["match_probability"].to_numpy(), expected.to_numpy())
    got = dict(zip(x["record_key"], x["match_probability"]))
    assert got["s|01"] == 0.95 and got["s|08"] == 0.7 and np.isnan(got["s|05"]) and np.isnan(got["s|06"])
    assert np.isnan(got["s|10"])  # review pairs hold nobody; s|02-s|03 cross clusters: not counted
    assert got["s|03"] == 0.99
