"""Great Expectations Data Docs of a run: built with a relative or absolute --out, named after the
run, linked from the report with links that resolve, readable without network, and a failure
to build them shown (terminal line via docs_site.build_error, report warning), never silent."""

from __future__ import annotations

import re
import sys
import urllib.parse
from pathlib import Path

import pytest

from crmclean import docs_site
from crmclean import validate as v
from crmclean.settings import DEFAULT_EXPECTATIONS_DIR

sys.path.insert(0, str(Path(__file__).parent))
from test_validate import _records, _mapping, _result_tables, _std  # noqa: E402

# what a browser would fetch: stylesheets, scripts, images, frames, CSS url()s
REMOTE_LOAD = re.compile(
    r"<(?:link|script|img|iframe)\b[^>]*\b(?:href|src)=[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//", re.I
)


@pytest.fixture(scope="module")
def reports():
    suites = v.load_suites(DEFAULT_EXPECTATIONS_DIR)
    tables, std = _result_tables()
    bad_std = _std(email_std=["zhang.san@example.cn", "secret-mailbox", None, None])
    return [
        v.validate_sources(_records("crm_a", ["1", "2"]), {"crm_a": _mapping("crm_a", True)}, suites),
        v.validate_standardized(bad_std, suites),
        v.validate_result(tables, std, suites),
    ]


def _pages(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.html"))


@pytest.mark.parametrize("relative", [True, False], ids=["relative-out", "absolute-out"])
def test_docs_are_built_named_after_the_run_and_load_nothing_remote(reports, tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    run_dir = Path("crmclean-out/runs/20260101T000000Z-abc123")
    target = (run_dir if relative else tmp_path / run_dir) / "data_docs"
    index = v.build_data_docs(reports, target)
    docs = tmp_path / run_dir / "data_docs"
    assert index == docs / "index.html" and docs_site.build_error(docs) is None
    text = index.read_text(encoding="utf-8")
    assert "could not be built" not in text and "20260101T000000Z-abc123" in text
    # the index lists every validation of the run with a link to a page that exists, no script needed
    batches = {b for rep in reports for b in rep.docs_pages}
    assert batches == {"crm_a", "standardized", "master_customer", "customer_xref", "accepted_records"}
    links = re.findall(r'<tr class="validation">.*?<a href="([^"]+)">([^<]+)</a>', text)
    assert {name for _, name in links} == batches
    for href, _ in links:
        assert (docs / urllib.parse.unquote(href)).is_file(), href
    assert text.count('class="bad">failed<') == 1  # the bad e-mail of the standardized batch
    pages = _pages(docs)
    assert len(pages) >= 1 + len(batches) + 3  # index, validations, the three suites
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not REMOTE_LOAD.search(html), (page, REMOTE_LOAD.search(html))
        assert "<script" not in html.lower() and "__none__" not in html, page
        for src in re.findall(r'\bsrc="([^"]+)"', html):  # the local logo GE ships
            assert not src or (page.parent / src).is_file(), (page, src)
    one = (docs / reports[2].docs_pages["master_customer"]).read_text(encoding="utf-8")
    assert "20260101T000000Z-abc123" in one  # GE's "Run Name"


def test_explicit_run_name_wins(reports, tmp_path):
    v.build_data_docs(reports[:1], tmp_path / "docs", run_name="nightly-42")
    assert "nightly-42" in (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
    assert all("/nightly-42/" in page for page in reports[0].docs_pages.values())


def test_a_docs_failure_is_recorded_and_shown_in_the_report(reports, tmp_path, monkeypatch):
    from test_report import synthetic_input

    from crmclean.report import write_report

    def broken(*_args, **_kwargs):  # injected fault: GE cannot write the site
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(v, "_build_docs", broken)
    index = v.build_data_docs(reports, tmp_path / "data_docs")
    problem = docs_site.build_error(index)
    assert problem == "OSError: [Errno 28] No space left on device"
    assert "could not be built" in index.read_text(encoding="utf-8")
    inp = synthetic_input(tmp_path)
    page = write_report(inp, status="success", error=None, show_pii=False).read_text(encoding="utf-8")
    assert 'id="docs-error"' in page and "No space left on device" in page
    assert "data_docs/validations/" not in page  # no links into pages that were never written
    monkeypatch.undo()
    v.build_data_docs(reports, tmp_path / "data_docs")  # a later good build clears the failure
    assert docs_site.build_error(tmp_path / "data_docs") is None


def test_the_cli_run_with_default_options_links_to_existing_pages(tmp_path, monkeypatch):
    """`crmclean run` with the default (relative) --db and --out: every link from the report
    resolves to a file, Data Docs included; a second run whose docs fail says so in the terminal."""
    from typer.testing import CliRunner

    from crmclean.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMCLEAN_DB_URL", raising=False)
    result = CliRunner().invoke(app, ["run", "--no-prefect"])
    assert result.exit_code == 0, result.output
    assert "Data Docs could not be built" not in result.output
    report = next(Path("crmclean-out/runs").glob("*/report.html"))
    page = report.read_text(encoding="utf-8")
    links = re.findall(r'href="([^"#][^"]*)"', page)
    assert any(h.endswith("data_docs/index.html") for h in links)
    assert sum("data_docs/validations/" in h for h in links) > 10
    dead = [h for h in links if not (report.parent / urllib.parse.unquote(h)).is_file()]
    assert not dead, dead[:5]
    index = (report.parent / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert report.parent.name in index and index.count('<tr class="validation">') >= 5

    def broken(*_args, **_kwargs):  # injected fault
        raise RuntimeError("GE could not render a page")

    monkeypatch.setattr(v, "_build_docs", broken)
    failed_docs = CliRunner().invoke(app, ["run", "--no-prefect"])
    assert failed_docs.exit_code == 0, failed_docs.output
    assert "warning: Data Docs could not be built: RuntimeError: GE could not render a page" in failed_docs.output
