"""What the link stage's forked workers share with the run (issue 14): no Python objects they
would write to (a read writes a reference count, and copies the page), the same results."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import pytest

from crmclean import executors
from crmclean.link import link, parallel
from crmclean.link.compare import TextColumn, compare_pairs, prepare_columns
from test_link import R, person, synthetic


def _frame() -> pd.DataFrame:
    """Swapped names (one code space for given and family name), a junk shared e-mail (nulled
    by the shared-value limit), Hanzi, middle names, missing values."""
    rows = [
        person("a|1", "wei", "zhang", email_key="info@shop.cn", address_std="北京市朝阳区建国路1号"),
        person("a|2", "zhang", "wei", email_key="info@shop.cn", birth_date_std="1980-02-03"),
        person("b|1", "mary", "lee", email_key="mary.lee@x.com", first_name_std="mary ann"),
        person("b|2", "mary", "lee", email_key="info@shop.cn", mobile_std="+8613800000000"),
        person("b|3", None, "lee", address_std="1 main st springfield"),
        person("c|1", "li", "mary", email_key="mary.lee@x.com", birth_date_std="1980-03-02"),
    ]
    return pd.DataFrame(rows)


def test_compact_columns_hold_the_same_values_and_no_object_columns():
    cols = prepare_columns(_frame(), shared_value_limit=2)
    compact = prepare_columns(_frame(), shared_value_limit=2, compact=True)
    texts = [c for c, v in cols.items() if isinstance(v, np.ndarray) and v.dtype == object]
    assert {"first_name_key", "last_name_key", "email_key", "email_local", "first_name_words"} <= set(texts)
    assert not any(isinstance(v, np.ndarray) and v.dtype == object for v in compact.values())
    assert compact.keys() == cols.keys()
    rows = np.array([5, 0, 0, 3, 4, 1])
    for c in texts:
        assert isinstance(compact[c], TextColumn)
        assert list(compact[c][rows]) == list(cols[c][rows]), c
        assert list(np.asarray(compact[c])) == list(cols[c]) and len(compact[c]) == len(cols[c])
        assert compact[c][2] == cols[c][2]
    for c in set(cols) - set(texts):
        assert np.array_equal(compact[c], cols[c]), c
    assert compact["email_key"][0] is None  # the junk shared value stays missing
    # names compared with each other share one code space, and their texts one Arrow buffer
    assert compact["first_name_key"].table is compact["last_name_key"].table
    left, right = np.array([0, 2, 2, 3, 4]), np.array([1, 3, 5, 5, 5])
    assert np.array_equal(compare_pairs(compact, left, right), compare_pairs(cols, left, right))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="the link pool forks")
def test_the_link_workers_get_no_python_strings_and_the_same_pairs(monkeypatch):
    """Before, the pool shared the compared columns as object arrays and the record keys:
    each worker copied the pages of every string it read (≈ 60 MB a worker at 100k customers)."""
    shared: list = []
    real = executors.LocalProcesses.pool_with

    def spy(self, value, workers):
        shared.append(value)
        return real(self, value, workers)

    monkeypatch.setattr(executors.LocalProcesses, "pool_with", spy)
    monkeypatch.setattr(parallel, "WORKER_PIECE", 70)  # a worker's chunk in pieces too
    frame, _ = synthetic(n_people=300)
    pooled = link(frame, R(chunk_size=200), workers=2)
    assert len(shared) == 1
    objects = [k for k, v in shared[0].items() if isinstance(v, np.ndarray) and v.dtype == object]
    assert objects == []
    alone = link(frame, R(), model=pooled.model, workers=1)
    pd.testing.assert_frame_equal(pooled.pairs, alone.pairs)


_KEPT: list = []  # a worker's survivors between the freed texts of _heap_holes


def _heap_holes(*_: object) -> int:
    """Texts freed between survivors (600 B each: glibc's heap, not pymalloc), as a blocking
    rule's sorts are freed between what the worker keeps."""
    texts = [b"x" * 600 + i.to_bytes(4, "little") for i in range(200_000)]
    _KEPT.append(texts[::64])
    return os.getpid()


def _resident() -> tuple[int, int]:
    import psutil

    return os.getpid(), psutil.Process().memory_info().rss


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="the link pool forks")
def test_a_blocking_rule_task_gives_its_freed_memory_back(monkeypatch):
    """Without it a worker kept the freed memory of its largest rule for the rest of the
    stage, in every worker (≈ 120 MB of holes here)."""
    from crmclean import memory

    if memory._malloc_trim() is None:
        pytest.skip("no glibc malloc_trim on this platform")
    monkeypatch.setattr(parallel, "rule_pairs", _heap_holes)
    pool = executors.LocalProcesses().pool_with({}, 1)
    try:
        pid, before = pool.submit(_resident).result()
        assert pool.submit(parallel._rule_task, {}, 0, 10, None).result() == pid
        same, after = pool.submit(_resident).result()
    finally:
        pool.shutdown()
    assert same == pid
    assert after - before < 30 * 2**20


def test_prepare_columns_at_rows_equals_preparing_the_taken_frame():
    """link prepares its records in key order by reading a column at a time at those rows (a
    sorted copy of the compared columns took ≈ 100 MB at 200k customers): the same columns."""
    frame = _frame()
    rows = np.array([4, 0, 5, 2, 1])  # one record left out, the others reordered
    taken = frame.take(rows).reset_index(drop=True)
    for compact in (False, True):
        got = prepare_columns(frame, shared_value_limit=2, compact=compact, rows=rows)
        want = prepare_columns(taken, shared_value_limit=2, compact=compact)
        assert got.keys() == want.keys()
        for c in want:
            assert np.array_equal(np.asarray(got[c]), np.asarray(want[c])), c
    missing = taken["address_std"].isna().to_numpy() if "address_std" in taken else np.ones(len(rows), bool)
    assert missing.any() and not missing.all()
    assert np.array_equal(got["address_hist"].sum(axis=1) == 0, missing)  # a missing address: a row of zeros
