"""End to end on real files: sample_data/ and generated exports, into a real SQLite file.

The row-accounting invariant is checked against an independent count of the input rows (csv
module and openpyxl here, not the ingest code): every input row — blank, malformed and junk
rows included — appears exactly once in customer_xref or in this run's quarantine rows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.errors import InputFileError
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import SAMPLE_DATA_DIR
from dbutil import read_table
from factories import refusing_expectations

pytestmark = pytest.mark.slow  # whole-pipeline runs over generated or public data

VOLATILE = {"run_id", "created_run", "updated_run", "first_seen_run", "last_seen_run", "at", "decided_at"}


def count_input_rows(path: Path) -> int:
    """Data rows of a CSV (any of our encodings) or of every sheet of a workbook, header excluded."""
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        wb = openpyxl.load_workbook(path, read_only=True)
        total = 0
        for ws in wb.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            # trailing empty rows are not rows of the export
            while rows and all(v is None for v in rows[-1]):
                rows.pop()
            total += max(len(rows) - 1, 0)
        return total
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return max(len(rows) - 1, 0)


def stable_view(df: pd.DataFrame, sort_by: list[str]) -> pd.DataFrame:
    cols = [c for c in df.columns if c not in VOLATILE]
    return df[cols].sort_values(sort_by).reset_index(drop=True)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    db_url = f"sqlite:///{tmp / 'master.db'}"
    result = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp / "out"))
    return result, db_url, tmp


def test_sample_run_accounts_for_every_input_row(sample_run):
    result, db_url, _ = sample_run
    files = sorted(p for p in SAMPLE_DATA_DIR.iterdir() if p.suffix.lower() in {".csv", ".xlsx"})
    assert len(files) >= 3
    expected_rows = sum(count_input_rows(p) for p in files)
    xref = read_table(db_url, "customer_xref")
    quarantine = read_table(db_url, "quarantine")
    run_quarantine = quarantine[quarantine["run_id"] == result.run_id]
    assert result.counts["rows_read"] == expected_rows
    assert len(xref) + len(run_quarantine) == expected_rows
    # exactly once: no record both accepted and quarantined, no duplicates
    assert not xref.duplicated(["source", "source_record_id"]).any()
    assert not run_quarantine.duplicated(["source", "locator"]).any()
    accepted = set(zip(xref["source"], xref["source_record_id"]))
    rejected = set(zip(run_quarantine["source"], run_quarantine["source_record_id"]))
    assert not accepted & rejected
    # the sample has bad rows on purpose, each with a sentence and the raw row
    assert len(run_quarantine) > 0
    assert run_quarantine["reason"].str.len().min() > 10
    assert run_quarantine["raw"].notna().all()


def test_sample_run_merges_across_systems(sample_run):
    result, db_url, _ = sample_run
    masters = read_table(db_url, "master_customer")
    xref = read_table(db_url, "customer_xref")
    assert masters["master_id"].str.fullmatch(r"C\d{7}").all()
    assert set(xref["master_id"]) == set(masters["master_id"])
    assert result.counts["masters"] == len(masters)
    # three systems overlap: some masters hold records of more than one source
    sources_per_master = xref.groupby("master_id")["source"].nunique()
    assert (sources_per_master >= 2).sum() >= 10
    assert len(masters) < len(xref)
    # golden values are standardized
    assert masters["phone"].dropna().str.fullmatch(r"\+[1-9]\d{6,14}").all()
    assert masters["birth_date"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert masters["country"].dropna().str.fullmatch(r"[A-Z]{2}").all()


def test_sample_run_writes_run_scoped_outputs(sample_run):
    result, db_url, tmp = sample_run
    assert result.out_dir.is_dir() and result.run_id in str(result.out_dir)
    assert (result.out_dir / "column_mapping.json").is_file()
    assert result.report_path is not None and result.report_path.is_file()
    log = read_table(db_url, "run_log")
    row = log[log["run_id"] == result.run_id].iloc[0]
    assert row["status"] == "success"
    # the report shows exactly the counts the run produced (no count it never computes)
    assert report_counts(result.report_path) == result.counts


def report_counts(report: Path) -> dict[str, int]:
    """The count cards of a run report."""
    import re

    cards = re.findall(
        r'data-count="(\w+)"><span class="muted">[^<]*</span><b>([\d,]+)</b>', report.read_text(encoding="utf-8")
    )
    return {name: int(value.replace(",", "")) for name, value in cards}


def test_rerun_on_same_input_gives_same_master(sample_run, tmp_path):
    result, db_url, tmp = sample_run
    before_m = stable_view(read_table(db_url, "master_customer"), ["master_id"])
    before_x = stable_view(read_table(db_url, "customer_xref"), ["source", "source_record_id"])
    second = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out"))
    assert second.status == "success"
    assert "records_reclustered" in second.counts  # an incremental run: its report shows what it reclustered
    assert report_counts(second.report_path) == second.counts
    after_m = stable_view(read_table(db_url, "master_customer"), ["master_id"])
    after_x = stable_view(read_table(db_url, "customer_xref"), ["source", "source_record_id"])
    pd.testing.assert_frame_equal(before_m, after_m)
    pd.testing.assert_frame_equal(before_x, after_x)


def test_fresh_databases_give_identical_ids(sample_run, tmp_path):
    """Deterministic: a second fresh database gets the very same master ids and rows."""
    _, db_url, _ = sample_run
    other = f"sqlite:///{tmp_path / 'other.db'}"
    run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=other, out_dir=tmp_path / "out"))
    pd.testing.assert_frame_equal(
        stable_view(read_table(db_url, "customer_xref"), ["source", "source_record_id"]),
        stable_view(read_table(other, "customer_xref"), ["source", "source_record_id"]),
    )


def test_unreadable_file_stops_run_and_keeps_previous_master(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'master.db'}"
    run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out"))
    before = read_table(db_url, "master_customer")
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(InputFileError) as info:
        run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR, bad], db_url=db_url, out_dir=tmp_path / "out"))
    assert "broken.xlsx" in str(info.value)
    pd.testing.assert_frame_equal(before, read_table(db_url, "master_customer"))


def test_cli_run_prints_summary_and_clear_errors(tmp_path):
    runner = CliRunner()
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    ok = runner.invoke(app, ["run", "--no-prefect", "--db", db_url, "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert "masters" in ok.output and "quarantined" in ok.output
    missing = runner.invoke(app, ["run", "--no-prefect", str(tmp_path / "nope.csv"), "--db", db_url])
    assert missing.exit_code == 1
    assert "nope.csv" in missing.output
    assert "Traceback" not in missing.output


def test_generated_exports_row_accounting_and_quality(tmp_path):
    from crmclean.evaluate import evaluate
    from crmclean.generate import generate

    info = generate(customers=400, seed=7, out_dir=tmp_path / "gen")
    db_url = f"sqlite:///{tmp_path / 'gen.db'}"
    result = run_pipeline(RunOptions(inputs=[Path(p) for p in info["files"]], db_url=db_url, out_dir=tmp_path / "out"))
    truth = pd.read_csv(info["truth"], dtype=str, keep_default_na=False)
    xref = read_table(db_url, "customer_xref")
    quarantine = read_table(db_url, "quarantine")
    assert result.counts["rows_read"] == len(xref) + len(quarantine)
    # every truth row that is a real entity ends in the master
    real = truth[truth["entity_id"] != ""]
    seen = set(zip(xref["source"], xref["source_record_id"])) | set(
        zip(quarantine["source"], quarantine["source_record_id"])
    )
    missing = [k for k in zip(real["source"], real["source_record_id"]) if k not in seen]
    assert not missing[:5]
    scores = evaluate(truth, xref)
    assert scores["pairwise"]["f1"] >= 0.9, scores


def test_rerun_reuses_standardization_until_the_rules_change(tmp_path):
    """Unchanged records are not standardized again; editing rules/standardize.yaml redoes them."""
    import shutil

    import yaml

    from crmclean.settings import DEFAULT_RULES_DIR

    db_url = f"sqlite:///{tmp_path / 'reuse.db'}"
    first = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out"))
    second = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out"))
    assert first.counts["records_standardized"] == first.counts["records_accepted"] > 0
    assert second.counts["records_standardized"] == 0
    assert second.counts["records_reused"] == first.counts["records_accepted"]

    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    settings = yaml.safe_load((rules / "standardize.yaml").read_text(encoding="utf-8"))
    settings["max_match_chars"] = 150
    (rules / "standardize.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    third = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out", rules_dir=rules))
    assert third.counts["records_reused"] == 0
    assert third.counts["records_standardized"] == first.counts["records_accepted"]


def test_critical_expectation_failure_leaves_previous_master_untouched(tmp_path):
    """Write-audit-publish: a failed critical expectation refuses the publish, marks the run
    failed, still writes the report, and yesterday's master stays exactly as it was."""

    from crmclean.errors import ValidationFailed

    db_url = f"sqlite:///{tmp_path / 'wap.db'}"
    run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=tmp_path / "out"))
    before = {t: read_table(db_url, t) for t in ("master_customer", "customer_xref", "quarantine")}

    strict = refusing_expectations(tmp_path / "expectations")
    # tonight's input has a new customer: had the publish gone through, the master would change
    extra = tmp_path / "crm_new.csv"
    extra.write_text("Customer ID,First Name,Last Name,Email\nN1,Ada,Lovelace,ada@example.org\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        run_pipeline(
            RunOptions(
                inputs=[SAMPLE_DATA_DIR, extra], db_url=db_url, out_dir=tmp_path / "out2", expectations_dir=strict
            )
        )
    assert "nothing was published" in str(info.value)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, read_table(db_url, table), obj=table)
    log = read_table(db_url, "run_log").sort_values("started_at")
    assert list(log["status"]) == ["success", "failed"]
    reports = list((tmp_path / "out2" / "runs").glob("*/report.html"))
    assert len(reports) == 1 and "failed" in reports[0].read_text(encoding="utf-8").lower()
