"""The run report opened in a real headless Chromium: no console errors, the counts on the page.

Skips when chromium is absent, except in CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report import XSS, synthetic_input  # noqa: E402  (the same synthetic run)

from crmclean.report import write_report  # noqa: E402
from crmclean.stages import ReportInput  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]?\s*(.*)")


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


def _run(browser: str, tmp_path: Path, url: str, *extra: str) -> tuple[str, list[str]]:
    """→ (stdout, console messages) of one headless Chromium invocation."""
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := CONSOLE.search(line))]
    return proc.stdout, console


def test_console_detection_works(chromium, tmp_path):
    """Guard for the test below: a page that logs an error IS caught."""
    page = tmp_path / "bad.html"
    page.write_text('<p id="x">a</p><script>console.error("boom"); missingFunction();</script>', encoding="utf-8")
    dom, console = _run(chromium, tmp_path, page.as_uri(), "--dump-dom")
    assert any("boom" in m for m in console) and any("missingFunction" in m for m in console)
    assert '<p id="x">a</p>' in dom


def test_report_renders_in_chromium_without_console_errors(chromium, tmp_path):
    inp = synthetic_input(tmp_path)
    # real (tiny) Data Docs target so the relative link resolves
    (tmp_path / "data_docs").mkdir()
    (tmp_path / "data_docs" / "index.html").write_text("<!doctype html><title>docs</title>", encoding="utf-8")
    report = write_report(inp, status="success", error=None, show_pii=False)
    dom, console = _run(chromium, tmp_path, report.as_uri(), "--dump-dom")
    assert console == []
    assert 'id="run-status">success<' in dom
    for name, value in inp.counts.items():
        assert re.search(rf'data-count="{name}"><span class="muted">[^<]*</span><b>{value}</b>', dom), name
    assert 'id="quarantine-total">2<' in dom and 'id="review-total">1<' in dom
    assert "<script" not in dom  # the report has no script; a hostile name never becomes one
    # the match model's chart (one row per level of the 2 features) and the thresholds drawn
    assert 'id="model-mode">trained<' in dom and dom.count('<g class="level">') == 5
    assert dom.count('class="marker"') == 2
    shot = tmp_path / "report.png"
    _run(chromium, tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_hostile_name_stays_text_in_the_browser(chromium, tmp_path):
    report = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=True)
    dom, console = _run(chromium, tmp_path, report.as_uri(), "--dump-dom")
    assert console == []  # an executed <script> would have run alert()/logged
    assert "<script>alert(1)</script>" not in dom
    assert XSS.replace("<", "&lt;").replace(">", "&gt;") in dom


def test_failed_run_report_renders(chromium, tmp_path):
    report = write_report(
        ReportInput(run_id="r-failed", out_dir=tmp_path),
        status="failed",
        error="b.xlsx: the workbook is encrypted",
        show_pii=False,
    )
    dom, console = _run(chromium, tmp_path, report.as_uri(), "--dump-dom")
    assert console == []
    assert 'id="run-status">failed<' in dom and "b.xlsx: the workbook is encrypted" in dom


OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9")  # no network at all


def test_data_docs_list_the_validations_offline(chromium, tmp_path):
    """The Data Docs index and a validation page, opened with every host unreachable: the index
    lists the run's validations and the page renders with no console error (nothing remote)."""
    from test_validate import _result_tables

    from crmclean import validate as v
    from crmclean.settings import DEFAULT_EXPECTATIONS_DIR

    tables, std = _result_tables()
    report = v.validate_result(tables, std, v.load_suites(DEFAULT_EXPECTATIONS_DIR))
    index = v.build_data_docs([report], tmp_path / "runs" / "r-offline" / "data_docs")
    dom, console = _run(chromium, tmp_path, index.as_uri(), "--dump-dom", *OFFLINE)
    assert console == []
    listed = re.findall(r'<tr class="validation">.*?<a href="[^"]+">([^<]+)</a>', dom)
    assert sorted(listed) == sorted(report.docs_pages) and len(listed) == 3
    page = index.parent / report.docs_pages["master_customer"]
    dom, console = _run(chromium, tmp_path, page.as_uri(), "--dump-dom", *OFFLINE)
    assert console == [] and "r-offline" in dom and "Succeeded" in dom
    shot = tmp_path / "docs.png"
    _run(chromium, tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1400", *OFFLINE)
    assert shot.is_file() and shot.stat().st_size > 10_000
