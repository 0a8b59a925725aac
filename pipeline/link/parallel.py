"""One fork process pool per link() call: blocking rules, comparison chunks and scoring chunks
run in workers that inherit the column arrays at fork (nothing large is pickled)."""

from __future__ import annotations

import gc
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

from typing import Any

import numpy as np

from .blocking import rule_pairs
from .compare import FEATURE_NAMES, compare_pairs, extras_in

# ---------------------------------------------------------------- comparison, chunked/parallel

SETTINGS_KEY = "\0compare"  # the comparison thresholds, carried in the column dict to the workers

_WORKER_COLS: dict[str, Any] | None = None


def _init_worker(cols: dict[str, Any]) -> None:
    global _WORKER_COLS
    _WORKER_COLS = cols


def _compare_chunk(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    assert _WORKER_COLS is not None
    return compare_pairs(_WORKER_COLS, left, right, _WORKER_COLS.get(SETTINGS_KEY))


def _rule_task(rule: dict, b: int, max_block: int, is_new: np.ndarray | None):
    assert _WORKER_COLS is not None
    return rule_pairs(_WORKER_COLS, rule, b, max_block, is_new)


class _Pool:
    """One fork pool for a whole link() call (comparison, then scoring), started on first use.
    fork: the column arrays (and, once set, the scoring inputs) are inherited, not pickled."""

    def __init__(self, cols: dict[str, Any], workers: int):
        self.cols, self.workers = cols, workers
        self.executor: ProcessPoolExecutor | None = None

    def usable(self) -> bool:
        return self.workers > 1 and "fork" in mp.get_all_start_methods()

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            # The parent's objects are frozen out of the garbage collector while the workers
            # fork: a collection in a child writes to the header of every object it visits,
            # and copying those pages cost more than the blocking itself (1.5 s at 365k rows).
            gc.freeze()
            try:
                self.executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=mp.get_context("fork"),
                    initializer=_init_worker,
                    initargs=(self.cols,),
                )
                self.executor.submit(int).result()  # the workers fork now, while frozen
            finally:
                gc.unfreeze()
        return self.executor

    def run_rules(self, rules: list[dict], max_block: int, is_new: np.ndarray | None) -> list:
        """Blocking rules spread over the workers (for ``block``), results in rule order."""
        futures = [self.get().submit(_rule_task, rule, b, max_block, is_new) for b, rule in enumerate(rules)]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None


def compute_levels(
    cols: dict[str, Any],
    left: np.ndarray,
    right: np.ndarray,
    chunk_size: int,
    workers: int,
    pool: _Pool | None = None,
) -> np.ndarray:
    """Level matrix for all pairs, chunk by chunk; worker processes for large inputs."""
    own = pool is None
    pool = pool or _Pool(cols, workers)
    try:
        return _levels_later(cols, left, right, chunk_size, pool)()
    finally:
        if own:
            pool.close()


def _levels_later(cols: dict[str, Any], left: np.ndarray, right: np.ndarray, chunk_size: int, pool: _Pool):
    """compute_levels started in the pool's workers; returns a function that waits for the
    level matrix (the parent works on meanwhile). Without usable workers, computed now."""
    n = len(left)
    out = np.empty((n, len(FEATURE_NAMES) + len(extras_in(cols))), dtype=np.int8)
    bounds = [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    if not (pool.usable() and len(bounds) > 1):
        for s, e in bounds:
            out[s:e] = compare_pairs(cols, left[s:e], right[s:e], cols.get(SETTINGS_KEY))
        return lambda: out
    futures = [(s, e, pool.get().submit(_compare_chunk, left[s:e], right[s:e])) for s, e in bounds]

    def wait() -> np.ndarray:
        for s, e, fut in futures:
            out[s:e] = fut.result()
        return out

    return wait
