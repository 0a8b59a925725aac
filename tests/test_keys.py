"""Record-key ordering and the batched name normalisation equal their one-value-at-a-time forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmclean.cluster import _squash, _squashed
from crmclean.keys import positions_in, sorted_unique_positions

KEY = st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab|1\x00é張 "), max_size=4))


def _reference(keys: list) -> np.ndarray:
    """The last row of each non-null key, in Python's sorted order of the keys."""
    last = {k: i for i, k in enumerate(keys) if k is not None}
    return np.array([last[k] for k in sorted(last)], dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(st.lists(KEY, max_size=12))
def test_sorted_unique_positions_match_python_sorting(keys):
    got = sorted_unique_positions(pd.Series(keys, dtype=object))
    assert got.tolist() == _reference(keys).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(KEY, max_size=10), st.lists(KEY, max_size=10))
def test_positions_in_finds_each_key(keys, values):
    distinct = sorted({k for k in keys if k is not None})
    got = positions_in(np.array(distinct + [None], dtype=object)[:-1], values).tolist()
    assert got == [distinct.index(v) if v in distinct else -1 for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("aΣς-.'’ \tİßX\x00"), max_size=6), min_size=1, max_size=8))
def test_squashed_equals_squash_per_value(values):
    got = _squashed(np.array(values + [None], dtype=object)[:-1])
    if any("\x00" in v for v in values):
        assert got is None or got.tolist() == [_squash(v.strip().lower()) for v in values]
    else:
        assert got.tolist() == [_squash(v.strip().lower()) for v in values]
