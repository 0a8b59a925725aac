"""Row hashes that tell whether a record changed since the previous run.

Shared by `incremental` (what to re-standardize and re-link) and `store.build` (the stored
`content_hash`/`row_hash` columns), so neither has to import the other.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from .schema import CANONICAL_FIELDS

_SEP = "\x1f"  # unit separator: cannot occur in a CSV cell that was read as text

#: the identity/raw columns content_hash leaves out: a record whose row moved in its file (or
#: whose unmapped columns changed) is not re-standardized, but its stored row is rewritten
ROW_HASH_COLUMNS = ("locator", "file", "extra", "raw")


def _sha1_rows(records: pd.DataFrame, columns) -> pd.Series:
    """sha1 (hex) of each row's `columns` as text joined by _SEP (missing → "")."""
    n = len(records)
    if not n:
        return pd.Series([], index=records.index, dtype=object)
    parts = []
    for c in columns:
        if c not in records.columns:
            parts.append(("",) * n)
            continue
        vals = records[c].to_numpy(dtype=object)
        missing = pd.isna(vals)
        if missing.any():
            vals = vals.copy()
            vals[missing] = ""
        if pd.api.types.infer_dtype(vals, skipna=False) != "string":
            vals = pd.Series(vals, dtype=object).astype(str).to_numpy(dtype=object)
        parts.append(vals)
    sha1 = hashlib.sha1
    return pd.Series(
        [sha1(v.encode("utf-8")).hexdigest() for v in map(_SEP.join, zip(*parts))], index=records.index, dtype=object
    )


def content_hash(records: pd.DataFrame) -> pd.Series:
    """sha1 over the raw canonical fields (None and "" hash alike; column order fixed)."""
    return _sha1_rows(records, CANONICAL_FIELDS)


def row_hash(records: pd.DataFrame) -> pd.Series:
    """sha1 over ROW_HASH_COLUMNS (stored as customer_record.row_hash)."""
    return _sha1_rows(records, ROW_HASH_COLUMNS)
