"""One worker pool per link() call: blocking rules, comparison chunks and scoring chunks run in
workers that hold the column arrays. Where the workers are is the current fan-out's choice
(`crmclean.executors`): a fork pool inherits the arrays at fork (nothing large is pickled), a
Dask cluster gets them once, as the result of a task its workers fetch."""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

from .. import executors, memory, progress
from .blocking import rule_pairs
from .compare import FEATURE_NAMES, compare_pairs, extras_in

# ---------------------------------------------------------------- the heap during link()

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LINK_MMAP_THRESHOLD = 1024 * 1024  # arrays from 1 MB: their own mapping (large_arrays_mapped)
DYNAMIC_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's dynamic threshold's ceiling (64-bit)


@contextmanager
def large_arrays_mapped() -> Iterator[None]:
    """In this process and the workers it forks meanwhile, an array of LINK_MMAP_THRESHOLD or
    more has its own mapping, given back when freed. glibc's threshold otherwise rises to the
    largest array freed (up to 32 MB), so per-record and per-candidate arrays (a few MB each
    at 200k customers) came from the heap, and their holes stayed resident in the parent and
    the workers: ≈ 150 MB at 200k (from the workers' fork only: ≈ 55 MB; the prepared columns'
    arrays are what the workers' heap pages are shared with). Fresh pages for each such array
    cost CPU (preparing the columns: ≈ +0.4 s of 3.2 at 200k). Afterwards the threshold is
    glibc's dynamic ceiling, where a run's earlier stages leave it. No-op without glibc."""
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    mallopt(M_MMAP_THRESHOLD, LINK_MMAP_THRESHOLD)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_THRESHOLD_MAX)


@lru_cache(maxsize=1)
def _mallopt():
    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None


# ---------------------------------------------------------------- comparison, chunked/parallel

SETTINGS_KEY = "\0compare"  # the comparison thresholds, carried in the column dict to the workers


def worker_cols() -> dict[str, Any]:
    """The column dict of the link() call this worker task belongs to."""
    cols = executors.shared_value()
    assert cols is not None, "a link task ran outside its pool"
    return cols


# pairs a worker compares or scores at a time: a chunk's transient arrays (each compared
# column gathered to both sides of every pair) are ≈ 80 MB at 200,000 pairs, in every worker
WORKER_PIECE = 50_000


def pieces(n: int) -> list[tuple[int, int]]:
    """(start, end) of the pieces of a worker's chunk of n pairs."""
    return [(s, min(s + WORKER_PIECE, n)) for s in range(0, n, WORKER_PIECE)] or [(0, 0)]


