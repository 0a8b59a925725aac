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
