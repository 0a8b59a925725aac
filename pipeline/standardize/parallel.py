"""Standardize each distinct input once, optionally over several processes.

Real CRM exports repeat values heavily (cities, countries, dates, shared phones), so every
standardizer runs on the distinct input tuples only and the result is mapped back by integer
codes (vectorized). Large distinct sets are split into chunks over a process pool; small ones
stay in-process because spawning workers costs more than it saves.
"""

from __future__ import annotations

import pickle
import sys
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from functools import _lru_cache_wrapper, lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .. import progress
from ..memory import collector_paused

IN_PROCESS_BELOW = 20_000  # distinct tuples; below this the pool is not worth its overhead
CHUNK_SIZE = 5_000
TABLE_CACHE_MAX = 64  # an lru_cache bound up to this holds tables or patterns, not values
# Per-value caches a worker keeps from chunk to chunk: few keys, hit by every later chunk
# (a number's leading digits: emptied after each chunk, the phone job took ≈ 10 % more CPU).
KEPT_ACROSS_CHUNKS = frozenset({"crmclean.standardize.phones._kind_by_prefix"})


def factorize_columns(columns: Sequence[pd.Series]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per column: (row → code, 0 = missing; code → value with None at 0)."""
    out = []
    for s in columns:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        values = np.empty(len(uniques) + 1, dtype=object)
        values[1:] = np.asarray(uniques, dtype=object)
        out.append((codes.astype(np.int64) + 1, values))
    return out


def distinct_codes(
    columns: Sequence[pd.Series], per_column: list[tuple[np.ndarray, np.ndarray]] | None = None
) -> tuple[np.ndarray, list[tuple]]:
    """(row → distinct-tuple code, distinct tuples in first-seen order). Missing values become None.

    Each column is factorized (hashing), the per-column codes are folded into one integer key
    (re-factorized only when the key would overflow) and factorized once more: vectorized, no
    Python loop over rows."""
    per_column = per_column if per_column is not None else factorize_columns(columns)
    combined = per_column[0][0]
    span = len(per_column[0][1])
    for codes, uniques in per_column[1:]:
        if span * len(uniques) >= 2**62:
            combined = pd.factorize(combined)[0].astype(np.int64)
            span = int(combined.max()) + 1 if len(combined) else 1
        combined = combined * np.int64(len(uniques)) + codes
        span *= len(uniques)
    codes, _ = pd.factorize(combined)
    n = int(codes.max()) + 1 if len(codes) else 0
    first_rows = np.empty(n, dtype=np.int64)
    first_rows[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # last write wins = first occurrence
    tuples = list(zip(*(u[c[first_rows]] for c, u in per_column)))
    return codes.astype(np.int64), tuples


def _run_chunk(fn: Callable, items: list[tuple], extra: tuple) -> list:
    return [fn(*item, *extra) for item in items]


def make_pool(workers: int) -> Executor | None:
    """A pool for `workers` > 1 on the current fan-out (`crmclean.executors`): local fork
    processes that inherit the loaded tables, or a Dask cluster's executor."""
    from ..executors import current

    return current().executor(workers)


def map_distinct(
    fn: Callable[..., Any],
    columns: Sequence[pd.Series],
    extra: tuple = (),
    pool: Executor | None = None,
    in_process_below: int = IN_PROCESS_BELOW,
) -> tuple[np.ndarray, list]:
    """Apply `fn(*values, *extra)` once per distinct tuple of `columns`.

    Returns (row → result index, results). `fn` must be a module-level function (picklable)
    when a pool is used."""
    codes, uniques = distinct_codes(columns)
    results: list | None = None
    if pool is not None and len(uniques) >= in_process_below:
        chunks = [uniques[i : i + CHUNK_SIZE] for i in range(0, len(uniques), CHUNK_SIZE)]
        try:
            results = []
            for part in pool.map(_run_chunk, [fn] * len(chunks), chunks, [extra] * len(chunks)):
                results.extend(part)
        except (BrokenProcessPool, pickle.PicklingError, OSError):
            results = None  # a worker died or the platform refused: finish in-process
    if results is None:
        results = _run_chunk(fn, uniques, extra)
    return codes, results


def _run_chunk_columns(fn: Callable, items: list[tuple], extra: tuple) -> list[tuple]:
    """Worker side: results transposed to one tuple per output column, so the parent only
    gathers arrays instead of unpacking every result tuple; equal texts are one object
    (`interned`), which pickling keeps: the parent unpickles each distinct text once."""
    with collector_paused():
        return interned(list(zip(*(fn(*item, *extra) for item in items))))


def interned(columns: list[tuple], seen: dict | None = None) -> list[tuple]:
    """`columns` with every str equal to an earlier one (in any of them, or in `seen`) replaced
    by that earlier object. Distinct inputs often standardize to the same text (14k city_std
    values of 44 cities at 20k customers, a flag per value, email_key equal to email_std): one
    object each instead of one per distinct input tuple (the frame held ~1/3 of its str bytes
    twice or more). Values are unchanged; only their identity is shared."""
    seen = {} if seen is None else seen
    return [tuple([seen.setdefault(v, v) if type(v) is str else v for v in column]) for column in columns]


def _run_chunk_uncached(fn: Callable, items: list[tuple], extra: tuple) -> list[tuple]:
    """Pool side: `fn` without its own per-value cache. A field's tuples are distinct and each
    goes to one chunk, so in a worker that cache is never hit and only holds memory (~1 KB
    per value, hundreds of MB per worker at 200k customers). The per-value caches `fn` calls
    (a phone cell, a name part) are hit within a chunk and are emptied after it
    (`clear_value_caches`)."""
    try:
        return _run_chunk_columns(getattr(fn, "__wrapped__", fn), items, extra)
    finally:
        clear_value_caches()


def clear_value_caches() -> None:
    """Empty the standardizers' per-value caches (`value_caches`). In a worker they filled up
    chunk after chunk with values its later chunks rarely see again: the parsed phone cells
    alone took each worker from 82 to 230 MB PSS at 200k customers."""
    for cache in value_caches():
        cache.cache_clear()


@lru_cache(maxsize=1)
def value_caches() -> tuple[Any, ...]:
    """The lru_caches of crmclean.standardize that hold one entry per value seen (a bound
    above `TABLE_CACHE_MAX`), not the loaded reference tables or compiled patterns, nor
    `KEPT_ACROSS_CHUNKS`."""
    found: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        if name == __package__ or name.startswith(f"{__package__}."):
            for obj in vars(module).values():
                if isinstance(obj, _lru_cache_wrapper) and _holds_values(obj):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return tuple(found[key] for key in sorted(found))


def _holds_values(cache: Any) -> bool:
    maxsize = cache.cache_parameters()["maxsize"]
    kept = f"{cache.__module__}.{cache.__qualname__}" in KEPT_ACROSS_CHUNKS
    return maxsize is not None and maxsize > TABLE_CACHE_MAX and not kept


def _fill(columns: list[np.ndarray], part: list[tuple], start: int) -> int:
    """Copy a chunk's output columns into `columns` from row `start`; the next start."""
    size = len(part[0]) if part else 0
    for values, column in zip(columns, part):
        values[start : start + size] = column
    return start + size


class FieldJob:
    """One standardizer over the distinct input tuples of its columns, possibly spread over a
    pool. `submit` returns at once; `frame` waits and maps the results back to rows.

    Several jobs are submitted before any is collected, so the workers always have queued
    chunks while the parent factorizes, gathers and summarizes the other fields."""

    def __init__(self, fn: Callable, columns: Sequence[pd.Series], extra: tuple, names: Sequence[str]):
        self.fn, self.extra, self.names = fn, extra, tuple(names)
        self.inputs = factorize_columns(columns)
        self.codes, self.uniques = distinct_codes(columns, self.inputs)
        progress.expect(len(self.uniques), "values")  # the stage bar counts distinct values
        self.futures: list | None = None
        self.distinct: dict[str, np.ndarray] | None = None  # output column → value per distinct tuple
        self._factors: dict[str, tuple[np.ndarray, Any, bool]] = {}

    def submit(self, pool: Executor | None, in_process_below: int = IN_PROCESS_BELOW) -> "FieldJob":
        if pool is not None and len(self.uniques) >= in_process_below:
            size = max(CHUNK_SIZE, -(-len(self.uniques) // 64))  # at most ~64 chunks per field
            try:
                self.futures = [
                    pool.submit(_run_chunk_uncached, self.fn, self.uniques[i : i + size], self.extra)
                    for i in range(0, len(self.uniques), size)
                ]
            except (BrokenProcessPool, RuntimeError, OSError):
                self.futures = None
        return self

    def _columns(self) -> list[np.ndarray]:
        """One array per output column, one value per distinct tuple. Each chunk's result is
        copied in and let go as it arrives (the futures do not keep a second copy)."""
        out = [np.empty(len(self.uniques), dtype=object) for _ in self.names]
        seen: dict = {}  # texts already gathered: each chunk's equal texts become one object
        futures, self.futures = self.futures, None
        start = 0
        try:
            while futures:
                part = interned(futures.pop(0).result(), seen)
                start = _fill(out, part, start)
                progress.advance(len(part[0]) if part else 0)
        except (BrokenProcessPool, pickle.PicklingError, OSError):
            start = 0  # a worker died or the platform refused: finish in-process
        if start < len(self.uniques):  # no pool, or it failed
            _fill(out, _run_chunk_columns(self.fn, self.uniques, self.extra), 0)
            progress.advance(len(self.uniques))
        return out

    def result(self) -> dict[str, np.ndarray]:
        """Output column → one value per row (waits for the pool)."""
        if self.distinct is None:
            self.distinct = dict(zip(self.names, self._columns()))
        return {name: values[self.codes] for name, values in self.distinct.items()}

    def release(self) -> None:
        """Let go of the distinct tuples, their codes and outputs once the rows and the summary
        counts are taken: held to the end of the stage, every field's added up to ≈ 280 MB at
        200k customers while the phones were still parsed."""
        self.inputs, self.uniques, self.codes = [], [], np.empty(0, dtype=np.int64)
        self.distinct, self._factors = {}, {}

    def frame(self, index) -> pd.DataFrame:
        return pd.DataFrame(self.result(), index=index, copy=False)

    def input_present(self, pos: int) -> np.ndarray:
        """Per row: input column `pos` holds something other than whitespace (each distinct
        value tested once)."""
        codes, values = self.inputs[pos]
        present = np.array([v is not None and str(v).strip() != "" for v in values], dtype=bool)
        return present[codes]

    def per_row(self, column: str, test: Callable[[Any], bool]) -> np.ndarray:
        """`test` of an output column, evaluated once per distinct value of it, per row."""
        values, labels, missing = self._factorized(column)
        hit = np.fromiter((bool(test(v)) for v in labels), dtype=bool, count=len(labels))
        if missing:  # a missing value (code -1 reads the appended last entry)
            hit = np.append(hit, bool(test(None)))
        return hit[values][self.codes]

    def present_rows(self, column: str) -> np.ndarray:
        """Per row: output `column` holds a value (what `per_row(column, lambda v: v is not
        None)` gives after factorizing, without hashing every distinct value)."""
        assert self.distinct is not None, "result() first"
        return pd.notna(self.distinct[column])[self.codes]

    def _factorized(self, column: str) -> tuple[np.ndarray, Any, bool]:
        """(distinct tuple → code, distinct values, any missing) of an output column, once per
        column: the summary tests a flag column two or three times."""
        assert self.distinct is not None, "result() first"
        if column not in self._factors:
            values, labels = pd.factorize(self.distinct[column], use_na_sentinel=True)  # flags repeat a lot
            self._factors[column] = (values, labels, bool((values < 0).any()))
        return self._factors[column]


def per_row(mapped: tuple[np.ndarray, list]) -> list:
    """(codes, results) → one result per row (for callers that want plain lists)."""
    codes, results = mapped
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return list(out[codes]) if len(codes) else []
