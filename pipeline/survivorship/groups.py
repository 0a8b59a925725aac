"""Survivorship's groups of clusters on this machine: how many, where they split, and how a
forked child's golden and lineage frames come back (`executors.fork_map`).

A child's frames travel as an Arrow file: numeric columns as they are, text columns
dictionary-encoded (one string per distinct value; the parent's rows point at those, as the
in-process build's rows share the table's distinct values), NaN told apart from None so the
frames read back equal to the ones built. A column of anything else is pickled whole."""

from __future__ import annotations

import itertools
import json
import operator
import os
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa

_META = b"crmclean.frames"


def group_count(workers: int | None, records: int, clusters: int, in_process_below: int | None) -> int:
    """How many groups survivorship builds on local processes: one per worker (the cores
    permitting) from `in_process_below` records on, never more than the clusters; None: one."""
    if in_process_below is None or not workers or workers <= 1 or records < in_process_below:
        return 1
    return max(1, min(workers, os.cpu_count() or 1, clusters))


def group_of_rows(cluster: np.ndarray, parts: int) -> np.ndarray:
    """Per row of `clusters`: its group (0 … parts-1), whole clusters in cluster-number order,
    about as many records in each (the work grows with the records, not the clusters)."""
    ordered = np.sort(cluster)
    edges = ordered[(np.arange(1, parts) * len(ordered)) // parts]
    return np.searchsorted(edges, cluster, side="right")


# ---------------------------------------------------------------- a child's frames, as Arrow


def write_frames(frames: tuple[pd.DataFrame, ...], path: str) -> None:
    """`frames` into Arrow IPC files `path`.0, `path`.1 … (read back by `read_frames`)."""
    for f, frame in enumerate(frames):
        arrays: dict[str, pa.Array] = {}
        meta: dict[bytes, bytes] = {}
        layout = []
        for i, name in enumerate(frame.columns):
            kind = _encode(frame[name].to_numpy(), str(i), arrays, meta)
            layout.append([name, kind, str(frame[name].dtype)])
        meta[_META] = json.dumps({"columns": layout, "rows": len(frame)}).encode()
        table = pa.table(arrays) if arrays else pa.table({"": pa.nulls(len(frame))})
        table = table.replace_schema_metadata(meta)
        with pa.OSFile(f"{path}.{f}", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    with open(f"{path}.count", "w", encoding="ascii") as fh:
        fh.write(str(len(frames)))


def read_frames(path: str) -> tuple[pd.DataFrame, ...]:
    """The frames `write_frames` wrote at `path`, equal to the ones written."""
    with open(f"{path}.count", encoding="ascii") as fh:
        count = int(fh.read())
    out = []
    for f in range(count):
        with pa.memory_map(f"{path}.{f}") as source:
            table = pa.ipc.open_file(source).read_all()
        meta = table.schema.metadata or {}
        layout = json.loads(meta[_META])
        columns = {}
        for i, (name, kind, dtype) in enumerate(layout["columns"]):
            columns[name] = pd.Series(_decode(table, str(i), kind, meta), dtype=dtype, copy=False)
        frame = pd.DataFrame(columns, columns=[c[0] for c in layout["columns"]], copy=False)
        out.append(frame if len(columns) else pd.DataFrame(index=pd.RangeIndex(layout["rows"])))
    return tuple(out)


def _encode(values: np.ndarray, key: str, arrays: dict[str, pa.Array], meta: dict[bytes, bytes]) -> str:
    """One column into `arrays` (or `meta`, pickled); its kind for `_decode`. Text is
    factorized by pandas first: Arrow then converts each distinct string once."""
    if values.dtype.kind in "biuf":
        arrays[key] = pa.array(values)
        return "numeric"
    if values.dtype == object:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        nulls = values[codes < 0]
        nan = np.fromiter(map(operator.is_not, nulls, itertools.repeat(None)), bool, len(nulls))
        if set(map(type, nulls[nan])) <= {float}:  # NaN or None: told apart below
            try:
                distinct = pa.array(uniques, type=pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all text
                distinct = None
            if distinct is not None:
                indices = pa.array(codes.astype(np.int32), mask=codes < 0)
                arrays[key] = pa.DictionaryArray.from_arrays(indices, distinct)
                if nan.any():
                    where = np.zeros(len(values), bool)
                    where[np.flatnonzero(codes < 0)[nan]] = True
                    arrays[key + ".nan"] = pa.array(where)
                return "text"
    meta[key.encode()] = pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    return "pickled"


def _decode(table: pa.Table, key: str, kind: str, meta: dict[bytes, bytes]) -> np.ndarray:
    if kind == "pickled":
        return pickle.loads(meta[key.encode()])
    column = table.column(key).combine_chunks()
    if kind == "numeric":
        return column.to_numpy(zero_copy_only=False)
    distinct = np.array([*column.dictionary.to_pylist(), None], dtype=object)
    values = distinct[column.indices.fill_null(-1).to_numpy(zero_copy_only=False)]
    if key + ".nan" in table.column_names:
        values[table.column(key + ".nan").to_numpy()] = np.nan
    return values
