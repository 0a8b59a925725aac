"""Values as stored: frames to typed row tuples and back, the same on every backend."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from ..spill import SPILL_BATCH_ROWS, Spill, SpilledColumns, SpilledTable, is_text_dtype
from .tables import OTHER_COLUMNS, RECORD_DATA_COLUMNS, RECORD_META_COLUMNS, TABLES, columns_of


#: rows converted and written at a time (publish streams each table in batches of this size)
BATCH_ROWS = 50_000
#: values converted at a time, whatever the table's width: 50k customer_record rows are 3.8M
#: values (76 columns), their lists and new str held at once; 500k values is ≈ 6.5k of those rows
#: (a batch of 1M held ≈ 57 MB of Python objects at 200k customers, the publish stage's peak).
#: A column of link's evidence counts as one value per feature (its text is ≈ 0.7 KB a row), so
#: match_edge goes ≈ 25k rows at a time, not 50k (narrow tables keep BATCH_ROWS)
BATCH_VALUES = 500_000
#: customer_record's column of each row's row in the spill file (SpilledColumns), while it is written
SPILL_ROW = "\x00spill_row"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _age_seconds(started: Any, now: datetime) -> float:
    """Seconds since an ISO time from run_log (0 when it cannot be read: not old)."""
    try:
        t = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return (now - t).total_seconds()


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns_of(table)})


def _empty_records() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in (*RECORD_DATA_COLUMNS, *RECORD_META_COLUMNS)})


def _empty_columns(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _convert_text(v: Any) -> str | None:
    """One cell of a column of mixed Python values as stored text."""
    if v is None or (not isinstance(v, (list, dict, tuple, np.ndarray)) and pd.isna(v)):
        return None
    if isinstance(v, (list, dict, tuple)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, np.ndarray):
        return json.dumps(v.tolist(), ensure_ascii=False, default=str)
    if isinstance(v, (datetime, pd.Timestamp)):
        return _iso(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _text_values(s: pd.Series) -> list:
    """A column as str-or-None, the way it is stored (wide columns are text)."""
    return _text_converter(s)(s)


def _text_converter(s: pd.Series) -> Callable[[pd.Series], list]:
    """How any part of the column `s` becomes stored text, decided once on the whole column
    (a batch converts exactly as the whole column would: `2` stays `2.0` beside a `2.5`)."""
    if s.dtype == object:
        # all text and nothing missing: one scan (an isna() over every cell cost more than this)
        if pd.api.types.infer_dtype(s, skipna=False) == "string":
            return _no_missing
        if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            return _strings  # text with missing values (or none at all)
    if _is_text_extension(s.dtype):
        return _extension_strings
    if pd.api.types.is_integer_dtype(s) or pd.api.types.is_float_dtype(s):
        f = s.astype("float64")
        integral = bool(((f % 1 == 0) | f.isna()).all())

        def numbers(part: pd.Series) -> list:
            g = part.astype("float64")
            text = (g.astype("Int64") if integral else g).astype(str).astype(object)
            return text.where(g.notna(), None).tolist()

        return numbers
    return lambda part: [_convert_text(v) for v in part.tolist()]


def is_evidence(dtype: Any) -> bool:
    """link's evidence codes (crmclean.link.evidence): JSON text joined when it is read."""
    from ..link.evidence import EvidenceDtype

    return isinstance(dtype, EvidenceDtype)


def evidence_features(column: pd.Series) -> int:
    """How many JSON pieces a row of `column` joins: its features for link's evidence, else 1."""
    return max(1, column.array.features) if is_evidence(column.dtype) else 1


def _is_text_extension(dtype: Any) -> bool:
    """Text held outside Python objects (crmclean.spill.is_text_dtype) or link's evidence codes."""
    return is_evidence(dtype) or is_text_dtype(dtype)


def _extension_strings(part: pd.Series) -> list:
    """Arrow/pandas text as str-or-None in one conversion (not a Python call per value:
    365k raw rows 0.45 -> 0.13 CPU s)."""
    return part.to_numpy(dtype=object, na_value=None).tolist()


def _no_missing(part: pd.Series) -> list:
    return part.tolist()


def _strings(part: pd.Series) -> list:
    """Text with missing values: NaN/NA as None (a numpy mask, not a pandas `where`)."""
    values = part.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()  # an object column's values are the frame's own
        values[missing] = None
    return values.tolist()


