"""Frame helpers that avoid pandas' slow paths on large object columns."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd


def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """`pd.concat(frames, ignore_index=True)` for frames with the same object columns, joined
    as plain arrays. pandas' concat tests each object column of each frame for "all missing"
    cell by cell in Python (≈ 1.2 CPU s of a 200k ingest, where one source lacks a field);
    any other shape goes to concat itself."""
    if not frames:
        raise ValueError("no frames to stack")
    columns = frames[0].columns
    same = columns.is_unique and all(f.columns.equals(columns) for f in frames)
    if not same or any(dtype != np.dtype(object) for f in frames for dtype in f.dtypes):
        return pd.concat(frames, ignore_index=True)
    data = {c: np.concatenate([f[c].to_numpy() for f in frames]) for c in columns}
    return pd.DataFrame(data, columns=columns, index=pd.RangeIndex(sum(map(len, frames))), copy=False)


#: the change hashes incremental adds and the source's record id: readers only compare,
#: merge or publish them (`to_numpy(object)`, `isna`), so they are held as Arrow text after
#: standardize (one buffer, not a 50-90 byte str object a row)
ARROW_TEXT_COLUMNS = ("content_hash", "row_hash", "source_record_id")


def compacted(std: pd.DataFrame, categories: Iterable[str] = (), arrow_text: Iterable[str] = ARROW_TEXT_COLUMNS):
    """`std` with the `categories` columns as categoricals (a byte a row instead of an 8-byte
    pointer: the quality flags hold a few distinct texts) and the `arrow_text` columns as Arrow
    text, each only when all its values are text (missing ones aside); the other columns are
    shared, not copied. Readers see the same values: `to_numpy(object)` gives NaN, not None,
    for a missing one."""
    import pyarrow as pa

    out = std.copy(deep=False)
    for c in categories:
        if c in out.columns and _all_text(out[c]):
            out[c] = out[c].astype("category")
    for c in arrow_text:
        if c in out.columns and _all_text(out[c]):
            out[c] = out[c].astype(pd.ArrowDtype(pa.string()))
    return out


def _all_text(column: pd.Series) -> bool:
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
