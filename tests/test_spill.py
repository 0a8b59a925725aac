"""Columns only publish reads (raw, locator, the raw state, ...) are on disk between standardize
and publish (issue 14)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from crmclean import spill
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import SAMPLE_DATA_DIR
from crmclean.store.publish import Scoped
from crmclean.store.values import _text_values


def _std() -> pd.DataFrame:
    return pd.DataFrame(
        {"record_key": ["a|1", "a|2", "b|1"], "name_std": ["X", "Y", None], "raw": ['{"n": "x"}', '{"n": "y"}', None]}
    )


def _text(column: pd.Series) -> list:
    """As publish stores it (values.frame_rows: missing → NULL)."""
    return _text_values(column)


def test_spilled_columns_leave_the_frame_and_come_back_by_record_key(tmp_path):
    slim, where = spill.spill_columns(_std(), tmp_path)
    assert list(slim.columns) == ["record_key", "name_std"] and where is not None and where.path.exists()
    # customer_record in another order, with a stored row of an earlier run (not in the spill)
    table = pd.DataFrame({"record_key": ["b|1", "old|9", "a|2", "a|1"], "raw": [None, "stored", None, None]})
    back = spill.restore(table, where)
    assert _text(back["raw"]) == [None, "stored", '{"n": "y"}', '{"n": "x"}']
    assert table["raw"].tolist() == [None, "stored", None, None]  # the caller's frame is untouched
    scoped = spill.restore(Scoped(rows=table.drop(columns="raw"), keys=["a|1"]), where)
    assert isinstance(scoped, Scoped) and scoped.keys == ["a|1"]
    assert _text(scoped.rows["raw"]) == [None, None, '{"n": "y"}', '{"n": "x"}']
    spill.remove(tmp_path)
    assert not (tmp_path / spill.SPILL_DIR).exists()


def test_spilling_converts_a_batch_of_rows_at_a_time(tmp_path, monkeypatch):
    """The columns' Arrow copies are made SPILL_BATCH_ROWS rows at a time (all at once they were
    the run's memory peak at 200k customers), and every row comes back."""
    import pyarrow as pa

    sizes: list[int] = []
    real_array = pa.array

    def counted(values, *args, **kwargs):
        sizes.append(len(values))
        return real_array(values, *args, **kwargs)

    monkeypatch.setattr(spill, "SPILL_BATCH_ROWS", 10)
    monkeypatch.setattr(pa, "array", counted)
    frame = pd.DataFrame({"record_key": [f"a|{i}" for i in range(25)], "raw": [f"row {i}" for i in range(25)]})
    slim, where = spill.spill_columns(frame, tmp_path)
    assert sizes and max(sizes) <= 10 and sum(sizes) == 2 * 25  # record_key and raw
    monkeypatch.setattr(pa, "array", real_array)
    back = spill.restore(frame[["record_key"]].iloc[::-1], where)
    assert _text(back["raw"]) == [f"row {i}" for i in reversed(range(25))]


def test_nothing_to_spill_leaves_the_frame_as_it_is(tmp_path):
    frame = _std().drop(columns="raw")
    slim, where = spill.spill_columns(frame, tmp_path)
    assert slim is frame and where is None and spill.restore(frame, None) is frame


def test_a_column_that_is_not_text_stays_in_the_frame(tmp_path):
    frame = _std().assign(locator=[True, False, None])  # not text: Parquet text cannot hold it
    slim, where = spill.spill_columns(frame, tmp_path, columns=("raw", "locator"))
    assert list(slim.columns) == ["record_key", "name_std", "locator"] and where.columns == ("raw",)


def _run_checking_std(tmp_path, seen: dict):
    def runner(name, stage, *args):
        result = stage(*args)
        if name == "ingest":
            records = result.result.records
            seen["ingested"] = records.set_index("record_key")[list(spill.SPILLED_COLUMNS)]
        if name == "standardize":
            seen["std_columns"] = set(result.std.columns)
            seen["spill_exists"] = result.spill is not None and result.spill.path.exists()
        return result

    db = f"sqlite:///{tmp_path / 'm.db'}"
    return run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=tmp_path / "out"), runner=runner), db


def test_a_run_publishes_raw_it_kept_on_disk_and_removes_the_file(tmp_path):
    seen: dict = {}
    result, db = _run_checking_std(tmp_path, seen)
    assert result.status == "success"
    assert "raw" not in seen["std_columns"] and seen["spill_exists"]
    assert not (result.out_dir / spill.SPILL_DIR).exists()
    with sa.create_engine(db).connect() as conn:
        missing = conn.execute(sa.text("SELECT count(*) FROM customer_record WHERE raw IS NULL")).scalar()
        total = conn.execute(sa.text("SELECT count(*) FROM customer_record")).scalar()
    assert total > 0 and missing == 0