def _float_values(s: pd.Series) -> list:
    f = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
    values = f.astype(object)  # Python floats
    values[np.isnan(f)] = None
    return values.tolist()


def _int_values(s: pd.Series) -> list:
    f = pd.to_numeric(s, errors="coerce").astype("float64")
    return [None if np.isnan(v) else int(v) for v in f.tolist()]


def _pack_records(df: pd.DataFrame) -> pd.DataFrame:
    """Columns outside the fixed customer_record shape go into `other_columns` as JSON."""
    fixed = set(RECORD_DATA_COLUMNS) | set(RECORD_META_COLUMNS) | {OTHER_COLUMNS}
    extra_cols = [c for c in df.columns if c not in fixed]
    if not extra_cols:
        return df
    out = df.copy(deep=False)  # shares the columns kept (drop() would copy all of them)
    for c in extra_cols:
        del out[c]
    extra = df[extra_cols]
    codes = _row_codes(extra)
    if codes is None:
        out[OTHER_COLUMNS] = _pack_rows(extra)
        return out
    # extra columns repeat a few values (tens of distinct rows in 400k): each distinct row is
    # packed once and its text shared by every row like it
    _, first, inverse = np.unique(_row_ids(codes), return_index=True, return_inverse=True)
    texts = np.asarray(_pack_rows(extra.iloc[first]), dtype=object)
    out[OTHER_COLUMNS] = texts[inverse.reshape(-1)].tolist()
    return out


def _row_codes(extra: pd.DataFrame) -> np.ndarray | None:
    """Each row as its columns' factorize codes (rows with equal codes pack to the same JSON),
    or None when a column could hold values equal in Python but packed differently (1 == 1.0
    == True): only all-text or all-bool columns are coded, categories of text included (the
    flags and fingerprint as crmclean.frames.compacted keeps them: without them every row was
    packed on its own, 365k JSON texts held through publish at 200k customers, ≈ 52 MB)."""
    codes = []
    for c in extra.columns:
        s = extra[c]
        if not (
            s.dtype == bool
            or is_text_dtype(s.dtype)
            or pd.api.types.infer_dtype(s, skipna=True) in ("string", "boolean", "empty")
        ):
            return None
        codes.append(pd.factorize(s, use_na_sentinel=True)[0])
    return np.stack(codes, axis=1)


def _row_ids(codes: np.ndarray) -> np.ndarray:
    """One int64 per row, equal exactly where the rows' codes are (mixed radix of the columns'
    codes when that fits, else the rows' ranks): sorting numbers, not rows (0.8 → 0.05 s at 200k)."""
    sizes = codes.max(axis=0, initial=-1).astype(np.int64) + 2  # codes run from -1 (missing)
    if float(np.prod(sizes.astype(float))) >= 2.0**62:
        return np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)
    ids = np.zeros(len(codes), dtype=np.int64)
    for j, size in enumerate(sizes):
        ids = ids * size + (codes[:, j] + 1)
    return ids


def _pack_rows(extra: pd.DataFrame) -> list[str]:
    """One sorted-key JSON object per row, its missing values left out."""
    packed: list[str] = []
    for start in range(0, len(extra), BATCH_ROWS):  # one batch of row dicts at a time
        part = extra.iloc[start : start + BATCH_ROWS]
        part = part.astype(object).where(part.notna(), None)
        packed.extend(
            json.dumps(
                {
                    k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                    for k, v in row.items()
                    if v is not None
                },
                ensure_ascii=False,
                sort_keys=True,
            )
            for row in part.to_dict("records")
        )
    return packed


def _unpack_records(df: pd.DataFrame) -> pd.DataFrame:
    if OTHER_COLUMNS not in df.columns:
        return df
    packed = df[OTHER_COLUMNS]
    df = df.drop(columns=[OTHER_COLUMNS])
    if packed.notna().any():
        # each distinct JSON text is parsed once (a few hundred distinct texts for 400k rows)
        codes, uniques = pd.factorize(packed, use_na_sentinel=True)
        parsed = pd.DataFrame([json.loads(v) if v else {} for v in uniques] + [{}])
        extra = parsed.iloc[codes].set_axis(df.index)
        extra = extra.astype(object).where(extra.notna(), None)
        for c in [c for c in extra.columns if c in df.columns]:  # never two columns of one name
            df[c] = df[c].where(df[c].notna(), extra.pop(c))
        df = pd.concat([df, extra], axis=1)
    return df


