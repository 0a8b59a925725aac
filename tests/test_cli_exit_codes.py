"""The CLI's documented exit codes: 0 ok, 1 user/data error, 2 usage, 3 failed expectations, 4 internal."""

from __future__ import annotations


from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.settings import SAMPLE_DATA_DIR
from factories import refusing_expectations

runner = CliRunner()


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"crmclean {version('crmclean')}"


def test_unknown_option_is_a_usage_error():
    result = runner.invoke(app, ["run", "--no-such-option"])
    assert result.exit_code == 2


def test_missing_input_is_a_user_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            str(tmp_path / "absent.csv"),
            "--no-prefect",
            "--db",
            f"sqlite:///{tmp_path / 'm.db'}",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "absent.csv" in result.output


def test_failed_critical_expectation_exits_3(tmp_path):
    strict = refusing_expectations(tmp_path / "expectations")
    result = runner.invoke(
        app,
        [
            "run",
            str(SAMPLE_DATA_DIR),
            "--no-prefect",
            "--expectations",
            str(strict),
            "--db",
            f"sqlite:///{tmp_path / 'm.db'}",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 3, result.output
    assert "nothing was published" in result.output


def test_internal_error_exits_4_with_one_line(tmp_path, monkeypatch):
    """A fault injected into a stage (the only mock here) becomes exit 4 and one line, no traceback."""
    import crmclean.run as run_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(run_module, "run_pipeline", broken)
    result = runner.invoke(
        app,
        [
            "run",
            str(SAMPLE_DATA_DIR),
            "--no-prefect",
            "--db",
            f"sqlite:///{tmp_path / 'm.db'}",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 4
    assert "internal error: ZeroDivisionError: injected" in result.output
    assert "Traceback" not in result.output
