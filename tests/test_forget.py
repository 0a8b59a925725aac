"""`crmclean forget` on SQLite and PostgreSQL: a person leaves every table and run folder, the
next run over the same input quarantines them (`erased_on_request`) with every other row still
accounted for, and on PostgreSQL an analyst role reads only the masked view of the master."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from crmclean.cli import app
from crmclean.masking import mask_frame
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import DEFAULT_RULES_DIR, SAMPLE_DATA_DIR
from crmclean.store.tables import metadata
from dbutil import read_table
from test_postgres import pg_url  # noqa: F401  (the session PostgreSQL database fixture)
from typer.testing import CliRunner

REASON = "Erased at the customer's request; not imported."


def rules_with_reason(tmp: Path) -> Path:
    """A copy of the default rules whose erasure reason is ours (the setting is read)."""
    rules = tmp / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    sources = yaml.safe_load((rules / "sources.yaml").read_text(encoding="utf-8"))
    sources["erasure"] = {"reason": REASON}
    (rules / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    return rules


def run(db_url: str, out: Path, rules: Path | None = None):
    options = RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db_url, out_dir=out, rules_dir=rules, workers=1)
    options.show_pii = True  # the report quotes every value: forget must redact it
    return run_pipeline(options)


def forget_cli(*args: str):
    return CliRunner().invoke(app, ["forget", *args])


def pick_person(db_url: str, shown_in: str = "") -> dict:
    """A master of 2+ records with an e-mail, phone and name that no other record shares (and,
    given `shown_in`, one whose values that text quotes: the report lists the largest masters)."""
    records = read_table(db_url, "customer_record")
    xref = read_table(db_url, "customer_xref")
    masters = read_table(db_url, "master_customer").sort_values("master_id")
    value_cols = ["email", "email_std", "phone_std", "mobile_std", "full_name", "full_name_std"]
    for m in masters.itertuples():
        if not (m.record_count >= 2 and m.email and m.phone and m.full_name):
            continue
        keys = set(xref.loc[xref["master_id"] == m.master_id, "record_key"])
        own = records[records["record_key"].isin(keys)]
        others = records[~records["record_key"].isin(keys)]
        needles = {str(v) for c in value_cols for v in own[c].dropna() if len(str(v)) >= 2}
        taken = {str(v) for c in value_cols for v in others[c].dropna()}
        if needles & taken or (shown_in and not found_in(shown_in, needles)):
            continue
        return {"master_id": m.master_id, "email": m.email, "phone": m.phone, "keys": keys, "needles": needles}
    raise AssertionError("the sample data has no suitable person")


def found_in(data: str, needles: set[str]) -> set[str]:
    """The needles in `data`, as written or JSON-escaped (Data Docs escape non-ASCII)."""
    return {n for n in needles if n in data or json.dumps(n)[1:-1] in data}


def folder_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "ignore") for p in sorted(folder.rglob("*")) if p.is_file())


def database_text(db_url: str) -> str:
    """Everything the database holds as text: for SQLite the raw bytes of its files (deleted
    rows left in free pages would show), for PostgreSQL pg_dump (or every row, without it)."""
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        return "\n".join(p.read_bytes().decode("utf-8", "ignore") for p in files)
    if shutil.which("pg_dump"):
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return subprocess.run(["pg_dump", "--data-only", libpq], capture_output=True, text=True, check=True).stdout
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return "\n".join(str(conn.execute(sa.text(f'SELECT * FROM "{n}"')).fetchall()) for n in names)
    finally:
        engine.dispose()


def counts(db_url: str) -> dict[str, int]:
    return {name: len(read_table(db_url, name)) for name in metadata.tables}


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    """One SQLite master of the sample data (copied by each test that changes it)."""
    tmp = tmp_path_factory.mktemp("forget")
    rules = rules_with_reason(tmp)
    db = f"sqlite:///{tmp / 'master.db'}"
    run(db, tmp / "out", rules)
    return tmp, rules


@pytest.fixture
def sqlite_master(first_night, tmp_path):
    src, rules = first_night
    shutil.copy(src / "master.db", tmp_path / "master.db")
    shutil.copytree(src / "out", tmp_path / "out")
    return f"sqlite:///{tmp_path / 'master.db'}", tmp_path / "out", rules


@pytest.fixture
def pg_master(pg_url, tmp_path):  # noqa: F811 (pytest fixture)
    engine = sa.create_engine(pg_url)
    metadata.drop_all(engine)
    engine.dispose()
    rules = rules_with_reason(tmp_path)
    run(pg_url, tmp_path / "out", rules)
    return pg_url, tmp_path / "out", rules


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def master(request):
    return request.getfixturevalue("sqlite_master" if request.param == "sqlite" else "pg_master")


def test_forget_erases_everywhere_and_the_next_run_quarantines_the_person(master):
    db_url, out, rules = master
    person = pick_person(db_url, shown_in=folder_text(out))  # the --show-pii report quotes them
    before_xref = read_table(db_url, "customer_xref")
    masters_before = len(read_table(db_url, "master_customer"))
    key = person["email"] if db_url.startswith("sqlite") else person["phone"]

    result = forget_cli(key, "--db", db_url, "--out", str(out), "--rules", str(rules))
    assert result.exit_code == 0, result.output
    assert f"erased 1 master(s) and {len(person['keys'])} record(s)" in result.output
    assert not found_in(result.output, person["needles"])  # the summary names no value
    assert not found_in(database_text(db_url), person["needles"])
    assert not found_in(folder_text(out), person["needles"])
    audit = read_table(db_url, "erasure_audit")
    assert len(audit) == 1 and audit.loc[0, "records"] == len(person["keys"])
    assert json.loads(audit.loc[0, "rows"])["customer_record"] == len(person["keys"])

    night = run(db_url, out, rules)
    quarantine = read_table(db_url, "quarantine")
    erased = quarantine[quarantine["reason_code"] == "erased_on_request"]
    assert set(erased["source"] + "|" + erased["source_record_id"]) == person["keys"]
    assert set(erased["reason"]) == {REASON} and erased["raw"].isna().all()
    counts_ = night.counts
    assert counts_["rows_read"] == counts_["records_accepted"] + counts_["quarantined"]
    after_xref = read_table(db_url, "customer_xref")
    others = before_xref[~before_xref["record_key"].isin(person["keys"])]
    assert set(after_xref["record_key"]) == set(others["record_key"])  # everyone else is still there
    kept = after_xref.set_index("record_key")["master_id"]
    assert (kept[others["record_key"]].to_numpy() == others["master_id"].to_numpy()).all()
    assert len(read_table(db_url, "master_customer")) == masters_before - 1
    assert not found_in(database_text(db_url), person["needles"])


def test_dry_run_changes_nothing_and_record_references_take_both_forms(sqlite_master):
    db_url, out, rules = sqlite_master
    person = pick_person(db_url)
    source, _, rid = sorted(person["keys"])[0].partition("|")
    before = counts(db_url)
    reports = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    outputs = []
    for ref in (f"{source}:{rid}", f"{source}|{rid}", person["master_id"]):
        result = forget_cli(ref, "--db", db_url, "--out", str(out), "--dry-run")
        assert result.exit_code == 0, result.output
        assert "dry run: nothing was changed" in result.output
        outputs.append([line for line in result.output.splitlines() if "row(s)" in line or "report" in line])
    assert outputs[0] == outputs[1] == outputs[2]  # the same person, however named
    assert any("customer_record: " in line for line in outputs[0])
    assert counts(db_url) == before
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == reports


def test_a_key_that_matches_nobody_exits_1_with_one_line(sqlite_master):
    db_url, out, _ = sqlite_master
    before = counts(db_url)
    result = forget_cli("nobody@example.org", "--db", db_url, "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no record or master matches that e-mail address; nothing was erased"
    ]
    assert counts(db_url) == before
    assert forget_cli("nosuchsource:1", "--db", db_url).exit_code == 1


def test_forget_never_creates_a_database(tmp_path):
    result = forget_cli("C0000001", "--db", f"sqlite:///{tmp_path / 'typo.db'}")
    assert result.exit_code == 1 and "no crmclean master" in result.output
    assert not (tmp_path / "typo.db").exists()


def test_one_salt_per_database_and_tombstones_are_only_hashes(sqlite_master):
    db_url, out, _ = sqlite_master
    person = pick_person(db_url)
    assert forget_cli(person["master_id"], "--db", db_url, "--out", str(out)).exit_code == 0
    first = read_table(db_url, "erasure_tombstone")
    other = read_table(db_url, "master_customer")["master_id"].iloc[0]
    assert forget_cli(other, "--db", db_url, "--out", str(out)).exit_code == 0
    tombstones = read_table(db_url, "erasure_tombstone")
    assert len(tombstones) > len(first) and set(tombstones["kind"]) >= {"record", "email", "phone"}
    assert tombstones["hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert not set(tombstones["hash"]) & person["needles"]
    with sqlite3.connect(sa.engine.make_url(db_url).database) as conn:
        salts = conn.execute("SELECT salt FROM erasure_salt").fetchall()
    assert len(salts) == 1 and len(salts[0][0]) == 64
    assert len(read_table(db_url, "erasure_audit")) == 2


# ------------------------------------------------------------------ PostgreSQL access limits


@pytest.mark.postgres
def test_masked_view_applies_the_masking_policy(pg_master):
    db_url, _, _ = pg_master
    master = read_table(db_url, "master_customer").sort_values("master_id").reset_index(drop=True)
    view = read_table(db_url, "master_customer_masked").sort_values("master_id").reset_index(drop=True)
    expected = mask_frame(master)
    assert list(view.columns) == list(master.columns)
    pd.testing.assert_frame_equal(view.astype(object), expected.astype(object), check_dtype=False)
    assert not set(master["email"].dropna()) & set(view["email"].dropna())


@pytest.mark.postgres
def test_read_only_role_reads_the_masked_view_and_not_the_master(pg_master):
    """The README's GRANT statements, run as written, on the real server."""
    db_url, _, _ = pg_master
    role = f"crm_analyst_{uuid.uuid4().hex[:8]}"
    database = sa.engine.make_url(db_url).database
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    analyst = sa.create_engine(sa.engine.make_url(db_url).set(username=role, password=None))
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            conn.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
            conn.exec_driver_sql(f"GRANT SELECT ON master_customer_masked TO {role}")
        with analyst.connect() as conn:
            rows = conn.exec_driver_sql("SELECT email, phone FROM master_customer_masked").fetchall()
            assert rows and all("***" in (email or "***") for email, _ in rows)
        for table in ("master_customer", "customer_record", "quarantine"):
            with analyst.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.exec_driver_sql(f'SELECT * FROM "{table}" LIMIT 1').fetchall()
    finally:
        analyst.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_a_row_that_was_only_quarantined_loses_its_raw_values_but_keeps_its_place(sqlite_master):
    db_url, out, _ = sqlite_master
    before = read_table(db_url, "quarantine")
    row = before[before["raw"].notna() & before["source_record_id"].str.startswith("@")].iloc[0]
    result = forget_cli(f"{row['source']}:{row['source_record_id']}", "--db", db_url, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "quarantine: 1 row(s) redacted" in result.output
    after = read_table(db_url, "quarantine")
    assert len(after) == len(before)
    same = after[(after["source"] == row["source"]) & (after["source_record_id"] == row["source_record_id"])]
    assert len(same) == 1 and same["raw"].isna().all()
    assert row["raw"] not in database_text(db_url)


def test_a_broken_line_of_an_erased_person_is_quarantined_without_its_raw_text(sqlite_master, tmp_path):
    """Ingest quarantines a line with too many fields before standardize sees it: the
    tombstones still catch the person's e-mail in its raw text."""
    db_url, out, rules = sqlite_master
    person = pick_person(db_url)
    assert forget_cli(person["email"], "--db", db_url, "--out", str(out)).exit_code == 0
    inputs = tmp_path / "in"
    shutil.copytree(SAMPLE_DATA_DIR, inputs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    web = inputs / "crm_web_us.csv"
    text = web.read_text(encoding="utf-8-sig")
    extra = f"9999001,Ann,Lee,{person['email'].upper()},,,,,,,,,extra,fields\n"
    web.write_text(text + ("" if text.endswith("\n") else "\n") + extra, encoding="utf-8-sig")
    night = run_pipeline(RunOptions(inputs=[inputs], db_url=db_url, out_dir=out, rules_dir=rules, workers=1))
    quarantine = read_table(db_url, "quarantine")
    broken = quarantine[quarantine["source_record_id"].astype(str).str.contains("9999001|@", regex=True)]
    mine = broken[broken["reason_code"] == "erased_on_request"]
    assert len(mine) == 1 and mine["raw"].isna().all() and set(mine["reason"]) == {REASON}
    assert person["email"].lower() not in database_text(db_url).lower()
    assert night.counts["rows_read"] == night.counts["records_accepted"] + night.counts["quarantined"]
