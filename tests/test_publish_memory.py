"""What publish holds at once (issue 14): the spilled columns are read back a batch of rows at a
time, batches are bounded by values rather than rows, and spilling shares the kept columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crmclean import spill
from crmclean.store import values
from crmclean.store.tables import columns_of


def _std(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_key": [f"a|{i}" for i in range(n)],
            "email_std": [f"p{i}@x.org" for i in range(n)],
            "raw": [None if i % 7 == 0 else f'{{"n": "{i}"}}' for i in range(n)],
            "locator": [f"a.csv:{i + 2}" for i in range(n)],
        }
    )


def test_spilling_shares_the_kept_columns_instead_of_copying_them(tmp_path):
    std = _std(50)
    slim, where = spill.spill_columns(std, tmp_path)
    assert where is not None and set(where.columns) == {"raw", "locator"}
    assert list(slim.columns) == ["record_key", "email_std"]
    for c in slim.columns:  # drop() copied every kept column (≈ 200 MB at 200k)
        assert np.shares_memory(slim[c].to_numpy(), std[c].to_numpy()), c
    assert list(std.columns) == ["record_key", "email_std", "raw", "locator"]  # the caller's frame


def test_the_spilled_columns_are_read_back_a_batch_at_a_time_as_restore_gives_them(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "SPILL_BATCH_ROWS", 10)  # row groups of 10 rows
    slim, where = spill.spill_columns(_std(95), tmp_path)
    # customer_record: this run's records (in another order) and a stored row of an earlier run
    order = [*range(94, 40, -1), *range(0, 41)]
    table = pd.DataFrame({"record_key": [f"a|{i}" for i in order] + ["old|1"]})
    table["raw"] = [None] * len(order) + ["stored"]
    expected = spill.restore(table, where)

    read_rows: list[int] = []
    real = pq.ParquetFile.read_row_group

    def counting(self, group, *args, **kwargs):
        out = real(self, group, *args, **kwargs)
        read_rows.append(out.num_rows)
        return out

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    monkeypatch.setattr(pq, "read_table", None)  # the whole file is never read at once
    cols, rows = values.frame_rows("customer_record", table, where)
    got = [row for batch in rows.batches(12) for row in batch]
    raw, locator, key = cols.index("raw"), cols.index("locator"), cols.index("record_key")
    assert [r[key] for r in got] == table["record_key"].tolist()
    assert [r[raw] for r in got] == values._extension_strings(expected["raw"])
    assert [r[locator] for r in got] == values._extension_strings(expected["locator"])
    assert got[-1][raw] == "stored" and got[-1][locator] is None
    assert read_rows and max(read_rows) <= 10  # one group of 10 rows a read
    assert "\x00spill_row" not in cols and values.SPILL_ROW not in table.columns
    # a subset of the rows (a delta's inserts) reads the same values
    picked = rows.take([3, 50, 95])
    assert list(picked) == [got[3], got[50], got[95]]


def test_a_wide_table_is_written_in_batches_of_at_most_batch_values(monkeypatch):
    monkeypatch.setattr(values, "BATCH_VALUES", 1_000)
    n = 450
    frame = pd.DataFrame({c: [f"{c}{i}" for i in range(n)] for c in columns_of("customer_record")})
    cols, rows = values.frame_rows("customer_record", frame)
    sizes = [len(b) for b in rows.batches()]
    assert max(sizes) == 1_000 // len(cols) and sum(sizes) == n
    narrow = pd.DataFrame({c: ["x"] * n for c in columns_of("master_id_history")})
    narrow_sizes = [len(b) for b in values.frame_rows("master_id_history", narrow)[1].batches()]
    assert max(narrow_sizes) == 1_000 // 5 and sum(narrow_sizes) == n


@pytest.mark.parametrize("kept", [False, True])
def test_a_run_writes_the_same_customer_record_with_the_columns_read_per_batch(tmp_path, kept):
    """The whole frame restored (main) and read per batch give the same rows."""
    slim, where = spill.spill_columns(_std(30), tmp_path)
    table = slim.assign(raw=["old"] * 30) if kept else slim
    whole = spill.restore(table, where)
    c1, eager = values.frame_rows("customer_record", whole)
    c2, lazy = values.frame_rows("customer_record", table, where)
    assert c1 == c2 and list(eager) == list(lazy)
