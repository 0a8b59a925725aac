"""Standardize each distinct input once, optionally over several processes.

Real CRM exports repeat values heavily (cities, countries, dates, shared phones), so every
standardizer runs on the distinct input tuples only and the result is mapped back by integer
codes (vectorized). Large distinct sets are split into chunks over a process pool; small ones
stay in-process because spawning workers costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

IN_PROCESS_BELOW = 20_000  # distinct tuples; below this the pool is not worth its overhead
CHUNK_SIZE = 5_000


def distinct_codes(columns: Sequence[pd.Series]) -> tuple[np.ndarray, list[tuple]]:
    """(row → distinct-tuple code, distinct tuples). Missing values become None.

    Each column is factorized (hashing), then the per-column codes are folded pairwise into
    one integer key and factorized again: vectorized, no Python loop over rows."""
    per_col_codes = []
    per_col_uniques = []
    for s in columns:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        per_col_codes.append(codes.astype(np.int64) + 1)  # 0 = missing
        per_col_uniques.append(np.concatenate([np.array([None], dtype=object), np.asarray(uniques, dtype=object)]))
    if len(columns) == 1:
        combined = per_col_codes[0]
    else:
        combined = per_col_codes[0]
        for codes, uniques in zip(per_col_codes[1:], per_col_uniques[1:]):
            combined = pd.factorize(combined * np.int64(len(uniques)) + codes)[0].astype(np.int64)
    keys, first_rows = np.unique(combined, return_index=True)
    remap = np.full(int(combined.max()) + 1 if len(combined) else 0, -1, dtype=np.int64)
    remap[keys] = np.arange(len(keys))
    tuples = list(zip(*(u[c[first_rows]] for c, u in zip(per_col_codes, per_col_uniques))))
    return remap[combined], tuples


def _run_chunk(fn: Callable, items: list[tuple], extra: tuple) -> list:
    return [fn(*item, *extra) for item in items]


def _fork_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def make_pool(workers: int) -> Executor | None:
    """A process pool for `workers` > 1 (fork start: workers inherit the loaded tables)."""
    if workers is None or workers <= 1 or (os.cpu_count() or 1) <= 1:
        return None
    try:
        return ProcessPoolExecutor(max_workers=workers, mp_context=_fork_context())
    except Exception:  # no multiprocessing on this platform: stay in-process
        return None


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


def expand(mapped: tuple[np.ndarray, list], names: Sequence[str], index) -> pd.DataFrame:
    """(codes, per-distinct result tuples) → one object column per tuple position, per row.
    Results are split on the distinct values and gathered with a numpy take."""
    codes, results = mapped
    columns = {}
    for pos, name in enumerate(names):
        values = np.empty(len(results), dtype=object)
        values[:] = [r[pos] for r in results]
        columns[name] = pd.Series(values[codes] if len(codes) else values[:0], index=index, dtype=object)
    return pd.DataFrame(columns, index=index)


def per_row(mapped: tuple[np.ndarray, list]) -> list:
    """(codes, results) → one result per row (for callers that want plain lists)."""
    codes, results = mapped
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return list(out[codes]) if len(codes) else []
