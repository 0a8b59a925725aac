"""Outputs and databases that refuse writes (issue 16): one line naming the path or database,
exit 1, nothing published, run_log says so where it can.

The faults are real where the machine allows it (a folder under a regular file, /dev/full, a
SQLite file opened read-only, a read-only PostgreSQL database, a role without write grants);
tests run as root, where chmod stops nothing, so a permission error is injected into mkdir."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.errors import OutputError
from crmclean.run import RunOptions, run_pipeline
from dbutil import read_table, throwaway_pg_database

runner = CliRunner()


def _export(folder: Path) -> Path:
    """A small CRM export (distinct people)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["Customer ID,Full Name,Email,Phone,City"]
    lines += [f"F{i:03d},Person{i} Faultname,p{i}@northwind.io,+1 415 555 {1000 + i},Springfield" for i in range(1, 13)]
    path = folder / "crm_f.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(args: list[str]):
    result = runner.invoke(app, ["run", *args, "--no-prefect"])
    return result.exit_code, result.output  # stdout and stderr, interleaved


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error" in line.lower()]


def _published(db_url: str) -> pd.DataFrame:
    return read_table(db_url, "master_customer").sort_values("master_id").reset_index(drop=True)


def _last_run(db_url: str) -> dict:
    runs = read_table(db_url, "run_log").sort_values("started_at")
    return runs.iloc[-1].to_dict()


@pytest.fixture
def seeded(tmp_path):
    """A master published once from the small export: (input file, db url, its master table)."""
    path = _export(tmp_path / "in")
    db_url = f"sqlite:///{tmp_path / 'master.db'}"
    run_pipeline(RunOptions(inputs=[path], db_url=db_url, out_dir=tmp_path / "out"))
    return path, db_url, _published(db_url)


# ---------------------------------------------------------------------------------------------
# Output folder


def test_output_folder_under_a_regular_file_is_one_line_and_nothing_published(tmp_path, seeded):
    path, db_url, before = seeded
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    out = tmp_path / "afile" / "out"
    code, text = _run([str(path), "--db", db_url, "--out", str(out)])
    assert code == 1, text
    assert "internal error" not in text and "Traceback" not in text
    (line,) = _error_lines(text)
    assert f"output folder {out}" in line and "Not a directory" in line and "choose a writable --out" in line
    pd.testing.assert_frame_equal(_published(db_url), before)
    last = _last_run(db_url)
    assert last["status"] == "failed" and "cannot write" in last["error"]


def test_output_folder_without_permission_is_one_line(tmp_path, seeded, monkeypatch):
    """As root chmod stops nothing: the permission error is injected where the folder is made."""
    path, db_url, before = seeded
    out = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def refusing_mkdir(self, *args, **kwargs):
        if out in (self, *self.parents):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refusing_mkdir)
    code, text = _run([str(path), "--db", db_url, "--out", str(out)])
    assert code == 1, text
    (line,) = _error_lines(text)
    assert "Permission denied" in line and str(out) in line
    pd.testing.assert_frame_equal(_published(db_url), before)


# ---------------------------------------------------------------------------------------------
# Full disk


def test_full_disk_at_write_time_dev_full(tmp_path, seeded):
    """A real ENOSPC: the run's first output file is /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    path, db_url, before = seeded
    run_dir = tmp_path / "out2" / "runs" / "RUN-FULL"
    run_dir.mkdir(parents=True)
    (run_dir / "column_mapping.json").symlink_to("/dev/full")
    with pytest.raises(OutputError, match="No space left on device") as caught:
        run_pipeline(RunOptions(inputs=[path], db_url=db_url, out_dir=tmp_path / "out2", run_id="RUN-FULL"))
    assert str(tmp_path / "out2") in str(caught.value) and "free space" in str(caught.value)
    pd.testing.assert_frame_equal(_published(db_url), before)
    last = _last_run(db_url)
    assert last["run_id"] == "RUN-FULL" and last["status"] == "failed" and "No space left" in last["error"]


def test_full_disk_while_writing_data_docs_is_one_line_exit_1(tmp_path, seeded, monkeypatch):
    """ENOSPC injected into a later write (the standardize summary CSV, just before publish)."""
    path, db_url, before = seeded
    real_to_csv = pd.DataFrame.to_csv

    def full_disk(self, target=None, *args, **kwargs):
        if target is not None and Path(str(target)).name == "standardize_summary.csv":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return real_to_csv(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    code, text = _run([str(path), "--db", db_url, "--out", str(tmp_path / "out3")])
    assert code == 1, text
    (line,) = _error_lines(text)
    assert "standardize_summary.csv" in line and "No space left on device" in line
    pd.testing.assert_frame_equal(_published(db_url), before)
    assert _last_run(db_url)["status"] == "failed"


# ---------------------------------------------------------------------------------------------
# Databases that refuse writes


def test_sqlite_master_opened_read_only_is_one_line(tmp_path, seeded):
    path, db_url, before = seeded
    read_only = f"sqlite:///file:{tmp_path / 'master.db'}?mode=ro&uri=true"
    code, text = _run([str(path), "--db", read_only, "--out", str(tmp_path / "out")])
    assert code == 1, text
    (line,) = _error_lines(text)
    assert "the database refuses writes" in line and "master.db" in line and "readonly" in line
    pd.testing.assert_frame_equal(_published(db_url), before)


@pytest.fixture
def pg_db():
    """A throwaway PostgreSQL database: (url, admin engine on it for ALTER/GRANT, name)."""
    with throwaway_pg_database("crmclean_faults") as db:
        yield db


def test_postgres_read_only_database_is_one_line_and_nothing_published(tmp_path, pg_db):
    url, admin, name = pg_db
    path = _export(tmp_path / "in")
    run_pipeline(RunOptions(inputs=[path], db_url=url, out_dir=tmp_path / "out"))
    before = _published(url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    code, text = _run([str(path), "--db", url, "--out", str(tmp_path / "out")])
    assert code == 1, text
    (line,) = _error_lines(text)
    assert "the database refuses writes" in line and name in line and "read-only transaction" in line
    pd.testing.assert_frame_equal(_published(url), before)


def test_postgres_role_without_write_grants_fails_the_publish_and_says_so_in_run_log(tmp_path, pg_db):
    """The role may log its run but not write the master: the publish is refused, run_log says why."""
    url, admin, name = pg_db
    path = _export(tmp_path / "in")
    run_pipeline(RunOptions(inputs=[path], db_url=url, out_dir=tmp_path / "out"))
    before = _published(url)
    role = f"crm_reader_{uuid.uuid4().hex[:6]}"
    owner = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(sa.text(f'GRANT INSERT, UPDATE ON run_log TO "{role}"'))
    try:
        role_url = sa.engine.make_url(url).set(username=role).render_as_string(hide_password=False)
        code, text = _run([str(path), "--db", role_url, "--out", str(tmp_path / "out")])
        assert code == 1, text
        (line,) = _error_lines(text)
        assert "the database refuses writes while publishing" in line and name in line
        pd.testing.assert_frame_equal(_published(url), before)
        last = _last_run(url)
        assert last["status"] == "failed" and "permission denied" in last["error"]
    finally:
        with owner.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
        owner.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
