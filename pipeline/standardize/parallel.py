"""Standardize each distinct input once, optionally over several processes.

Real CRM exports repeat values heavily (cities, countries, dates, shared phones), so every
standardizer runs on the distinct input tuples only and the result is mapped back by integer
codes (vectorized). Large distinct sets are split into chunks over a process pool; small ones
stay in-process because spawning workers costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

IN_PROCESS_BELOW = 20_000  # distinct tuples; below this the pool is not worth its overhead
CHUNK_SIZE = 5_000


def distinct_codes(columns: Sequence[pd.Series]) -> tuple[np.ndarray, list[tuple]]:
    """(row → distinct-tuple code, distinct tuples). Missing values become None."""
    n = len(columns[0]) if columns else 0
    per_col_codes = []
    per_col_uniques = []
    for s in columns:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        per_col_codes.append(codes)
        per_col_uniques.append(np.asarray(uniques, dtype=object))
    if len(columns) == 1:
        codes = per_col_codes[0]
        uniques = [(u,) for u in per_col_uniques[0]]
        if (codes < 0).any():
            codes = np.where(codes < 0, len(uniques), codes)
            uniques.append((None,))
        return codes, uniques
    stacked = np.stack(per_col_codes, axis=1) if n else np.empty((0, len(columns)), dtype=np.int64)
    uniq_rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    tuples = [
        tuple(None if c < 0 else per_col_uniques[i][c] for i, c in enumerate(row)) for row in uniq_rows
    ]
    return np.asarray(inverse).reshape(-1), tuples


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
) -> list:
    """Apply `fn(*values, *extra)` once per distinct tuple of `columns`; return a list with one
    result per row. `fn` must be a module-level function (picklable) when a pool is used."""
    codes, uniques = distinct_codes(columns)
    if pool is not None and len(uniques) >= in_process_below:
        chunks = [uniques[i : i + CHUNK_SIZE] for i in range(0, len(uniques), CHUNK_SIZE)]
        results: list = []
        for part in pool.map(_run_chunk, [fn] * len(chunks), chunks, [extra] * len(chunks)):
            results.extend(part)
    else:
        results = _run_chunk(fn, uniques, extra)
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return list(out[codes]) if len(codes) else []


def unzip(results: list, names: Sequence[str], index) -> pd.DataFrame:
    """Per-row result tuples → a DataFrame with one object column per tuple position."""
    if not results:
        return pd.DataFrame({n: pd.Series(dtype=object, index=index) for n in names})
    cols = list(zip(*results))
    return pd.DataFrame({n: pd.Series(list(c), index=index, dtype=object) for n, c in zip(names, cols)})
