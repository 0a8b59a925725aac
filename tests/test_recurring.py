"""A person who recurs hundreds of times (an inventor on a patent register, a loyal customer):
oversized blocks are thinned instead of dropped, and the cluster size limit scales with the
largest group of identical records the data holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmclean.cluster import cluster_records
from crmclean.link.blocking import block
from crmclean.link.compare import IDENTITY_COLUMNS, identical_group_sizes, prepare_columns, term_frequencies
from crmclean.link.blocking import largest_identical_group
from crmclean.link.training import learned_cluster_size
from crmclean.settings import Rules

COLUMNS = ["record_key", "first_name_key", "last_name_key", "name_key", "city_std", "company_key", "birth_date_std"]


def inventor(k: int, city: str | None, company: str | None, first: str = "junyi", last: str = "li") -> dict:
    return {
        "record_key": f"p|{k:04d}",
        "first_name_key": first,
        "last_name_key": last,
        "name_key": f"{first} {last}",
        "city_std": city,
        "company_key": company,
        "birth_date_std": None,
    }


def test_oversized_block_pairs_neighbours_that_share_the_rest_of_their_evidence():
    # 120 mentions of one name, two places interleaved in record order
    rows = [inventor(k, *(("san diego", "qualcomm") if k % 2 else ("austin", "acme"))) for k in range(120)]
    cols = prepare_columns(pd.DataFrame(rows, columns=COLUMNS))
    rules = [{"name": "name", "columns": ["name_key"]}]
    cand = block(cols, {"blocking": {"max_block_size": 50, "oversize_window": 3, "rules": rules}})
    assert len(cand.left) == 119 + 118  # linear: each record and its next two neighbours
    city = cols["city_std"]
    same_place = city[cand.left] == city[cand.right]
    assert same_place.sum() >= len(same_place) - 3  # only where the sorted order turns to the other place
    assert set(np.concatenate([cand.left, cand.right])) == set(range(120))
    dropped = block(cols, {"blocking": {"max_block_size": 50, "oversize_window": 0, "rules": rules}})
    assert len(dropped.left) == 0
    # 120 different people of one name (no record recurs): a block that big is skipped as before
    strangers = [inventor(k, f"city{k}", f"firm{k}") for k in range(120)]
    cols = prepare_columns(pd.DataFrame(strangers, columns=COLUMNS))
    assert len(block(cols, {"blocking": {"max_block_size": 50, "oversize_window": 3, "rules": rules}}).left) == 0


def test_largest_identical_group_counts_records_alike_on_every_compared_column():
    rows = [inventor(k, "san diego", "qualcomm") for k in range(7)]
    rows += [inventor(100 + k, "austin", "acme") for k in range(3)]
    rows += [inventor(200 + k, None, None, first="john", last="smith") for k in range(12)]  # a name alone
    rows += [inventor(300, "san diego", "acme")]
    cols = prepare_columns(pd.DataFrame(rows, columns=COLUMNS))
    assert largest_identical_group(cols) == 7
    codes = {c: cols[c + "#"] for c in IDENTITY_COLUMNS}
    assert identical_group_sizes(codes, min_fields=2).max() == 12


def test_term_frequencies_count_identical_records_once():
    """An inventor on 40 identical records is one holder of his name; 40 different John Smiths
    (each at another place) are 40."""
    rows = [inventor(k, "san diego", "qualcomm") for k in range(40)]
    rows += [inventor(100 + k, f"city{k}", f"firm{k}", first="john", last="smith") for k in range(40)]
    rows += [inventor(200 + k, f"town{k}", f"shop{k}", first=f"given{k}", last=f"family{k}") for k in range(20)]
    cols = prepare_columns(pd.DataFrame(rows, columns=COLUMNS))
    tf = term_frequencies(cols)["last_name_key"]
    li, smith = tf[0], tf[40]
    assert li == pytest.approx(1 / 61) and smith == pytest.approx(40 / 61)  # 1 li, 40 smiths, 20 others
    assert (tf[:40] == li).all()


def test_cluster_size_limit_scales_with_the_records_one_person_holds():
    assert learned_cluster_size(None, 50) == 50
    assert learned_cluster_size({"training": {"largest_identical_group": 3}}, 50) == 50
    assert learned_cluster_size({"training": {"largest_identical_group": 760}}, 50) == 1520
    keys = [f"r|{i:03d}" for i in range(120)]
    recs = pd.DataFrame({"record_key": keys, "first_name_key": "junyi", "last_name_key": "li", "name_key": "junyi li"})
    pairs = pd.DataFrame(
        {
            "record_key_l": keys[:-1],
            "record_key_r": keys[1:],
            "match_weight": 9.0,
            "match_probability": 0.998,  # a match, not a strong edge (0.9999)
            "decision": "match",
        }
    )
    cut = cluster_records(recs, pairs, Rules(), None)
    assert cut["cluster"].nunique() == 120 and set(cut["cluster_reason"]) == {"split:oversized"}
    model = {"training": {"largest_identical_group": 80}}
    whole = cluster_records(recs, pairs, Rules(), None, model=model)
    assert whole["cluster"].nunique() == 1
