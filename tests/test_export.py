"""`crmclean export`: the master round-trips, spreadsheets cannot run cells, PII masked by default."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.export import export_tables
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import SAMPLE_DATA_DIR

runner = CliRunner()


@pytest.fixture(scope="module")
def master_db(tmp_path_factory):
    work = tmp_path_factory.mktemp("export")
    db = f"sqlite:///{work / 'master.db'}"
    run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=work / "out"))
    with sa.create_engine(db).connect() as conn:
        master = pd.read_sql_table("master_customer", conn)
        xref = pd.read_sql_table("customer_xref", conn)
    return db, master, xref


def test_parquet_round_trips_the_master_and_xref(master_db, tmp_path):
    db, master, xref = master_db
    target = tmp_path / "golden.parquet"
    result = runner.invoke(app, ["export", str(target), "--db", db, "--show-pii", "--include", "xref"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(target), master, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "golden.xref.parquet"), xref, check_dtype=False)


def test_csv_masks_personal_data_by_default(master_db, tmp_path):
    db, master, _ = master_db
    target = tmp_path / "golden.csv"
    assert runner.invoke(app, ["export", str(target), "--db", db]).exit_code == 0
    written = pd.read_csv(target, dtype=str, encoding="utf-8-sig")
    assert len(written) == len(master)
    emails = set(master["email"].dropna())
    assert emails and not emails & set(written["email"].dropna())
    assert set(written["master_id"]) == set(master["master_id"])


def test_formula_cells_are_neutralised_in_csv_and_plain_text_in_xlsx(tmp_path):
    frame = pd.DataFrame({"full_name": ['=HYPERLINK("http://x","y")', "Ada Lovelace"], "score": [1.5, 2.0]})
    export_tables({"master": frame}, tmp_path / "m.csv", show_pii=True)
    text = (tmp_path / "m.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text
    export_tables({"master": frame}, tmp_path / "m.xlsx", show_pii=True)
    sheet = load_workbook(tmp_path / "m.xlsx")["master"]
    cell = sheet["A2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")  # a string cell, never a formula
    assert sheet["B2"].data_type == "n" and sheet["B2"].value == 1.5


def test_export_never_creates_a_database(tmp_path):
    db = f"sqlite:///{tmp_path / 'typo.db'}"
    result = runner.invoke(app, ["export", str(tmp_path / "m.csv"), "--db", db])
    assert result.exit_code == 1
    assert "no crmclean master" in result.output
    assert not (tmp_path / "typo.db").exists()


def test_unknown_format_and_table_are_user_errors(master_db, tmp_path):
    db, _, _ = master_db
    assert runner.invoke(app, ["export", str(tmp_path / "m.json"), "--db", db]).exit_code == 1
    assert runner.invoke(app, ["export", str(tmp_path / "m.csv"), "--db", db, "--include", "bogus"]).exit_code == 1
