"""Columns no stage reads between standardize and publish, kept on disk meanwhile (issue 14).

`raw` (each input row as read, ~420 bytes a record) is the largest column of the records
frame, and only `customer_record` publishes it: link, cluster, survivorship and the checks
never read it. Standardize writes it to Parquet in the run folder (`<run>/spill/`) and drops it
from the frame; publish reads it back for the customer_record rows of this run's records (by
record_key) a batch of written rows at a time (`SpilledColumns`: never a whole column in memory,
as Arrow or as Python str). The file is removed when the run ends, whatever the outcome:
it holds the input's personal data.

A whole published table can wait there too (`SpilledTable`: master_lineage, ~7 rows per
record): written a batch of rows at a time as soon as it is built, read back a batch at a time
by publish, and filtered by the report, so it is never held in memory as Python objects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from .memory import release_arrow

#: record columns only customer_record reads after standardize: ingest's text columns that no
#: stage between standardize and publish reads (link and survivorship read the `_std` values;
#: the raw birth date, e-mail, phones, name, address, city and company stay: survivorship and
#: the review queue's record summaries read them). Each is made by ingest for every record,
#: reused records included, so the spilled value is the one customer_record publishes.
SPILLED_COLUMNS = (
    "raw",
    "locator",
    "file",
    "record_id",
    "extra",
    "first_name",
    "last_name",
    "gender",
    "landline",
    "national_id",
    "state",
    "postal_code",
    "country",
    "created_at",
    "updated_at",
)
#: raw columns the review queue's record summaries read only where a standardized column is
#: missing (store.build._record_summaries: the `_std` value, else the raw one; the phone falls back
#: to the raw mobile, else the raw phone, where phone_std is missing): spilled whole, and the
#: frame keeps each only on the rows where that column is missing (≈ 80 MB of str at 200k).
HELD_WHERE_MISSING = {
    "full_name": "full_name_std",
    "email": "email_std",
    "address": "address_std",
    "mobile": "phone_std",
    "phone": "phone_std",
}
SPILL_DIR = "spill"
#: rows of a spilled table converted at a time: Arrow's allocator keeps about what the largest
#: batch took (2.6M lineage rows at 365k records: +24 MB at 20k rows a batch, +69 MB at 50k)
SPILL_BATCH_ROWS = 20_000


@dataclass(frozen=True)
class Spill:
    """Where this run's spilled columns are (a Parquet file of record_key + the columns)."""

    path: Path
    columns: tuple[str, ...]


def spill_columns(
    std: pd.DataFrame, out_dir: Path, columns=SPILLED_COLUMNS, held: dict[str, str] = HELD_WHERE_MISSING
) -> tuple[pd.DataFrame, Spill | None]:
    """(`std` without `columns` and with each `held` column only where its standardized
    column is missing, where they went); nothing spilled when it holds none of them. The rows
    go to disk SPILL_BATCH_ROWS at a time: converted all at once, the columns' Arrow copies
    (≈ 240 MB at 200k customers) were the run's peak beside the frame."""
    wanted = (*columns, *(c for c, by in held.items() if by in std.columns))
    present = tuple(c for c in wanted if c in std.columns and _all_text(std[c]))
    if not present or "record_key" not in std.columns or not _all_text(std["record_key"]):
        return std, None
    # row groups of SPILL_BATCH_ROWS: publish reads back only the groups a written batch needs
    with TableWriter("records", ["record_key", *present], out_dir) as writer:
        for at in range(0, max(len(std), 1), SPILL_BATCH_ROWS):
            writer.write(std.iloc[at : at + SPILL_BATCH_ROWS])
    slim = std.copy(deep=False)  # drop() would copy every column kept (≈ 200 MB at 200k)
    for c in present:
        if c in held:
            slim[c] = _where_missing(std[c], std[held[c]])
        else:
            del slim[c]
    return slim, Spill(path=writer.path, columns=present)


def _all_text(column: pd.Series) -> bool:
    """Every value text or missing (what the file's text columns hold)."""
    if column.dtype == object:
        return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    return is_text_dtype(column.dtype)


