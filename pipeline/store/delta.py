"""What a delta publish writes: the rows of a table compared by hash with the stored ones."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable

import numpy as np
import pandas as pd

from .tables import TABLES
from .values import Rows, batches

#: key columns by which a delta publish replaces rows (several rows may share a key: lineage)
DELTA_KEYS: dict[str, tuple[str, ...]] = {
    "master_customer": ("master_id",),
    "customer_xref": ("record_key",),
    "customer_record": ("record_key",),
    "master_lineage": ("master_id",),
    "match_edge": ("record_key_l", "record_key_r"),
    "review_queue": ("record_key_l", "record_key_r"),
}
#: bookkeeping that alone does not make a row "changed" (the stored row keeps its value)
VOLATILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_xref": ("run_id",),
    "review_queue": ("run_id",),
    "match_edge": ("run_id",),
    "quarantine": ("run_id",),
}
#: bookkeeping updated in place with one UPDATE per distinct value (no delete + insert)
IN_PLACE_COLUMNS: dict[str, tuple[str, ...]] = {"customer_record": ("last_seen_run",)}


@dataclass
class DeltaPlan:
    delete_keys: list
    insert_rows: "Rows | list[tuple]"
    updates: list[tuple[str, Any, list]]  # (column, new value, keys)


def diff_rows(
    name: str, cols: list[str], rows: "Rows | list[tuple]", old: pd.DataFrame, replace_share: float | None
) -> DeltaPlan | None:
    """Delete/insert/update turning the rows `old` into `rows` (None: more than
    `replace_share` of the keys changed, replace the table whole). `rows` is read once, a
    batch at a time; the rows to insert are taken from it lazily."""
    if not len(old):
        return DeltaPlan([], rows, [])
    in_place = [c for c in IN_PLACE_COLUMNS.get(name, ()) if c in cols]
    body = [c for c in cols if c not in VOLATILE_COLUMNS.get(name, ()) and c not in in_place]
    old_h = _frame_hashes(name, old, body)
    key_cols = DELTA_KEYS.get(name, ())
    new_h, picked = _scan(rows, [cols.index(c) for c in body], [cols.index(c) for c in (*key_cols, *in_place)])
    if not key_cols:  # no key (quarantine): untouched when identical, else replaced
        same = len(old_h) == len(new_h) and np.array_equal(np.sort(old_h), np.sort(new_h))
        return DeltaPlan([], [], []) if same else None
    nk = len(key_cols)
    new_keys = [p[0] for p in picked] if nk == 1 else [p[:nk] for p in picked]
    new_changed = ~pd.Series(new_h).isin(old_h).to_numpy()  # hash-table isin (np.isin sorts)
    old_stale = ~pd.Series(old_h).isin(new_h).to_numpy()
    old_keys = key_array(old, key_cols)
    changed = {k for k, c in zip(new_keys, new_changed) if c} | set(old_keys[old_stale])
    n_old = len(set(old_keys)) if len(key_cols) > 1 or name == "master_lineage" else len(old_keys)
    if replace_share is not None and len(changed) > replace_share * max(n_old, 1):
        return None
    touched = [k in changed for k in new_keys]
    insert = _take(rows, np.flatnonzero(np.array(touched, dtype=bool)))
    updates = [
        u
        for j, c in enumerate(in_place)
        for u in _in_place_updates(old, old_keys, c, [p[nk + j] for p in picked], new_keys, touched)
    ]
    delete = sorted(changed & set(old_keys.tolist()), key=str)
    return DeltaPlan(delete, insert, updates)


def _scan(rows: "Rows | list[tuple]", hash_idx: list[int], pick_idx: list[int]) -> tuple[np.ndarray, list[tuple]]:
    """One pass over `rows`, a batch at a time: hash() of each row restricted to `hash_idx`
    (values as frame_rows types them; Python's tuple hash reuses each string's cached hash),
    and the row's values at `pick_idx` (its key and in-place bookkeeping) as a tuple."""
    hashes: list[np.ndarray] = []
    picked: list[tuple] = []
    get, pick = _getter(hash_idx), _getter(pick_idx)
    for batch in batches(rows):
        hashes.append(np.fromiter((hash(get(r)) for r in batch), np.int64, len(batch)))
        picked.extend(pick(r) for r in batch)
    return (np.concatenate(hashes) if hashes else np.array([], dtype=np.int64)), picked


def _getter(idx: list[int]) -> Callable[[tuple], tuple]:
    """The values of a row at `idx`, always as a tuple."""
    if len(idx) > 1:
        return itemgetter(*idx)
    if idx:
        (i,) = idx
        return lambda r: (r[i],)
    return lambda r: ()


def _take(rows: "Rows | list[tuple]", positions: np.ndarray) -> "Rows | list[tuple]":
    if isinstance(rows, Rows):
        return rows.take(positions)
    return [rows[i] for i in positions.tolist()]


def _in_place_updates(
    old: pd.DataFrame, old_keys: np.ndarray, column: str, values: list, new_keys: list, touched: list[bool]
) -> list[tuple[str, Any, list]]:
    """Unchanged rows whose bookkeeping `column` moved: one UPDATE per value."""
    was = dict(zip(old_keys.tolist(), old[column].tolist()))
    by_value: dict[Any, list] = {}
    for v, k, t in zip(values, new_keys, touched):
        if not t and was.get(k) != v:
            by_value.setdefault(v, []).append(k)
    return [(column, v, ks) for v, ks in by_value.items()]


def _frame_hashes(name: str, df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The same hashes for a table as read back (NULL numbers → None, integral floats equal
    their ints under hash(), text is str/None already)."""
    table = TABLES[name]
    values = []
    for c in cols:
        s = df[c]
        if table.c[c].type.__class__.__name__ in ("Float", "Integer"):
            values.append([None if v != v else v for v in s.tolist()])  # v != v: NaN
        else:
            values.append(s.tolist())
    if not len(df):
        return np.array([], dtype=np.int64)
    return np.fromiter(map(hash, zip(*values)), dtype=np.int64, count=len(df))


def key_array(df: pd.DataFrame, key_cols: tuple[str, ...]) -> np.ndarray:
    """The key of each row: the value, or a tuple for a two-column key."""
    if len(key_cols) == 1:
        return df[key_cols[0]].to_numpy(dtype=object)
    out = np.empty(len(df), dtype=object)
    for i, k in enumerate(zip(*(df[c].tolist() for c in key_cols))):
        out[i] = k
    return out
