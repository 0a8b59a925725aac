"""The `crmclean` commands against a real SQLite master built from sample_data/."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.settings import SAMPLE_DATA_DIR
from dbutil import read_table as _table

runner = CliRunner()


@pytest.fixture(scope="module")
def master_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    db_url = f"sqlite:///{tmp / 'master.db'}"
    result = runner.invoke(app, ["run", "--no-prefect", "--db", db_url, "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    return db_url, tmp


def test_run_prints_mapping_and_counts(master_db):
    db_url, tmp = master_db
    result = runner.invoke(app, ["run", "--no-prefect", "--db", db_url, "--out", str(tmp / "out2")])
    assert result.exit_code == 0, result.output
    # the header mapping is printed: Chinese headers mapped to canonical fields
    assert "客户编号 → record_id" in result.output
    assert "rows read" in result.output and "291" in result.output


def test_explain_master_and_pair(master_db):
    db_url, _ = master_db
    xref = _table(db_url, "customer_xref")
    sizes = xref.groupby("master_id").size()
    master = sizes[sizes >= 2].index[0]
    out = runner.invoke(app, ["explain", master, "--db", db_url])
    assert out.exit_code == 0, out.output
    assert master in out.output
    members = xref[xref["master_id"] == master].head(2)
    refs = [f"{r.source}:{r.source_record_id}" for r in members.itertuples()]
    pair = runner.invoke(app, ["explain", *refs, "--db", db_url])
    assert pair.exit_code == 0, pair.output
    assert "probability" in pair.output.lower()
    unknown = runner.invoke(app, ["explain", "C9999999", "--db", db_url])
    assert unknown.exit_code == 1 and "C9999999" in unknown.output and "Traceback" not in unknown.output


def test_evaluate_against_sample_truth(master_db):
    db_url, _ = master_db
    out = runner.invoke(app, ["evaluate", "--truth", str(SAMPLE_DATA_DIR / "truth" / "truth.csv"), "--db", db_url])
    assert out.exit_code == 0, out.output
    assert "pairwise" in out.output and "bcubed" in out.output


def test_review_round_trip(master_db, tmp_path):
    db_url, _ = master_db
    path = tmp_path / "review.csv"
    exported = runner.invoke(app, ["review", "export", str(path), "--db", db_url])
    assert exported.exit_code == 0, exported.output
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    if sheet.empty:
        pytest.skip("the sample run produced no review pairs")
    sheet.loc[sheet.index[0], "decision"] = "no_match"
    sheet.to_csv(path, index=False)
    applied = runner.invoke(app, ["review", "apply", str(path), "--db", db_url])
    assert applied.exit_code == 0, applied.output
    decisions = _table(db_url, "review_decision")
    assert len(decisions) == 1 and decisions["decision"].iloc[0] == "no_match"
    sheet.loc[sheet.index[0], "decision"] = "perhaps"
    sheet.to_csv(path, index=False)
    bad = runner.invoke(app, ["review", "apply", str(path), "--db", db_url])
    assert bad.exit_code == 1 and "review.csv" in bad.output and "Traceback" not in bad.output


def test_history_and_diff(master_db):
    db_url, _ = master_db
    log = _table(db_url, "run_log").sort_values("started_at")
    assert len(log) >= 1
    hist = runner.invoke(app, ["history", "--db", db_url])
    assert hist.exit_code == 0 and log["run_id"].iloc[-1][:12] in hist.output
    if len(log) >= 2:
        d = runner.invoke(app, ["diff", log["run_id"].iloc[0], log["run_id"].iloc[-1], "--db", db_url])
        assert d.exit_code == 0, d.output


def test_demo_data_writes_files(tmp_path):
    out = runner.invoke(app, ["demo-data", "--customers", "50", "--seed", "3", "--out", str(tmp_path / "demo")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "demo" / "crm_legacy_cn.csv").is_file()
    assert (tmp_path / "demo" / "truth" / "truth.csv").is_file()


@pytest.mark.parametrize(
    "command",
    [
        ["history"],
        ["diff", "R1", "R2"],
        ["explain", "C0000001"],
        ["explain", "crm_a:1", "crm_b:2"],
        ["evaluate", "--truth", str(SAMPLE_DATA_DIR / "truth" / "truth.csv")],
        ["review", "export", "{tmp}/out.csv"],
        ["review", "apply", "{tmp}/decisions.csv"],
        ["export", "{tmp}/out.csv"],
        ["label", "--answers", "{tmp}/decisions.csv"],
    ],
)
def test_read_only_commands_on_a_mistyped_database_say_so_and_create_nothing(tmp_path, command):
    """issues 15 and 16: a typo in --db is one clear line and exit 1, never a new empty master."""
    (tmp_path / "decisions.csv").write_text("decision,record_key_l,record_key_r\nmatch,a|1,b|2\n", encoding="utf-8")
    folder = tmp_path / "db"
    folder.mkdir()
    db_url = f"sqlite:///{folder / 'typo.db'}"
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = runner.invoke(app, [*args, "--db", db_url])
    assert result.exit_code == 1, result.output
    assert f"no crmclean master at {db_url}: run 'crmclean run' first" in " ".join(result.output.split())
    assert list(folder.iterdir()) == [] and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("mode", [["--no-prefect"], []], ids=["no-prefect", "prefect"])
def test_run_with_a_typo_in_the_rules_stops_before_any_work(tmp_path, mode):
    """A misspelt key is one line naming file, key and the nearest valid key; exit 1, and
    nothing is written (no database, no output folder), before Prefect starts."""
    import shutil

    from crmclean.settings import DEFAULT_RULES_DIR

    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    matching = rules / "matching.yaml"
    matching.write_text(
        matching.read_text(encoding="utf-8").replace("  review: 0.6", "  reveiw: 0.5", 1), encoding="utf-8"
    )
    db = tmp_path / "master.db"
    result = runner.invoke(
        app, ["run", *mode, "--rules", str(rules), "--db", f"sqlite:///{db}", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1, result.output
    assert "matching.yaml: unknown key 'thresholds.reveiw' (did you mean 'review'?)" in result.output
    assert "Traceback" not in result.output
    assert not db.exists() and not (tmp_path / "out").exists()