class Rows:
    """A frame's rows typed for its table, made into tuples one batch at a time as they are
    read: 400k customer_record rows of 85 columns held as tuples at once would be ~35M
    references (≈ 0.6 GB with the column lists they are zipped from). How each column is
    typed is decided once on the whole column, so every batch, and every subset `take`s,
    converts exactly as the whole frame would."""

    def __init__(self, df: pd.DataFrame, columns: list[tuple[Any, Callable[..., list]]]):
        self.df = df
        # (frame column, a tuple of them, or None for an absent one → NULL; converter of their slices)
        self._columns = columns

    def __len__(self) -> int:
        return len(self.df)

    def batches(self, size: int | None = None) -> Iterator[list[tuple]]:
        for batch in self.lazy_batches(size):
            rows = list(batch)
            del batch
            yield rows
            del rows  # before the next batch is made (see lazy_batches)

    def lazy_batches(self, size: int | None = None) -> Iterator[Iterator[tuple]]:
        """The batches as iterators of row tuples (a consumer that takes one row at a time, as
        executemany does, lets zip reuse one tuple instead of holding a list of them). A batch
        is let go before the next one is made (a loop variable would hold it meanwhile: two
        batches at once), so a consumer drops its own reference before asking for the next."""
        for columns in self.column_batches(size):
            rows = zip(*columns)
            del columns
            yield rows
            del rows

    def column_batches(self, size: int | None = None) -> Iterator[list[list]]:
        """The batches as their columns' values (one list per table column, in order), each
        column sliced from the frame's own (slicing the frame, then taking its columns, cost
        more than converting them)."""
        size = size or max(1, min(BATCH_ROWS, BATCH_VALUES // max(self._width(), 1)))
        columns = [(self._sources(c), convert) for c, convert in self._columns]
        for start in range(0, len(self.df), size):
            n = min(size, len(self.df) - start)
            yield [
                [None] * n if s is None else convert(*(x.iloc[start : start + n] for x in s)) for s, convert in columns
            ]

    def _width(self) -> int:
        """Values a row makes: one a column, an evidence column one a feature (its pieces)."""
        return sum(evidence_features(self.df[c]) if isinstance(c, str) else 1 for c, _ in self._columns)

    def _sources(self, column: Any) -> list[pd.Series] | None:
        if column is None:
            return None
        return [self.df[c] for c in (column if isinstance(column, tuple) else (column,))]

    def __iter__(self) -> Iterator[tuple]:
        for batch in self.batches():
            yield from batch

    def take(self, positions) -> "Rows":
        """The rows at these positions, typed as in the whole frame."""
        return Rows(self.df.take(np.asarray(positions, dtype=np.int64)), self._columns)


class SpilledRows(Rows):
    """The rows of a table waiting on disk (crmclean.spill.SpilledTable), read and made into
    tuples a batch at a time as they are written. Every column is text, read back as it was
    written (str or None): what Rows' text conversion gives for the same values."""

    def __init__(self, table: SpilledTable, positions: np.ndarray | None = None):
        self.table = table
        self.positions = positions  # ascending row numbers (take), or None: every row

    def __len__(self) -> int:
        return len(self.table) if self.positions is None else len(self.positions)

    def column_batches(self, size: int | None = None) -> Iterator[list[list]]:
        start = 0
        for columns in self.table.column_batches(size or SPILL_BATCH_ROWS):
            n = len(columns[0])
            if self.positions is None:
                yield columns
            else:
                lo, hi = np.searchsorted(self.positions, [start, start + n])
                picked = (self.positions[lo:hi] - start).tolist()
                if picked:
                    yield [[column[i] for i in picked] for column in columns]
            start += n
            del columns  # before the next batch is read (Rows.lazy_batches)

    def take(self, positions) -> "SpilledRows":
        """The rows at these positions (ascending: the order they are read in)."""
        at = np.asarray(positions, dtype=np.int64)
        if len(at) > 1 and bool((np.diff(at) < 0).any()):
            raise ValueError("rows of a spilled table are taken in ascending order")
        return SpilledRows(self.table, at if self.positions is None else self.positions[at])


def batches(rows: "Rows | list[tuple]", size: int | None = None) -> Iterator[list[tuple]]:
    """Rows (lazy) or a list of tuples in lists of at most `size` (BATCH_ROWS) rows."""
    if isinstance(rows, Rows):
        yield from rows.batches(size)
        return
    size = size or BATCH_ROWS
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def batches_once(rows: "Rows | list[tuple]") -> Iterator[Iterable[tuple]]:
    """As `batches`, but a batch of Rows is an iterator of its tuples: read each once."""
    if isinstance(rows, Rows):
        yield from rows.lazy_batches()
        return
    yield from batches(rows)


def frame_rows(name: str, df: "pd.DataFrame | SpilledTable", spill: Spill | None = None) -> tuple[list[str], Rows]:
    """A frame as (column names, Rows) typed for the table (missing columns → NULL); a spilled
    table as the rows on disk. With `spill` (customer_record), the spilled columns of this run's
    records are read from their file as each batch is made (spill.SpilledColumns)."""
    table = TABLES[name]
    if isinstance(df, SpilledTable):  # written as the table's text columns (spill_table)
        return columns_of(name), SpilledRows(df)
    if name == "customer_record":
        df = _pack_records(df)
    spilled = None
    if spill is not None and name == "customer_record":
        spilled = SpilledColumns(spill, df["record_key"])
        df = df.copy(deep=False)  # after packing: the row numbers are not an extra column
        df[SPILL_ROW] = spilled.positions
    cols: list[str] = []
    columns: list[tuple[Any, Callable[..., list]]] = []
    for col in table.columns:
        cols.append(col.name)
        if spilled is not None and col.name in spilled.spill.columns:
            columns.append(_spilled_column(spilled, col.name, df))
            continue
        if col.name not in df.columns:
            columns.append((None, _no_values))
            continue
        kind = col.type.__class__.__name__
        if kind == "Float":
            columns.append((col.name, _float_values))
        elif kind == "Integer":
            columns.append((col.name, _int_values))
        else:
            columns.append((col.name, _text_converter(df[col.name])))
    return cols, Rows(df, columns)


def _no_values(part: pd.Series) -> list:
    return [None] * len(part)


def _spilled_column(spilled: SpilledColumns, name: str, df: pd.DataFrame) -> tuple[Any, Callable[..., list]]:
    """A spilled column's Rows entry: the file's value for this run's records; rows of other
    runs (read from the store) keep what the frame holds for them, as `spill.restore` does."""
    if name not in df.columns or not df[name].notna().any():
        return SPILL_ROW, lambda at: spilled.values(name, at.to_numpy())

    def with_kept(at: pd.Series, kept: pd.Series) -> list:
        positions = at.to_numpy()
        values = spilled.values(name, positions)
        if (positions >= 0).all():
            return values
        held = _strings(kept)
        return [h if p < 0 else v for p, v, h in zip(positions.tolist(), values, held)]

    return (SPILL_ROW, name), with_kept


def _typed(name: str, df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The same dtypes whatever the backend: text as object (None for NULL), floats as float64,
    integers as int64 (float64 when some are NULL)."""
    if not len(df):
        return _empty(name) if columns is None else df
    for col in TABLES[name].columns:
        if columns is not None and col.name not in columns:
            continue
        kind = col.type.__class__.__name__
        s = df[col.name]
        if kind in ("Float", "Integer"):
            f = pd.to_numeric(s, errors="coerce").astype("float64")
            df[col.name] = f.astype("int64") if kind == "Integer" and f.notna().all() else f
        elif s.dtype != object:  # DB text arrives as str/None already: no per-cell NaN scan
            df[col.name] = s.astype(object).where(s.notna(), None)
    return df


def max_master_number(ids: pd.Series) -> int:
    """Largest numeric part of any master id (0 when none), as ids.master_number reads one:
    the digits after a leading `C`. Plain string methods on the distinct ids (200k at 200k
    customers: pandas' .str accessors cost ≈ 0.25 CPU s of every incremental night)."""
    texts = [str(v) for v in pd.unique(ids.dropna().to_numpy(dtype=object))]
    digits = [t[1:] for t in texts if t.startswith("C")]
    if digits and all(d.isascii() and d.isdigit() and len(d) < 19 for d in digits):  # as every id we write
        return max(map(int, digits))
    nums = pd.to_numeric(pd.Series(digits, dtype=object), errors="coerce")
    return int(nums.max()) if nums.notna().any() else 0