def is_text_dtype(dtype: Any) -> bool:
    """Text held outside Python objects: Arrow strings (the raw rows restored from the spill),
    pandas' string dtype or categories of text (the quality flags: crmclean.frames.compacted)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.api.types.infer_dtype(dtype.categories, skipna=True) in ("string", "empty")
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return bool(pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype))
    return isinstance(dtype, pd.StringDtype)


def _where_missing(values: pd.Series, standardized: pd.Series) -> pd.Series:
    """`values` on the rows where `standardized` is missing, None elsewhere (a new array: the
    str objects of the other rows are let go)."""
    kept = np.full(len(values), None, dtype=object)
    missing = pd.isna(standardized.to_numpy(dtype=object))
    kept[missing] = values.to_numpy(dtype=object)[missing]
    return pd.Series(kept, index=values.index, name=values.name)


class SpilledColumns:
    """The spilled columns of the customer_record rows being written, read back from the file
    a batch of rows at a time (the row groups the batch needs, one thread): publish never holds a
    whole spilled column, as Arrow or as Python str (restoring them whole took publish's 200k
    peak to +630 MB over its plan; read per batch, +310 MB: bench/README, mem14i)."""

    def __init__(self, spill: Spill, record_keys: Any):
        import pyarrow.parquet as pq

        self.spill = spill
        with pq.ParquetFile(spill.path) as file:
            meta = file.metadata
            sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            keys = pd.Index(file.read(columns=["record_key"], use_threads=False).column(0).to_numpy())
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        first = np.flatnonzero(~keys.duplicated())  # record_key is unique in a run's records; else the first
        found = keys[first].get_indexer(record_keys)
        #: each row's row in the file, -1 for rows of other runs (they keep what they hold)
        self.positions = np.where(found >= 0, first[found], -1).astype(np.int64)
        del keys
        release_arrow()
        self._read_for: bytes | None = None
        self._values: dict[str, list] = {}
        self._groups: dict[int, Any] = {}  # the row groups the last batch read, as Arrow tables

    def values(self, column: str, at: np.ndarray) -> list:
        """`column`'s values at the file's rows `at` (None where `at` < 0). A batch's columns
        are read together, once: the next column asked for the same rows reuses that read."""
        key = at.tobytes()
        if key != self._read_for:
            self._values, self._read_for = {}, None  # the last batch's values go before the next read
            self._values, self._read_for = self._read(at), key
        return self._values[column]

    def _read(self, at: np.ndarray) -> dict[str, list]:
        import pyarrow as pa

        found = at >= 0
        if not found.any():
            return {c: [None] * len(at) for c in self.spill.columns}
        group_of = np.searchsorted(self._starts, at[found], side="right") - 1
        groups = np.unique(group_of)
        table = pa.concat_tables([self._group(g) for g in groups.tolist()])
        sizes = self._starts[groups + 1] - self._starts[groups]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # where each group starts in `table`
        local = np.zeros(len(at), dtype=np.int64)
        local[found] = at[found] - self._starts[group_of] + offsets[np.searchsorted(groups, group_of)]
        index = pa.array(local, mask=~found)
        values = {c: table.column(c).take(index).to_numpy(zero_copy_only=False).tolist() for c in self.spill.columns}
        self._groups = {g: self._groups[g] for g in groups[-1:].tolist()}  # the next batch starts there
        del table, index
        release_arrow()  # mimalloc keeps what each read took otherwise
        return values

    def _group(self, group: int) -> Any:
        """One row group's spilled columns, read once for the batches that share it (written in
        the file's order, a batch of ≈ 6.5k rows needs one or two groups of 20k)."""
        import pyarrow.parquet as pq

        if group not in self._groups:
            with pq.ParquetFile(self.spill.path) as file:
                self._groups[group] = file.read_row_group(group, columns=list(self.spill.columns), use_threads=False)
        return self._groups[group]


def restore(table: Any, spill: Spill | None) -> Any:
    """customer_record (a frame, or a Scoped of one) with the spilled columns back on the rows
    of this run's records; rows of other records keep what they hold (read from the store)."""
    if spill is None:
        return table
    rows = getattr(table, "rows", table)
    restored = _restored(rows, spill)
    release_arrow()  # the file as read: only the column taken from it is kept
    if rows is table:
        return restored
    import dataclasses

    return dataclasses.replace(table, rows=restored)


