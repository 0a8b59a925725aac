"""frames.stacked: the same frame as pd.concat(ignore_index=True), None kept as None."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmclean.frames import stacked

_cells = st.one_of(st.none(), st.text(max_size=3), st.booleans())


def _frame(rows: list[list]) -> pd.DataFrame:
    data = {c: np.array([r[i] for r in rows], dtype=object) for i, c in enumerate("abc")}
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()}, columns=list("abc"))


def _same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right)
    for c in left.columns:  # None stays None (assert_frame_equal calls None and NaN equal)
        assert [type(v) for v in left[c]] == [type(v) for v in right[c]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.lists(_cells, min_size=3, max_size=3), max_size=4), min_size=1, max_size=4))
def test_stacked_is_concat_for_object_frames(parts):
    frames = [_frame(rows) for rows in parts]
    _same(stacked(frames), pd.concat(frames, ignore_index=True))


def test_an_all_none_column_of_one_frame_stays_none():
    top = pd.DataFrame({"a": np.array(["x", "y"], dtype=object), "b": np.array([None, None], dtype=object)})
    bottom = pd.DataFrame({"a": np.array([None], dtype=object), "b": np.array(["z"], dtype=object)})
    out = stacked([top, bottom])
    assert list(out["b"]) == [None, None, "z"] and list(out["a"]) == ["x", "y", None]
    assert isinstance(out.index, pd.RangeIndex) and out.index[-1] == 2


def test_other_shapes_go_to_concat():
    numbers = pd.DataFrame({"a": [1, 2]})
    texts = pd.DataFrame({"a": np.array(["x"], dtype=object), "b": np.array(["y"], dtype=object)})
    _same(stacked([numbers, texts]), pd.concat([numbers, texts], ignore_index=True))
