"""Every command's --help, as a user reads it: flags show as flags, never as `--retrain <bool>`."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from crmclean.cli import app

runner = CliRunner()


def _command_paths(command, path=()) -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as the words typed to reach it."""
    paths = [path]
    for name in getattr(command, "commands", {}) or {}:
        paths += _command_paths(command.commands[name], (*path, name))
    return paths


ALL_COMMANDS = _command_paths(typer.main.get_command(app))


def test_every_command_is_reached():
    names = {" ".join(p) for p in ALL_COMMANDS}
    assert {"", "run", "explain", "review", "review export", "review apply", "export", "history"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "crmclean")
def test_help_shows_flags_as_flags(path):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def test_run_help_lists_its_flags_without_a_value():
    text = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    retrain = next(line for line in text.splitlines() if "--retrain" in line)
    assert "<" not in retrain and "Retrain the match model" in retrain
    assert "--no-prefect" in text
    assert "<int>" in text  # options that take a value still say what value


def test_a_flag_given_a_value_is_a_usage_error():
    result = runner.invoke(app, ["run", "--retrain=yes"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "args, named",
    [
        (["--workers", "2", "--dask-workers", "2"], "--workers"),
        (["--workers", "1", "--dask-address", "tcp://127.0.0.1:1"], "--workers"),
        (["--dask-workers", "2", "--dask-address", "tcp://127.0.0.1:1"], "--dask-workers"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_one_answer_to_how_many_workers(args, named, tmp_path):
    """--workers sizes this machine's pool; beside a Dask option it would be ignored, so it is
    refused before anything runs (exit 2), naming the option."""
    result = runner.invoke(app, ["run", "--no-prefect", "--db", f"sqlite:///{tmp_path}/m.db", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output and ("Dask" in result.output or "1 or more" in result.output)
    assert not (tmp_path / "m.db").exists()


def test_run_help_says_what_workers_means_under_dask():
    text = " ".join(runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "Not with --dask-address/--dask-workers" in text
