"""`crmclean run` runs in-process at once unless a Prefect API is configured or --prefect is given."""

from __future__ import annotations

from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.flows_mode import prefect_api_configured, startup_timed_out
from crmclean.settings import SAMPLE_DATA_DIR

runner = CliRunner()


def test_api_url_from_environment_first(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api_configured() == "http://127.0.0.1:4200/api"


def test_api_url_from_the_active_profile(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert prefect_api_configured() is None  # no profiles file
    (tmp_path / "profiles.toml").write_text(
        'active = "work"\n[profiles.ephemeral]\n[profiles.work]\nPREFECT_API_URL = "http://prefect.internal/api"\n',
        encoding="utf-8",
    )
    assert prefect_api_configured() == "http://prefect.internal/api"
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    assert prefect_api_configured() is None


def test_startup_timeout_is_recognised_through_the_chain():
    inner = RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")
    outer = ValueError("flow failed")
    outer.__cause__ = inner
    assert startup_timed_out(outer)
    assert not startup_timed_out(ValueError("a real failure"))


def test_run_without_a_prefect_api_runs_in_process_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    result = runner.invoke(
        app, ["run", str(SAMPLE_DATA_DIR), "--db", f"sqlite:///{tmp_path / 'm.db'}", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "running in-process (no Prefect API configured" in result.output
    assert "temporary Prefect server" not in result.output


def test_serve_without_a_server_says_what_to_start(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    result = runner.invoke(app, ["serve", str(SAMPLE_DATA_DIR)])
    assert result.exit_code == 1
    assert "prefect server start" in result.output and "Traceback" not in result.output


def test_serve_with_a_malformed_cron_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["serve", "--cron", "61 2 * * x"])
    assert result.exit_code == 1
    assert "is not a cron schedule" in result.output
