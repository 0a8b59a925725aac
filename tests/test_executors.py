"""The standardize pool's workers (issue 14): they do not inherit the run's memory, so memory
does not grow with the worker count, and their fork server does not outlive the pool."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

import pandas as pd
import pytest

from crmclean import executors
from crmclean.standardize.parallel import FieldJob

pytestmark = pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="no fork server here")

INHERITED: list = []  # filled in this process only: a worker that forked from it would see it


def _worker_view(_: int) -> tuple[int, int, bool]:
    """(pid, len(INHERITED) as the worker sees it, whether the record frame's module is loaded)."""
    return os.getpid(), len(INHERITED), "crmclean.run" in sys.modules


def _upper(value: str) -> tuple[str]:
    return (value.upper(),)


def _server_pid() -> int | None:
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def test_standardize_workers_do_not_inherit_this_process():
    import crmclean.run  # noqa: F401  (the run's modules, loaded here but not in the workers)

    INHERITED.extend(range(1000))
    pool = executors.LocalProcesses().executor(2)
    assert pool is not None
    try:
        seen = list(pool.map(_worker_view, range(8)))
    finally:
        pool.shutdown()
        INHERITED.clear()
    assert all(pid != os.getpid() and inherited == 0 and not run_loaded for pid, inherited, run_loaded in seen)


def test_the_fork_server_stops_with_the_last_pool_and_restarts_for_the_next():
    values = pd.Series([f"v{i}" for i in range(3000)])
    for _ in range(2):
        pool = executors.LocalProcesses().executor(2)
        assert pool is not None
        try:
            job = FieldJob(_upper, [values], (), ["up"]).submit(pool, in_process_below=1)
            assert list(job.result()["up"][:2]) == ["V0", "V1"]
            assert _server_pid() is not None
        finally:
            pool.shutdown()
        assert _server_pid() is None


def test_the_link_pool_still_shares_this_process_arrays():
    """`pool_with` forks from this process: its workers read the shared value without a copy."""
    shared = {"ids": list(range(10))}
    pool = executors.LocalProcesses().pool_with(shared, 2)
    try:
        assert pool.submit(executors.shared_value).result() == shared
    finally:
        pool.shutdown()


def test_pool_chunks_leave_the_standardizers_own_cache_empty():
    """A chunk's tuples are distinct, so a worker runs the standardizer past its own cache
    (memory) but gives what the cached standardizer gives."""
    from crmclean.standardize.emails import email_config, standardize_email
    from crmclean.standardize.parallel import _run_chunk_columns, _run_chunk_uncached

    items = [(f"User{i}@Gmial.com",) for i in range(50)] + [("not an email",), (None,)]
    extra = (email_config(None),)
    standardize_email.cache_clear()
    uncached = _run_chunk_uncached(standardize_email, items, extra)
    assert standardize_email.cache_info().currsize == 0
    assert uncached == _run_chunk_columns(standardize_email, items, extra)
    assert uncached[0][0] == "user0@gmail.com"


def test_the_link_pool_keeps_this_process_frozen_until_it_shuts_down():
    """While the forked workers live, a collection here would write to the headers of the
    objects they share (copying those pages): the objects alive at the fork stay frozen."""
    import gc

    assert gc.get_freeze_count() == 0
    alive = [{"i": i} for i in range(1000)]  # tracked containers alive at the fork
    pool = executors.LocalProcesses().pool_with({"ids": [1]}, 2)
    try:
        assert pool.submit(len, alive).result() == 1000
        assert gc.get_freeze_count() >= len(alive)
    finally:
        pool.shutdown()
    assert gc.get_freeze_count() == 0
