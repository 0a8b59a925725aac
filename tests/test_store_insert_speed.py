"""SQLite bulk loads (issue 14, publish CPU): multi-row INSERTs, the page size of a new master,
and Arrow text converted without a Python call per value. Each shortcut must store exactly
what the plain way stores."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pyarrow as pa
import pytest

from crmclean.store import open_store
from crmclean.store import dialects, values
from crmclean.store.base import dbapi
from crmclean.store.tables import columns_of
from crmclean.store.values import Rows, frame_rows


def _lineage(n: int) -> pd.DataFrame:
    """master_lineage rows with text, NULLs and non-ASCII values (6 columns)."""
    return pd.DataFrame(
        {
            "master_id": [f"C{i // 7:07d}" for i in range(n)],
            "field": [("full_name", "email", "city")[i % 3] for i in range(n)],
            "value": [None if i % 5 == 0 else f"wert-{i}-ü张" for i in range(n)],
            "record_key": [f"crm_a|{i}" for i in range(n)],
            "rule": ["most_common"] * n,
            "alternatives": [None if i % 2 else '[{"value": "x"}]' for i in range(n)],
        }
    )


def test_multi_row_insert_stores_every_row_in_order_with_fewer_statements(tmp_path):
    per = dialects.SQLITE_INSERT_PARAMS // 6  # rows per statement for a 6-column table
    n = 2 * per + 5  # two full statements and five rows left over
    df = _lineage(n)
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    steps: list[str] = []
    try:
        with store._write_conn() as conn:
            dbapi(conn).set_trace_callback(steps.append)
            store._write_table(conn, "master_lineage", *frame_rows("master_lineage", df))
            dbapi(conn).set_trace_callback(None)
    finally:
        store.close()
    inserts = [s for s in steps if s.startswith('INSERT INTO "master_lineage"')]
    assert len(inserts) == 2 + 5  # not one statement per row (n = 2 * per + 5)
    with sqlite3.connect(tmp_path / "m.db") as db:
        stored = db.execute(f"SELECT {', '.join(columns_of('master_lineage'))} FROM master_lineage ORDER BY rowid")
        assert stored.fetchall() == list(df.itertuples(index=False, name=None))


@pytest.mark.parametrize("n", [0, 1, 165, 166, 167, 1000])
def test_row_groups_keep_every_row_once_in_order(n):
    rows = [(i, f"v{i}") for i in range(n)]
    rest: list[tuple] = []
    flat = [v for group in dialects._row_groups(iter(rows), 166, rest) for v in group]
    assert len(flat) == 2 * (n - len(rest)) and len(rest) < 166
    assert [tuple(flat[i : i + 2]) for i in range(0, len(flat), 2)] + rest == rows


def test_new_master_gets_the_larger_page_size_and_an_old_one_keeps_its_own(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    store.close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # a master created before: SQLite's default page size
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    store = open_store(f"sqlite:///{old}")
    with store._write_conn() as conn:
        store._write_table(conn, "master_lineage", *frame_rows("master_lineage", _lineage(500)))
    store.close()
    with sqlite3.connect(tmp_path / "new.db") as new_db, sqlite3.connect(old) as old_db:
        assert new_db.execute("PRAGMA page_size").fetchone()[0] == dialects.SQLITE_PAGE_SIZE == 16384
        assert old_db.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert old_db.execute("SELECT COUNT(*) FROM master_lineage").fetchone()[0] == 500


def test_arrow_text_converts_like_python_text_without_a_call_per_value(monkeypatch):
    texts = ['{"a": 1}', None, "", "张三 ü", "2"] * 40
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(texts, type=pa.large_string())])))
    plain = pd.Series(texts, dtype=object)
    expected = Rows(pd.DataFrame({"raw": plain}), [("raw", values._text_converter(plain))])

    def per_value(v):
        raise AssertionError("converted one value at a time")

    monkeypatch.setattr(values, "_convert_text", per_value)
    got = Rows(pd.DataFrame({"raw": arrow}), [("raw", values._text_converter(arrow))])
    assert list(got.batches(size=64)) == list(expected.batches(size=64))
    assert [r[0] for r in got] == texts


@pytest.mark.parametrize("wide", [False, True])
def test_row_ids_are_equal_exactly_where_the_rows_codes_are(wide):
    """_pack_records groups rows by one number per row (a mixed radix of the columns' codes,
    or row ranks when the radix would overflow int64) instead of sorting the rows."""
    import numpy as np

    rng = np.random.default_rng(7)
    k = 40 if wide else 3  # 40 columns of up to 9 codes: past int64
    codes = rng.integers(-1, 8, size=(2_000, k))
    codes[::3] = codes[1::3][: len(codes[::3])]  # plenty of repeated rows
    ids = values._row_ids(codes)
    _, expected = np.unique(codes, axis=0, return_inverse=True)
    expected = expected.reshape(-1)
    same = ids[:, None] == ids[None, :]
    assert (same == (expected[:, None] == expected[None, :])).all()


def test_spilled_lineage_reads_back_one_str_per_distinct_value(tmp_path):
    """master_lineage comes back from its spill file dictionary-encoded: a repeated value is one
    Python object within a batch (not a str per row), and the rows are what was written."""
    from crmclean import spill

    df = _lineage(1_000)
    table = spill.spill_table("master_lineage", [df.iloc[:600], df.iloc[600:]], columns_of("master_lineage"), tmp_path)
    batches = list(table.column_batches(500))
    rows = [row for columns in batches for row in zip(*columns)]
    assert rows == list(df.itertuples(index=False, name=None))
    rule = batches[0][columns_of("master_lineage").index("rule")]
    assert len({id(v) for v in rule}) == 1  # "most_common" on every row: one object


def test_publish_runs_with_the_heap_frozen_and_leaves_it_unfrozen(tmp_path):
    """The run's objects stay out of the garbage collector while publish makes its millions of
    row values (a full collection rescanned the whole heap); unfrozen afterwards."""
    import gc

    from crmclean.run import StageTimer, publish
    from crmclean.stages import PublishPlan, RunEnv, RunOptions

    seen: list[int] = []

    class Store:
        def publish(self, run_id, tables, state=None, spelling=None, spill=None):
            seen.append(gc.get_freeze_count())

    env = RunEnv(options=RunOptions(inputs=[]), rules=None, run_id="r1", out_dir=tmp_path, timer=StageTimer())
    plan = PublishPlan(run_id="r1", tables={}, state={}, incremental=False, views={})
    publish(env, plan, Store())
    assert seen and seen[0] > 0 and gc.get_freeze_count() == 0
