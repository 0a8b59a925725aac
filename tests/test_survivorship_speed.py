"""The shortcuts of issue 14's cluster and publish work give exactly what the plain code gave:
per-value strategies scored only where a cluster's records disagree, the lineage alternatives
written as JSON text, and the store's one-copy table frames and column typing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import crmclean.survivorship as survivorship
from crmclean.store.build import _frame, _none, _none_frame
from crmclean.store.values import _text_converter

from factories import generated_truth_clusters


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Standardized records of 400 generated customers, clustered by the truth."""
    return generated_truth_clusters(400, 7, tmp_path_factory.mktemp("gen"))


def test_per_value_strategies_scored_on_disagreeing_clusters_only_change_nothing(generated, monkeypatch):
    std, clusters, rules = generated
    golden, lineage = survivorship.build_golden(std, clusters, rules)
    monkeypatch.setattr(survivorship, "_PER_VALUE", frozenset())  # every candidate scored
    plain_golden, plain_lineage = survivorship.build_golden(std, clusters, rules)
    pd.testing.assert_frame_equal(golden, plain_golden)
    pd.testing.assert_frame_equal(lineage, plain_lineage)
    assert (lineage["rule"].isin(["medoid", "standard_case", "prefer_accents"])).any()  # they did decide


def test_alternatives_are_json_dumps_text_most_records_first(generated):
    std, clusters, rules = generated
    _, lineage = survivorship.build_golden(std, clusters, rules)
    lost = lineage[lineage["alternatives"].notna()]
    assert len(lost) > 20
    for value, text in zip(lost["value"], lost["alternatives"]):
        items = json.loads(text)
        assert json.dumps(items, ensure_ascii=False) == text
        assert all(isinstance(i["value"], str) and i["value"] != value for i in items)
        order = [(-len(i["records"]), i["value"]) for i in items]
        assert order == sorted(order)
        assert all(i["records"] == sorted(i["records"]) for i in items)


def test_none_frame_is_none_of_frame():
    df = pd.DataFrame(
        {
            "master_id": ["C1", None, "C3"],
            "value": ["a", np.nan, "c"],
            "field": pd.Series(["x", "y", None], dtype="string"),
            "record_key": [1.5, np.nan, 2.0],
            "extra": [1, 2, 3],
        },
        index=[7, 3, 9],
    )
    pd.testing.assert_frame_equal(_none_frame(df, "master_lineage"), _none(_frame(df, "master_lineage")))
    empty = pd.DataFrame()
    pd.testing.assert_frame_equal(_none_frame(empty, "match_edge"), _none(_frame(empty, "match_edge")))


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b"],
        ["a", None],
        ["a", np.nan],
        ["a", pd.NA],
        [None, None],
        [np.nan],
        [],
        ["a", 2],
        [2.0, None],
    ],
)
def test_text_columns_convert_as_before(values):
    s = pd.Series(values, dtype=object)
    converted = _text_converter(s)(s)
    expected = [v if isinstance(v, str) else None if pd.isna(v) else str(int(v)) for v in values]
    assert converted == expected
    assert [type(v) for v in converted] == [type(v) for v in expected]
