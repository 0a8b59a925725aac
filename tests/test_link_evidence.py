"""The kept pairs' evidence held as codes (issue 14: ≈ 0.6 KB of JSON text a kept pair, from link
to publish): read anywhere, it is the same text; the frame holds a few bytes a pair."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from crmclean import cluster
from crmclean.link import link, parallel
from crmclean.link import evidence as evidence_module
from crmclean.link.evidence import EvidenceArray
from crmclean.store import build
from test_link import R, synthetic


@pytest.fixture(scope="module")
def linked():
    """Pairs scored in several chunks by two workers (each chunk's pieces of text differ) and
    the same pairs scored in one chunk here."""
    frame, _ = synthetic(n_people=300)
    mp = pytest.MonkeyPatch()
    mp.setattr(parallel, "WORKER_PIECE", 70)
    pooled = link(frame, R(chunk_size=200), workers=2)
    mp.undo()
    alone = link(frame, R(), model=pooled.model, workers=1)
    return pooled, alone


def test_the_evidence_is_codes_a_few_bytes_a_pair_and_reads_as_json(linked):
    pooled, alone = linked
    evidence = pooled.pairs["evidence"]
    assert isinstance(evidence.array, EvidenceArray) and len(evidence) > 100
    features = list(json.loads(evidence.iloc[0]))
    assert evidence.array.nbytes == 4 * len(features) * len(evidence)  # int32 a feature
    texts = evidence.to_numpy(object)
    assert all(isinstance(t, str) for t in texts) and list(evidence) == list(texts)
    assert list(texts) == list(alone.pairs["evidence"].to_numpy(object))  # chunks put together
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evidence_module, "TEXT_BATCH", 7)  # joined in batches: the same rows
        assert list(evidence.to_numpy(object)) == list(texts)
    for text, w_email in zip(texts, pooled.pairs["w_email"]):
        item = json.loads(text)["email"]
        assert abs(item["weight"] - w_email) < 1e-3 and item["level"]


def test_pandas_operations_on_the_codes_give_the_texts_they_would_on_text(linked):
    pairs = linked[0].pairs
    text = pairs.assign(evidence=pairs["evidence"].to_numpy(object))  # the column as main held it
    mask = (pairs["decision"] == "match").to_numpy()

    def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
        assert list(a["evidence"].astype(str)) == list(b["evidence"].astype(str))

    same(pairs[mask], text[mask])
    same(pairs.iloc[::-1], text.iloc[::-1])
    same(pairs.sort_values("match_weight", kind="stable"), text.sort_values("match_weight", kind="stable"))
    same(pairs.drop_duplicates(["record_key_l"]), text.drop_duplicates(["record_key_l"]))
    same(pickle.loads(pickle.dumps(pairs)), text)
    same(pd.concat([pairs.iloc[:7], pairs.iloc[3:]], ignore_index=True), pd.concat([text.iloc[:7], text.iloc[3:]]))
    mixed = pd.concat([text.iloc[:5], pairs], ignore_index=True)  # stored edges' text + this run's codes
    assert mixed["evidence"].dtype == object
    assert list(mixed["evidence"]) == list(text["evidence"].iloc[:5]) + list(text["evidence"])
    reindexed = pairs["evidence"].reindex(range(-2, 3))
    assert reindexed.isna().tolist() == [True, True, False, False, False]
    assert reindexed.iloc[2] == text["evidence"].iloc[0]
    for needle in ('"email": {"level": "exact"', '"phone": {"level": "mobile_exact"', '0}, "ph', "zzz"):
        got = pairs["evidence"].array.contains(needle)
        assert got.tolist() == text["evidence"].str.contains(needle, regex=False).tolist(), needle
    codes, uniques = pd.factorize(pairs["evidence"])
    assert list(np.asarray(uniques, dtype=object)[codes]) == list(text["evidence"])


def test_the_store_and_the_clusters_read_the_same_evidence_as_from_text(linked):
    pairs = linked[0].pairs
    text = pairs.assign(evidence=pairs["evidence"].to_numpy(object))
    edges, edges_text = build.match_edge_rows("r", pairs, None), build.match_edge_rows("r", text, None)
    # match_edge keeps this run's codes (publish joins their text a batch at a time): same text
    pd.testing.assert_frame_equal(edges.assign(evidence=edges["evidence"].to_numpy(object)), edges_text)
    assert edges_text["evidence"].dtype == object and isinstance(edges_text["evidence"].iloc[0], str)
    slim = text.drop(columns="evidence").iloc[:4]  # an incremental run's kept edges (slim load)
    kept, kept_text = pd.concat([slim, pairs], ignore_index=True), pd.concat([slim, text], ignore_index=True)
    assert kept["evidence"].isna().tolist() == kept_text["evidence"].isna().tolist()
    pd.testing.assert_frame_equal(build.match_edge_rows("r", kept, None), build.match_edge_rows("r", kept_text, None))
    assert cluster._shared_identifier(kept).tolist() == cluster._shared_identifier(kept_text).tolist()
    shared = cluster._shared_identifier(pairs)
    assert shared.tolist() == cluster._shared_identifier(text).tolist() and shared.any()