def _compare_chunk(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A chunk's level matrix, piece by piece (each pair's levels are its own)."""
    cols = worker_cols()
    out = np.empty((len(left), len(FEATURE_NAMES) + len(extras_in(cols))), dtype=np.int8)
    for s, e in pieces(len(left)):
        out[s:e] = compare_pairs(cols, left[s:e], right[s:e], cols.get(SETTINGS_KEY))
    return out


def _rule_task(rule: dict, b: int, max_block: int, is_new: np.ndarray | None):
    """One blocking rule's pairs. Its transients (sorts of every row's key, ≈ 80 MB at 100k
    customers) are given back after it: glibc would keep them resident in the worker for the
    rest of the stage. (Not after every comparison chunk: a worker re-faulting those pages
    each time cost ≈ 25 % more link CPU, and pieces keep those transients small.)"""
    try:
        return rule_pairs(worker_cols(), rule, b, max_block, is_new)
    finally:
        memory.release_freed()


class _Pool:
    """One pool for a whole link() call (comparison, then scoring), started on first use on the
    current fan-out: its workers hold `cols` (and, once set, the scoring inputs)."""

    def __init__(self, cols: dict[str, Any], workers: int):
        self.cols, self.workers = cols, workers
        self.fanout = executors.current()
        self.executor: executors.TaskPool | None = None

    def usable(self) -> bool:
        return self.fanout.usable(self.workers)

    def get(self) -> executors.TaskPool:
        if self.executor is None:
            self.executor = self.fanout.pool_with(self.cols, self.workers)
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


def _levels_later(
    cols: dict[str, Any], left: np.ndarray, right: np.ndarray, chunk_size: int, pool: _Pool, on_disk: bool = False
):
    """compute_levels started in the pool's workers; returns a function that waits for the
    level matrix (the parent works on meanwhile). Without usable workers, computed now.
    ``on_disk``: with workers, the matrix is a LevelFile (read a part at a time), not an array."""
    n = len(left)
    width = len(FEATURE_NAMES) + len(extras_in(cols))
    bounds = [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    progress.expect(n, "pairs")  # the stage bar counts candidate pairs compared
    if not (pool.usable() and len(bounds) > 1):
        out = np.empty((n, width), dtype=np.int8)
        for s, e in bounds:
            out[s:e] = compare_pairs(cols, left[s:e], right[s:e], cols.get(SETTINGS_KEY))
            progress.advance(e - s)
        return lambda: out
    collect = _IntoRows(LevelFile(n, width) if on_disk else np.empty((n, width), dtype=np.int8), len(bounds))
    for k, (s, e) in enumerate(bounds):
        collect.track(k, s, e, pool.get().submit(_compare_chunk, left[s:e], right[s:e]))
    return collect.wait


# rows of a LevelFile read at a time by a gather (10 MB with 10 features)
LEVEL_FILE_ROWS = 1_000_000


class LevelFile:
    """The candidates' level matrix in an unnamed temporary file, read a part at a time: rows
    by slice (scoring's chunks, level_patterns' parts) or by positions (training's samples).
    In memory it was 1 byte a feature a candidate pair, held from comparing to the end of
    scoring (≈ 0.6 GB at 2M customers); the file's pages are the kernel's cache, written back
    and dropped under pressure, not the run's memory. The file has no name: it is gone once
    the LevelFile is let go or the process ends, whatever the outcome."""

    dtype = np.dtype(np.int8)

    def __init__(self, rows: int, width: int):
        self.shape = (rows, width)
        self.ndim = 2
        self.file = tempfile.TemporaryFile(prefix="crmclean-levels-")
        self.file.truncate(rows * width)

    def __len__(self) -> int:
        return self.shape[0]

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        """Rows ``start:stop`` written (a compared chunk; from any thread)."""
        start = rows.indices(self.shape[0])[0]
        data = np.ascontiguousarray(values, dtype=np.int8)
        os.pwrite(self.file.fileno(), data.data.cast("B"), start * self.shape[1])

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            return self._rows(start, max(stop, start))[::step]
        return self._take(np.asarray(key))

    def _rows(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.shape[1]), dtype=np.int8)
        view = out.data.cast("B")
        done = 0
        while done < len(view):  # pread may return less than asked for
            got = os.preadv(self.file.fileno(), [view[done:]], start * self.shape[1] + done)
            if not got:
                raise OSError("the level file ended early")
            done += got
        return out

    def _take(self, positions: np.ndarray) -> np.ndarray:
        """Rows at ``positions`` (as ``array[positions]``: any order, repeats), read
        LEVEL_FILE_ROWS at a time over the positions' range."""
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        positions = np.where(positions < 0, positions + self.shape[0], positions)
        out = np.empty((len(positions), self.shape[1]), dtype=np.int8)
        if not len(positions):
            return out
        order = np.argsort(positions, kind="stable")
        wanted = positions[order]
        if wanted[0] < 0 or wanted[-1] >= self.shape[0]:
            raise IndexError("level row out of range")
        for s in range(int(wanted[0]), int(wanted[-1]) + 1, LEVEL_FILE_ROWS):
            lo, hi = np.searchsorted(wanted, [s, s + LEVEL_FILE_ROWS])
            if hi > lo:
                part = self._rows(s, min(int(wanted[hi - 1]) + 1, self.shape[0]))
                out[order[lo:hi]] = part[wanted[lo:hi] - s]
        return out


class _IntoRows:
    """A chunk's level matrix is copied into ``out`` as soon as it arrives and its future let
    go: results held until the parent asked for them (it plans training meanwhile) kept every
    chunk twice, ≈ 10 bytes a candidate pair, for the rest of the stage."""

    def __init__(self, out: np.ndarray | LevelFile, chunks: int):
        self.out, self.left = out, chunks
        self.futures: list[Any] = [None] * chunks  # held until done: Dask cancels a dropped future
        self.errors: list[BaseException] = []
        self.lock, self.done = threading.Lock(), threading.Event()
        if not chunks:
            self.done.set()

    def track(self, k: int, start: int, end: int, future: Any) -> None:
        self.futures[k] = future

        def copy(fut: Any) -> None:
            try:
                self.out[start:end] = fut.result()
                progress.advance(end - start)
            except BaseException as exc:  # raised by wait(), in the parent's thread
                self.errors.append(exc)
            with self.lock:
                self.futures[k] = None
                self.left -= 1
                if not self.left:
                    self.done.set()

        future.add_done_callback(copy)

    def wait(self) -> np.ndarray | LevelFile:
        self.done.wait()
        if self.errors:
            raise self.errors[0]
        return self.out