def test_every_spilled_column_leaves_the_frame_and_is_published_as_read(tmp_path):
    assert {"locator", "state", "created_at", "gender"} <= set(spill.SPILLED_COLUMNS)
    seen: dict = {}
    result, db = _run_checking_std(tmp_path, seen)
    assert result.status == "success" and not set(spill.SPILLED_COLUMNS) & seen["std_columns"]
    columns = ", ".join(spill.SPILLED_COLUMNS)
    with sa.create_engine(db).connect() as conn:
        stored = pd.read_sql(sa.text(f"SELECT record_key, {columns} FROM customer_record"), conn)
    stored = stored.set_index("record_key")
    ingested = seen["ingested"].loc[stored.index]  # the accepted records (not those standardize quarantined)
    assert len(stored) > 0.9 * len(seen["ingested"])
    for column in ("locator", "state", "created_at", "gender"):
        assert ingested[column].notna().any()
        expected = [None if pd.isna(v) else str(v) for v in ingested[column]]
        assert [None if pd.isna(v) else v for v in stored[column]] == expected, column


def test_a_result_check_on_a_spilled_column_reads_it_back_from_disk(tmp_path):
    """A user's check on a raw column that waits on disk checks its values (not a missing column)."""
    import pytest
    from factories import expectations_with

    from crmclean.errors import ValidationFailed

    assert {"gender", "country"} <= set(spill.SPILLED_COLUMNS)

    def run(name: str, kind: str, kwargs: dict):
        options = RunOptions(
            inputs=[SAMPLE_DATA_DIR],
            db_url=f"sqlite:///{tmp_path / name}.db",
            out_dir=tmp_path / name,
            expectations_dir=expectations_with(tmp_path / name / "expectations", kind, kwargs, table="customer_record"),
        )
        return run_pipeline(options)

    with pytest.raises(
        ValidationFailed, match=r"customer_record\.gender must be one of the allowed values — \d+ are not"
    ):
        run("strict", "expect_column_values_to_be_in_set", {"column": "gender", "value_set": ["no such gender"]})
    assert run("exists", "expect_column_to_exist", {"column": "country"}).status == "success"


def test_a_held_column_stays_only_where_its_standardized_value_is_missing(tmp_path):
    """The raw e-mail waits on disk; the frame keeps it only where email_std is missing (what the
    review queue's summaries show then) and publish gets every raw value back."""
    frame = _std().assign(email=["X@Y.COM", "not an e-mail", None], email_std=["x@y.com", None, None])
    slim, where = spill.spill_columns(frame, tmp_path)
    assert slim["email"].tolist() == [None, "not an e-mail", None] and "email" in where.columns
    assert frame["email"].tolist() == ["X@Y.COM", "not an e-mail", None]  # the caller's frame is untouched
    back = spill.restore(slim, where)
    assert _text(back["email"]) == ["X@Y.COM", "not an e-mail", None]


def test_a_run_publishes_the_held_raw_columns_as_read(tmp_path):
    seen: dict = {}

    def runner(name, stage, *args):
        result = stage(*args)
        if name == "ingest":
            seen["ingested"] = result.result.records.set_index("record_key")[list(spill.HELD_WHERE_MISSING)]
        if name == "standardize":
            std = result.std
            for raw, standardized in spill.HELD_WHERE_MISSING.items():
                assert not (std[raw].notna() & std[standardized].notna()).any(), raw
            seen["flags"] = isinstance(std["email_flag"].dtype, pd.CategoricalDtype)
        return result

    db = f"sqlite:///{tmp_path / 'm.db'}"
    result = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=tmp_path / "out"), runner=runner)
    assert result.status == "success" and seen["flags"]
    columns = ", ".join(spill.HELD_WHERE_MISSING)
    with sa.create_engine(db).connect() as conn:
        stored = pd.read_sql(sa.text(f"SELECT record_key, {columns} FROM customer_record"), conn).set_index(
            "record_key"
        )
    ingested = seen["ingested"].loc[stored.index]
    for column in ("email", "address", "full_name"):
        assert ingested[column].notna().sum() > 10
        expected = [None if pd.isna(v) else str(v) for v in ingested[column]]
        assert [None if pd.isna(v) else v for v in stored[column]] == expected, column
