"""What publish holds at once (issue 14): the spilled columns are read back a batch of rows at a
time, batches are bounded by values rather than rows, and spilling shares the kept columns."""

from __future__ import annotations

import json

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


def test_categorical_extra_columns_are_packed_once_per_distinct_row(monkeypatch):
    """customer_record's extra columns held as categories of text (frames.compacted: the flags,
    std_fingerprint) group the rows like text does: each distinct row is packed once, not every
    row (365k JSON texts held through publish at 200k customers)."""
    n = 60
    df = pd.DataFrame({"record_key": [f"a|{i}" for i in range(n)]})
    df["std_fingerprint"] = pd.Categorical(["f1"] * n)
    df["phone_flag"] = pd.Categorical(["", "bad"] * (n // 2))
    df["source_region"] = ["DE", None, "FR"] * (n // 3)
    expected = values._pack_rows(df[["phone_flag", "source_region", "std_fingerprint"]].astype(object))
    packed_sizes: list[int] = []
    real = values._pack_rows

    def counting(extra: pd.DataFrame) -> list[str]:
        packed_sizes.append(len(extra))
        return real(extra)

    monkeypatch.setattr(values, "_pack_rows", counting)
    packed = values._pack_records(df)["other_columns"].tolist()
    assert packed == expected
    assert packed_sizes == [6]  # 2 flags x 3 regions


def test_a_batch_is_let_go_before_the_next_one_is_made():
    """Rows holds one batch at a time: the generator drops its columns before making the next
    batch (a loop variable held the last one meanwhile: two batches of Python values at once)."""
    import gc
    import weakref

    class Value:
        pass

    made: list = []

    def convert(part: pd.Series) -> list:
        assert all(ref() is None for ref in made), "an earlier batch is still alive"
        value = Value()
        made.append(weakref.ref(value))
        return [value] * len(part)

    rows = values.Rows(pd.DataFrame({"a": range(10)}), [("a", convert)])
    gc.disable()  # reference counts alone must free a batch
    try:
        for batch in rows.lazy_batches(size=3):
            assert len(list(batch)) in (3, 1)
            del batch
        assert len(made) == 4
        made.clear()
        sizes = []
        for listed in rows.batches(size=4):  # as PostgreSQL's COPY takes them
            sizes.append(len(listed))
            del listed
        assert sizes == [4, 4, 2]
    finally:
        gc.enable()


def test_each_spilled_row_group_is_read_once_when_batches_follow_the_file(tmp_path, monkeypatch):
    """Batches smaller than a row group that follow the file's order read each group once (the
    group a batch ends in is kept for the next batch), not once per batch."""
    monkeypatch.setattr(spill, "SPILL_BATCH_ROWS", 10)
    slim, where = spill.spill_columns(_std(95), tmp_path)
    read_rows: list[int] = []
    for name in ("read_row_group", "read_row_groups"):
        real = getattr(pq.ParquetFile, name)

        def counting(self, *args, _real=real, **kwargs):
            out = _real(self, *args, **kwargs)
            read_rows.append(out.num_rows)
            return out

        monkeypatch.setattr(pq.ParquetFile, name, counting)
    cols, rows = values.frame_rows("customer_record", slim, where)
    got = [row for batch in rows.batches(4) for row in batch]
    assert [r[cols.index("raw")] for r in got] == _std(95)["raw"].tolist()
    assert sum(read_rows) == 95  # every group once


def test_evidence_counts_one_value_per_feature_in_a_batch(monkeypatch):
    """match_edge's evidence text joins one piece per feature (≈ 0.7 KB a row): a batch of its
    rows counts each piece as a value, so it holds as much text as a wide table's batch."""
    from crmclean.link.evidence import EvidenceArray

    monkeypatch.setattr(values, "BATCH_VALUES", 1_000)
    n, features = 300, 6
    texts = [np.array([f'"f{f}": {{"level": {k}}}' for k in range(3)], dtype=object) for f in range(features)]
    codes = np.arange(n * features, dtype=np.int32).reshape(n, features) % 3
    frame = pd.DataFrame({c: ["x"] * n for c in columns_of("match_edge") if c != "evidence"})
    frame["evidence"] = pd.Series(EvidenceArray(codes, texts))
    cols, rows = values.frame_rows("match_edge", frame)
    sizes = [len(b) for b in rows.batches()]
    assert max(sizes) == 1_000 // (len(cols) - 1 + features) and sum(sizes) == n
    assert json.loads(next(iter(rows))[cols.index("evidence")]) == {f"f{f}": {"level": f % 3} for f in range(features)}
