"""The CLI for scripts (issue 15): `--json` on run/history/evaluate, `--quiet`, `--log-file`, one
record reference form (`source:id`, `source|id` accepted), and evaluate's guard against the
wrong truth file. Real runs on sample_data/ into a real SQLite master."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.errors import CrmcleanError
from crmclean.ids import key_to_ref, parse_record_ref, ref_to_key
from crmclean.settings import SAMPLE_DATA_DIR
from dbutil import read_table
from factories import refusing_expectations

runner = CliRunner()
TRUTH = SAMPLE_DATA_DIR / "truth" / "truth.csv"


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    """One `run --json --log-file` on the sample data: (db url, tmp folder, CLI result)."""
    tmp = tmp_path_factory.mktemp("scripting")
    db_url = f"sqlite:///{tmp / 'master.db'}"
    result = runner.invoke(
        app,
        ["run", "--no-prefect", "--json", "--log-file", str(tmp / "logs" / "run.log"), "--db", db_url]
        + ["--out", str(tmp / "out")],
    )
    assert result.exit_code == 0, result.output
    return db_url, tmp, result


def test_run_json_is_one_document_on_stdout(json_run):
    db_url, tmp, result = json_run
    doc = json.loads(result.stdout)  # nothing but the document: no table, no mapping, no progress
    log = read_table(db_url, "run_log").set_index("run_id")
    assert doc["status"] == "success" and log.loc[doc["run_id"], "status"] == "success"
    assert doc["counts"]["rows_read"] == 291 and doc["counts"]["masters"] == log.loc[doc["run_id"], "masters"]
    assert doc["db"] == db_url and doc["report"].endswith("report.html")
    assert "ingest" in doc["timings"] and "publish" in doc["timings"] and doc["warnings"] == []
    assert "✓" not in result.stderr  # no progress list for scripts


def test_log_file_holds_the_stages_and_the_outcome(json_run):
    _, tmp, result = json_run
    run_id = json.loads(result.stdout)["run_id"]
    text = (tmp / "logs" / "run.log").read_text(encoding="utf-8")
    assert f"run {run_id} started" in text
    assert "stage ingest started" in text and "stage publish done after" in text
    assert f"run {run_id} success after" in text


def test_quiet_prints_nothing_on_success_and_the_error_on_failure(json_run, tmp_path):
    db_url, _, _ = json_run
    ok = runner.invoke(app, ["run", "--no-prefect", "--quiet", "--db", db_url, "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert ok.output == ""
    bad = runner.invoke(app, ["run", str(tmp_path / "absent.csv"), "--no-prefect", "-q", "--db", db_url])
    assert bad.exit_code == 1 and "absent.csv" in bad.stderr and bad.stdout == ""


def test_run_json_failure_is_a_json_document_too(tmp_path):
    result = runner.invoke(
        app, ["run", str(tmp_path / "absent.csv"), "--no-prefect", "--json", "--db", f"sqlite:///{tmp_path / 'm.db'}"]
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 1 and "absent.csv" in doc["error"]


def test_history_json_and_table_show_status_duration_and_error(json_run):
    db_url, _, _ = json_run
    result = runner.invoke(app, ["history", "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert runs and all(r["status"] == "success" and r["duration_s"] > 0 for r in runs)
    assert {"run_id", "started_at", "finished_at", "error", "masters"} <= set(runs[0])
    table = runner.invoke(app, ["history", "--db", db_url], env={"COLUMNS": "80"})
    assert table.exit_code == 0
    assert "took" in table.stdout and runs[0]["run_id"] in table.stdout


def test_history_prints_the_error_line_of_a_failed_run(tmp_path):
    """A run refused by a critical expectation: history shows it failed, and why."""

    strict = refusing_expectations(tmp_path / "expectations")
    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    failed = runner.invoke(
        app, ["run", "--no-prefect", "-q", "--expectations", str(strict), "--db", db_url, "--out", str(tmp_path / "o")]
    )
    assert failed.exit_code == 3
    table = runner.invoke(app, ["history", "--db", db_url])
    assert table.exit_code == 0
    run_id = read_table(db_url, "run_log")["run_id"].iloc[0]
    assert f"{run_id} failed: " in table.stdout and "nothing was published" in table.stdout


def test_evaluate_json(json_run):
    db_url, _, _ = json_run
    result = runner.invoke(app, ["evaluate", "--truth", str(TRUTH), "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["records_truth"] == 291 and 0 < doc["pairwise"]["f1"] <= 1 and 0 < doc["bcubed"]["f1"] <= 1


def test_evaluate_without_a_scenario_column(json_run, tmp_path):
    """The help says scenario is optional: a truth file without it scores the same."""
    db_url, _, _ = json_run
    truth = pd.read_csv(TRUTH, dtype=str, keep_default_na=False)
    truth.drop(columns=["scenario"]).to_csv(tmp_path / "truth.csv", index=False)
    full = json.loads(runner.invoke(app, ["evaluate", "--truth", str(TRUTH), "--json", "--db", db_url]).stdout)
    result = runner.invoke(app, ["evaluate", "--truth", str(tmp_path / "truth.csv"), "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pairwise"] == full["pairwise"] and doc["bcubed"] == full["bcubed"]
    assert doc["recall_by_scenario"] == {}
    assert "optional: scenario" in " ".join(runner.invoke(app, ["evaluate", "--help"]).output.split())


def test_evaluate_against_the_wrong_truth_file_fails(json_run, tmp_path):
    """A truth file of other inputs: most of its records are unknown here, so no scores."""
    db_url, _, _ = json_run
    truth = pd.read_csv(TRUTH, dtype=str, keep_default_na=False)
    wrong = truth.assign(source_record_id="other-" + truth["source_record_id"])
    wrong.to_csv(tmp_path / "other.csv", index=False)
    result = runner.invoke(app, ["evaluate", "--truth", str(tmp_path / "other.csv"), "--db", db_url])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert f"{len(truth):,} of {len(truth):,} truth records were not found in the master" in line
    assert "bcubed" not in result.output and "Traceback" not in result.output


def test_record_reference_parser_accepts_both_spellings():
    assert parse_record_ref("crm_a:00123") == ("crm_a", "00123")
    assert parse_record_ref(" crm_a|00123 ") == ("crm_a", "00123")
    assert parse_record_ref("crm_a|id:with:colons") == ("crm_a", "id:with:colons")
    assert parse_record_ref("crm_a:id|x") == ("crm_a", "id|x") or parse_record_ref("crm_a:id|x") == ("crm_a:id", "x")
    assert ref_to_key("crm_a:7") == ref_to_key("crm_a|7") == "crm_a|7"
    assert key_to_ref("crm_a|7") == "crm_a:7"
    for bad in ("crm_a", ":7", "crm_a:", "|", "", None, True):
        with pytest.raises(CrmcleanError, match="is not a record reference; write it as source:source_record_id"):
            parse_record_ref(bad)


def test_explain_takes_either_spelling_and_prints_source_colon_id(json_run):
    db_url, _, _ = json_run
    xref = read_table(db_url, "customer_xref")
    sizes = xref.groupby("master_id").size()
    members = xref[xref["master_id"] == sizes[sizes >= 2].index[0]].head(2)
    colon = [f"{r.source}:{r.source_record_id}" for r in members.itertuples()]
    pipe = [f"{r.source}|{r.source_record_id}" for r in members.itertuples()]
    by_colon = runner.invoke(app, ["explain", *colon, "--db", db_url])
    by_pipe = runner.invoke(app, ["explain", colon[0], pipe[1], "--db", db_url])
    assert by_colon.exit_code == 0 and by_pipe.exit_code == 0, by_colon.output + by_pipe.output
    assert f"A = {min(colon)}" in by_colon.stdout or f"A = {min(pipe).replace('|', ':', 1)}" in by_colon.stdout
    master = runner.invoke(app, ["explain", members["master_id"].iloc[0], "--db", db_url])
    assert colon[0] in master.stdout and pipe[0] not in master.stdout
    bad = runner.invoke(app, ["explain", "nosuchref", "crm_a:1", "--db", db_url])
    assert bad.exit_code == 1 and "'nosuchref' is not a record reference" in bad.output


def test_review_apply_takes_either_spelling(tmp_path):
    """Decisions written by hand as source:id land on the same stored keys as source|id."""
    from dbutil import seed_master

    db_url = seed_master(
        f"sqlite:///{tmp_path / 'm.db'}",
        {
            "customer_xref": pd.DataFrame(
                {"record_key": ["a|1"], "source": ["a"], "source_record_id": ["1"], "master_id": ["C0000001"]}
            )
        },
    )
    sheet = tmp_path / "decisions.csv"
    sheet.write_text("decision,record_key_l,record_key_r\nmatch,a:1,b|2\nno_match,a|3,b:4\n", encoding="utf-8")
    result = runner.invoke(app, ["review", "apply", str(sheet), "--db", db_url])
    assert result.exit_code == 0, result.output
    decided = read_table(db_url, "review_decision")
    assert set(zip(decided["record_key_l"], decided["record_key_r"])) == {("a|1", "b|2"), ("a|3", "b|4")}
    sheet.write_text("decision,record_key_l,record_key_r\nmatch,a1,b|2\n", encoding="utf-8")
    bad = runner.invoke(app, ["review", "apply", str(sheet), "--db", db_url])
    assert bad.exit_code == 1 and "row 2, column 'record_key_l': 'a1' is not a record reference" in bad.output
