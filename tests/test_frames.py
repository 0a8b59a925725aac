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


def test_compacted_holds_the_same_values_in_fewer_bytes():
    """Flags as categoricals, hashes as Arrow text: the values a reader takes back are the same,
    the frame is smaller, and a column that is not all text is left as it is."""
    from crmclean.frames import compacted

    n = 3000
    flags = np.array(["", "typo_fixed", "invalid;placeholder", None] * (n // 4), dtype=object)
    hashes = np.array([f"{i:040x}" for i in range(n)], dtype=object)
    mixed = np.array([1, "a", None] * (n // 3), dtype=object)
    std = pd.DataFrame({"email_flag": flags, "content_hash": hashes, "other_flag": mixed, "name": hashes})
    out = compacted(std, ["email_flag", "other_flag"])
    assert isinstance(out["email_flag"].dtype, pd.CategoricalDtype)
    assert isinstance(out["content_hash"].dtype, pd.ArrowDtype)
    assert out["other_flag"].dtype == object and out["name"].dtype == object  # not text / not asked
    assert std["email_flag"].dtype == object  # the caller's frame is untouched
    for c in std.columns:
        assert out[c].to_numpy(dtype=object, na_value=None).tolist() == std[c].tolist(), c
    before, after = (int(f.memory_usage(deep=True).sum()) for f in (std, out))
    assert after < 0.7 * before


def test_a_compacted_column_is_stored_as_the_object_column_is():
    """Publish converts categorical flags and Arrow hashes to the same stored text, in one
    conversion per batch (not a Python call per cell)."""
    from crmclean.frames import compacted
    from crmclean.store import values

    std = pd.DataFrame(
        {
            "email_flag": pd.Series(["", "typo_fixed", None, "invalid"], dtype=object),
            "content_hash": pd.Series(["ab", "cd", None, "ef"], dtype=object),
        }
    )
    out = compacted(std, ["email_flag"])
    for c in std.columns:
        assert values._text_converter(out[c]) is values._extension_strings, c
        assert values._text_values(out[c]) == values._text_values(std[c]), c
    assert values._text_values(out["email_flag"]) == ["", "typo_fixed", None, "invalid"]
    assert values._text_values(out["content_hash"]) == ["ab", "cd", None, "ef"]
