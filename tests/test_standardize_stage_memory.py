"""Standardize's stage at its peak (issue 14, std14): the records hold each repeated text once
from ingest on, the standardized frame reuses their arrays, the unidentifiable rows leave the
frame a column at a time, and the spilled texts come back from Arrow no larger."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from crmclean import spill
from crmclean.frames import moved_rows, shared_texts
from crmclean.ingest import ingest
from crmclean.settings import Rules
from crmclean.standardize import standardize


def _objects(values) -> int:
    return len({id(v) for v in values})


def test_ingest_holds_each_repeated_text_of_a_field_once(tmp_path):
    path = tmp_path / "crm_web_us.csv"
    rows = "".join(f"{i},Ann,Lee {i},Boston,\n" for i in range(40))
    path.write_text("Customer ID,First Name,Last Name,City,State\n" + rows, encoding="utf-8")
    records = ingest([path], Rules()).records
    assert list(records["city"]) == ["Boston"] * 40 and records["state"].isna().all()
    assert _objects(records["city"]) == 1 and _objects(records["first_name"]) == 1
    assert _objects(records["last_name"]) == 40  # distinct texts stay as they are


def test_shared_texts_keeps_values_and_missing_cells_as_they_were():
    a, b = "".join(["Bos", "ton"]), "".join(["Bo", "ston"])
    assert a is not b
    values = np.array([a, None, b, np.nan, "Lyon"], dtype=object)
    out = shared_texts(values)
    assert out[0] is a and out[2] is a and out[1] is None and out[3] is values[3] and out[4] == "Lyon"
    distinct = np.array(["x", "y"], dtype=object)
    assert shared_texts(distinct) is distinct  # nothing repeats: the array itself


def test_the_standardized_frame_reuses_the_records_text_columns():
    """Standardize factorizes the city anyway; it no longer makes a shared copy of the column
    beside the records' own (ingest shares the texts)."""
    records = pd.DataFrame({"city": np.array(["Boston", "Boston", None], dtype=object), "email": ["a@b.com"] * 3})
    std, _ = standardize(records, Rules(), workers=1)
    assert np.shares_memory(std["city"].to_numpy(), records["city"].to_numpy())
    assert list(std["email_std"]) == ["a@b.com"] * 3


def test_moved_rows_is_the_filter_taken_a_column_at_a_time():
    frame = pd.DataFrame(
        {"a": np.array(["x", None, "z"], dtype=object), "n": [1, 2, 3], "c": pd.Categorical(["p", "q", "p"])},
        index=[5, 6, 7],
    )
    expected = frame.copy()[np.array([True, False, True])]
    taken = []
    real_pop = pd.DataFrame.pop

    def pop(self, name):
        taken.append((name, list(self.columns)))
        return real_pop(self, name)

    pd.DataFrame.pop = pop
    try:
        kept = moved_rows(frame, np.array([True, False, True]))
    finally:
        pd.DataFrame.pop = real_pop
    pd.testing.assert_frame_equal(kept, expected)
    assert taken == [("a", ["a", "n", "c"]), ("n", ["n", "c"]), ("c", ["c"])]  # one column out at a time
    assert frame.shape == (3, 0)


def test_spilling_leaves_the_non_ascii_texts_as_large_as_they_were(tmp_path):
    """Arrow asks CPython for a str's UTF-8, which CPython then keeps inside the str: the
    spilled raw rows and names grew by their UTF-8 size while the records lived."""
    texts = ["".join(["Zoë Müller ", str(i)]) for i in range(3)] + ["".join(["谢雪东", "x"]), None]
    before = [sys.getsizeof(t) for t in texts]
    std = pd.DataFrame({"record_key": [f"a|{i}" for i in range(5)], "raw": np.array(texts, dtype=object)})
    slim, where = spill.spill_columns(std, tmp_path)
    assert where is not None and "raw" not in slim.columns
    assert [sys.getsizeof(t) for t in texts] == before
    back = spill.restore(pd.DataFrame({"record_key": [f"a|{i}" for i in range(5)]}), where)
    assert [None if pd.isna(v) else v for v in back["raw"]] == texts


def test_each_collected_field_hands_its_freed_memory_back(monkeypatch):
    import crmclean.standardize as standardize_module

    calls = []
    monkeypatch.setattr(standardize_module.memory, "release_freed", lambda: calls.append(1))
    records = pd.DataFrame(
        {"full_name": ["Ann Lee", "Bo Li"], "email": ["a@b.com", None], "mobile": [None, "+1 212 555 0100"]}
    )
    standardize(records, Rules(), workers=1)
    assert len(calls) == 10  # names, address, e-mail, gender, company, national id, three dates, phones


def test_a_run_moves_the_unidentifiable_rows_out_a_column_at_a_time(tmp_path, monkeypatch):
    from crmclean import frames
    from crmclean.run import RunOptions, run_pipeline

    moved = []
    real = frames.moved_rows
    monkeypatch.setattr(frames, "moved_rows", lambda frame, keep: moved.append(int(keep.sum())) or real(frame, keep))
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "crm_web_us.csv").write_text(
        "Customer ID,First Name,Last Name,Email,City\n1,John,Smith,j@x.com,Boston\n2,,,,Boston\n3,Ann,Lee,,Boston\n",
        encoding="utf-8",
    )
    options = RunOptions(inputs=[inputs], db_url=f"sqlite:///{tmp_path / 'm.db'}", out_dir=tmp_path / "out")
    result = run_pipeline(options)
    assert result.status == "success" and moved == [2]
