"""master_lineage waits on disk between survivorship and publish (issue 14): the rows publish
writes, the report's conflict sample and a delta publish are those of the table in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crmclean import spill
from crmclean.report import _conflict_sample
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import SAMPLE_DATA_DIR
from crmclean.store.build import golden_with_spilled_lineage, lineage_rows
from crmclean.store.tables import columns_of
from crmclean.store.values import SpilledRows, frame_rows

from test_golden_lineage import lineage_frame


def _survivorship_lineage() -> pd.DataFrame:
    """As build_golden returns it: cluster numbers, NaN where nothing lost."""
    return pd.DataFrame(
        {
            "cluster": [0, 0, 1, 2, 2],
            "field": ["email", "full_name", "full_name", "email", "phone"],
            "value": ["a@x.com", "Ann Lee", "", "b@y.org", "+15550100"],
            "record_key": ["s|1", "s|1", "s|3", "t|4", "t|5"],
            "rule": ["all_agree", "medoid", "all_junk", "only_value", "mobile_first"],
            "alternatives": [np.nan, '[{"value": "Ann Le", "records": ["s|2"]}]', None, np.nan, np.nan],
        }
    )


ASSIGNED = pd.DataFrame({"cluster": [0, 1, 2], "master_id": ["C0000001", "C0000002", "C0000003"]})


def _spilled_lineage(lineage: pd.DataFrame, out_dir, monkeypatch):
    """golden_with_spilled_lineage's master_lineage, survivorship giving ``lineage`` two rows
    at a time (as it gives a group of clusters at a time)."""
    from crmclean import survivorship

    def golden_in_groups(records, clusters, rules, spelling=None, workers=None, lineage_to=None):
        if lineage_to is None:
            return "golden", lineage
        for start in range(0, len(lineage), 2):
            lineage_to(lineage.iloc[start : start + 2])
        return "golden", None

    monkeypatch.setattr(survivorship, "golden_in_groups", golden_in_groups)
    golden, table = golden_with_spilled_lineage(None, None, None, None, ASSIGNED, out_dir)
    assert golden == "golden"
    return table


def test_spilled_lineage_gives_the_rows_the_frame_gives(tmp_path, monkeypatch):
    monkeypatch.setattr("crmclean.spill.SPILL_BATCH_ROWS", 2)  # several batches
    lineage = _survivorship_lineage()
    spilled = _spilled_lineage(lineage, tmp_path, monkeypatch)
    assert isinstance(spilled, spill.SpilledTable) and spilled.path.exists() and len(spilled) == 5
    in_memory = lineage_rows(lineage, ASSIGNED.set_index("cluster")["master_id"])
    cols, rows = frame_rows("master_lineage", in_memory)
    spilled_cols, spilled_rows = frame_rows("master_lineage", spilled)
    assert isinstance(spilled_rows, SpilledRows) and spilled_cols == cols == columns_of("master_lineage")
    assert list(spilled_rows.batches(2)) == list(rows.batches(2))
    assert list(spilled_rows.take([1, 3, 4]).take([0, 2])) == list(rows.take([1, 4]))
    with pytest.raises(ValueError):
        spilled_rows.take([3, 1])
    spill.remove(tmp_path)
    assert not spilled.path.exists()


def test_a_value_arrow_cannot_store_keeps_the_lineage_in_memory(tmp_path, monkeypatch):
    lineage = _survivorship_lineage().assign(value=["a", "b", "", 7, "c"])  # not text: stored as "7"
    kept = _spilled_lineage(lineage, tmp_path, monkeypatch)
    assert isinstance(kept, pd.DataFrame) and len(kept) == 5
    assert not list((tmp_path / spill.SPILL_DIR).glob("*.parquet"))


def test_the_report_reads_its_conflict_sample_from_the_spill_file(tmp_path):
    frame = lineage_frame()
    spilled = spill.spill_table("master_lineage", [frame], columns_of("master_lineage"), tmp_path)
    for show_pii in (True, False):
        assert _conflict_sample(spilled, show_pii) == _conflict_sample(frame, show_pii) != []


def _lineage_of(db: str) -> list[tuple]:
    with sa.create_engine(db).connect() as conn:
        return conn.execute(sa.text("SELECT * FROM master_lineage ORDER BY rowid")).fetchall()


def test_runs_publish_the_spilled_lineage_and_remove_the_file(tmp_path):
    seen: dict = {}

    def runner(name, stage, *args):
        result = stage(*args)
        if name == "cluster":
            table = result.tables["master_lineage"]
            seen["spilled"] = isinstance(table, spill.SpilledTable) and table.path.exists() and len(table)
        return result

    db = f"sqlite:///{tmp_path / 'm.db'}"
    first = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=tmp_path / "out"), runner=runner)
    assert first.status == "success" and seen["spilled"]
    assert not (first.out_dir / spill.SPILL_DIR).exists()
    published = _lineage_of(db)
    assert len(published) == seen["spilled"]
    # a second whole run compares the spilled rows with the stored ones (delta publish)
    again = run_pipeline(
        RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=tmp_path / "out", recluster_all=True), runner=runner
    )
    assert again.status == "success" and seen["spilled"] and _lineage_of(db) == published
    assert not (again.out_dir / spill.SPILL_DIR).exists()


def test_a_result_expectation_on_master_lineage_reads_the_spilled_table(tmp_path):
    from crmclean import validate as v
    from factories import expectations_with
    from test_validate import _result_tables

    folder = expectations_with(
        tmp_path / "expectations",
        "expect_column_values_to_be_in_set",
        {"column": "rule", "value_set": ["all_agree", "medoid"]},
        table="master_lineage",
    )
    tables, std = _result_tables()
    tables["master_lineage"] = spill.spill_table(
        "master_lineage", [lineage_frame()], columns_of("master_lineage"), tmp_path
    )
    failures = v.critical_failures([v.validate_result(tables, std, v.load_suites(folder))])
    assert failures == ["result: master_lineage.rule must be one of the allowed values — 1 are not"]
