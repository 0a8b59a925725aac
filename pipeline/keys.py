"""Record keys: the sorted order link and cluster number records by, and lookups into it.

Keys are sorted as fixed-width numpy text (C comparisons, no Python call per key): the order is
Python's str order. numpy text drops trailing NULs, so keys holding a NUL take the object path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _as_text(values: np.ndarray) -> np.ndarray | None:
    """The str values as a numpy text array, or None when one is not a str or holds a NUL."""
    if pd.api.types.infer_dtype(values, skipna=False) not in ("string", "empty"):
        return None
    items = values.tolist()
    if "\x00" in "".join(items):
        return None
    return np.array(items, dtype=str) if items else np.array([], dtype="U1")


def sorted_unique_positions(keys: pd.Series) -> np.ndarray:
    """Row positions of the non-null keys, the last row of each key, in key order."""
    pos = np.flatnonzero(keys.notna().to_numpy())
    values = keys.to_numpy(dtype=object)[pos]
    text = _as_text(values)
    if text is None:
        last = ~pd.Series(values).duplicated(keep="last").to_numpy()
        pos, values = pos[last], values[last]
        return pos[np.argsort(values, kind="stable")]
    order = np.argsort(text, kind="stable")  # equal keys keep their row order: the last is last
    ordered = text[order]
    last = np.r_[ordered[1:] != ordered[:-1], True] if len(ordered) else np.zeros(0, bool)
    return pos[order[last]]


def positions_in(sorted_keys: np.ndarray, values) -> np.ndarray:
    """Position of each value in ``sorted_keys`` (distinct), -1 when absent: one hash table
    over the keys for all the values (pass both sides of a pair frame at once)."""
    values = pd.Series(values, dtype=object).to_numpy()
    return pd.Index(sorted_keys).get_indexer(values).astype(np.int64)