def _restored(rows: pd.DataFrame, spill: Spill) -> pd.DataFrame:
    """The spilled columns stay Arrow text (one buffer, not a Python str per row): publish
    turns each batch of rows into Python values as it writes it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    stored = pq.read_table(spill.path)
    keys = pd.Index(stored.column("record_key").to_numpy(zero_copy_only=False))
    first = np.flatnonzero(~keys.duplicated())  # record_key is unique in a run's records; else the first
    found_at = keys[first].get_indexer(rows["record_key"])
    at = pa.array(np.where(found_at >= 0, first[found_at], 0), mask=found_at < 0)  # null: not this run's
    out = rows.copy(deep=False)
    for c in spill.columns:
        column = stored.column(c).take(at)
        if c in rows.columns and rows[c].notna().any():  # rows of earlier runs keep their stored value
            kept = pa.array(rows[c].to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
            column = pc.if_else(pa.array(found_at >= 0), column, kept)
        out[c] = pd.Series(pd.arrays.ArrowExtensionArray(column), index=rows.index)
    return out


@dataclass(frozen=True)
class SpilledTable:
    """A published table on disk until publish: Parquet, every column text (str or None)."""

    name: str
    path: Path
    row_count: int  # not `rows`: readers take a Scoped's `rows` by getattr

    def __len__(self) -> int:
        return self.row_count

    @property
    def empty(self) -> bool:
        return self.row_count == 0

    def column_batches(self, size: int) -> Iterator[list[list]]:
        """The rows `size` at a time, each batch as its columns' Python values.
        Read as the file stores them, dictionary-encoded: one str per distinct value of a batch,
        shared by its rows (master ids, fields and rules repeat; -30 % CPU against a str per row)."""
        import pyarrow.parquet as pq

        try:  # one thread: Arrow's per-thread heaps kept what each decoded
            with pq.ParquetFile(self.path) as schema:
                names = schema.schema_arrow.names
            with pq.ParquetFile(self.path, read_dictionary=names) as file:
                for batch in file.iter_batches(batch_size=size, use_threads=False):
                    yield [_decoded(column) for column in batch.columns]
        finally:
            release_arrow()  # what reading took (~60 MB for 2.6M lineage rows) goes back to the OS

    def frame(self, columns: list[str] | None = None, where: Any = None) -> pd.DataFrame:
        """The table (or these columns of the rows a pyarrow `where` expression keeps) as a
        frame of Python objects, None for missing: for readers of a part of it."""
        import pyarrow.parquet as pq

        table = pq.read_table(self.path, columns=columns, filters=where)
        frame = pd.DataFrame({c: table.column(c).to_pylist() for c in table.column_names}, dtype=object)
        del table
        release_arrow()
        return frame


def _decoded(column: Any) -> list:
    """A dictionary-encoded Arrow text column as Python values, None for null."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        return column.to_pylist()
    words = np.asarray(column.dictionary.to_pylist() + [None], dtype=object)
    return words[column.indices.fill_null(len(words) - 1).to_numpy()].tolist()


def spill_table(name: str, batches: Iterable[pd.DataFrame], columns: list[str], out_dir: Path) -> SpilledTable:
    """Write a table's rows, given as frames of text columns (str or None), to the run's spill
    folder; raises what pyarrow raises for a value that is not text (nothing is left behind)."""
    with TableWriter(name, columns, out_dir) as writer:
        for part in batches:
            writer.write(part)
    return writer.table


class TableWriter:
    """`spill_table` a part at a time, for a writer that makes its parts in turn (survivorship's
    lineage, a group of clusters at a time): `with TableWriter(...) as w: w.write(part)`, then
    `w.table`. On an error (a value that is not text) the file is removed and the error raised."""

    def __init__(self, name: str, columns: list[str], out_dir: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = Path(out_dir) / SPILL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.name, self.columns, self.rows = name, list(columns), 0
        self.path = folder / f"{name}.parquet"
        self.schema = pa.schema([(c, pa.large_string()) for c in columns])
        self._writer = pq.ParquetWriter(self.path, self.schema)

    def write(self, part: pd.DataFrame) -> None:
        import pyarrow as pa

        arrays = [
            pa.array(utf8_once(part[c].to_numpy(dtype=object)), type=pa.large_string(), from_pandas=True)
            for c in self.columns
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(part)

    @property
    def table(self) -> SpilledTable:
        return SpilledTable(name=self.name, path=self.path, row_count=self.rows)

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._writer.close()
            if kind is not None:
                self.path.unlink(missing_ok=True)
        finally:
            release_arrow()


def utf8_once(values: np.ndarray) -> list:
    """`values` with each non-ASCII str as its UTF-8 bytes (what Arrow stores for it). Given the
    str, Arrow asks CPython for its UTF-8, which CPython then keeps inside the str for as long
    as it lives (an ASCII str is its own UTF-8): the spilled columns' non-ASCII texts (names,
    addresses, the raw rows holding them) grew by ≈ 120 MB at 200k customers until the records
    frame was let go. The lineage's values are mostly the standardized frame's own str objects,
    kept to the end of the run: the same holds there (≈ 1 CPU s for its 2.6M rows at 200k)."""
    return [v.encode() if type(v) is str and not v.isascii() else v for v in values]


def remove(out_dir: Path) -> None:
    """Delete the run's spilled columns (they hold personal data); never raises."""
    shutil.rmtree(Path(out_dir) / SPILL_DIR, ignore_errors=True)
