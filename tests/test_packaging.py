"""The installed artefact: one import package `crmclean` with its rules, suites and sample data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.settings import DEFAULT_EXPECTATIONS_DIR, DEFAULT_RULES_DIR, SAMPLE_DATA_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("crmclean-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_wheel_installs_one_top_level_package(wheel_names):
    top = {name.split("/")[0] for name in wheel_names if not name.startswith("crmclean-")}
    assert top == {"crmclean"}


def test_wheel_carries_rules_suites_sample_data_and_license(wheel_names):
    names = set(wheel_names)
    for path in (
        "crmclean/rules/matching.yaml",
        "crmclean/expectations/result.json",
        "crmclean/sample_data/crm_sales.xlsx",
        "crmclean/sample_data/crm_legacy_cn.csv",
        "crmclean/flows/nightly.py",
        "crmclean/templates/report.html.j2",
    ):
        assert path in names, path
    assert any(name.endswith("LICENSE") for name in names)


def test_packaged_dirs_resolve_to_real_folders():
    assert (DEFAULT_RULES_DIR / "matching.yaml").is_file()
    assert (DEFAULT_EXPECTATIONS_DIR / "result.json").is_file()
    assert (SAMPLE_DATA_DIR / "crm_web_us.csv").is_file()


def test_init_writes_editable_rules_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rules" / "matching.yaml").read_text() == (DEFAULT_RULES_DIR / "matching.yaml").read_text()
    assert (tmp_path / "expectations" / "standardized.json").is_file()
    assert not list(tmp_path.rglob("*.py"))
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output
