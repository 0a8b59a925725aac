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


def shared_texts(values: np.ndarray) -> np.ndarray:
    """`values` (an object column of text) with every value equal to an earlier one replaced by
    that earlier object; missing cells as they were (None and NaN apart). The readers make a
    str per cell, so a city or a birth date repeated over the rows is an object per row (≈ 100
    MB of duplicates in the 200k records frame, held until standardize is done with it).
    Values are unchanged; only their identity is shared."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == len(values) or not len(uniques):  # nothing repeats: no new array
        return values
    firsts = np.asarray(uniques, dtype=object)
    return np.where(codes >= 0, firsts[codes], values)


def moved_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """`frame[keep]`, built a column at a time from columns taken out of `frame` (left without
    columns): a column's copy and the whole original never coexist (`frame[keep]` held both
    frames' arrays at once: ≈ 200 MB of pointers for 74 columns at 200k customers). For a frame
    no one else reads; one with repeated column names is copied as `frame[keep]` would."""
    if not frame.columns.is_unique:
        return frame[keep]
    index, names = frame.index[keep], frame.columns
    columns = {name: frame.pop(name).array[keep] for name in names}
    return pd.DataFrame(columns, index=index, columns=names, copy=False)
