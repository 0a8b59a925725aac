"""Great Expectations Data Docs made readable offline.

GE's pages load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs, and its
index builds the list of validations in JavaScript: on a machine without network (or opened
from a file share) the pages are unstyled and the index is empty. After GE builds the site,
every page is rewritten to load nothing from the network (remote stylesheets, scripts and images
removed, a small local stylesheet inlined), and the index is replaced by a static page that
lists the run's validations and suites with links that resolve to the files on disk.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path

ERROR_FILE = "BUILD_FAILED.txt"  # beside index.html when the docs could not be built

_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>", re.I)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_REMOTE_SRC = re.compile(r"\bsrc=([\"'])(?:https?:)?//[^\"']*?/([\w.-]+\.(?:png|svg|gif|ico))[^\"']*\1", re.I)
_REMOTE_CSS_URL = re.compile(r"url\(\s*[\"']?(?:https?:)?//[^)]*\)", re.I)
_FOOTER = re.compile(r"<footer\b.*?</footer\s*>", re.I | re.S)  # GE's newsletter link
_HEAD_END = re.compile(r"</head\s*>", re.I)

# The few Bootstrap 4 rules GE's page layout relies on, plus glyphs for the Font Awesome icons.
OFFLINE_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif; margin: 0; color: #1f2328; }
a { color: #0969da; } .navbar { padding: 6px 20px; border-bottom: 1px solid #d0d7de; }
.container-fluid { padding: 8px 20px; box-sizing: border-box; } .row { display: flex; flex-wrap: wrap; }
.col-12, .col-xs-12, .col-sm-12 { flex: 0 0 100%; max-width: 100%; box-sizing: border-box; }
.col-6 { flex: 0 0 50%; max-width: 50%; }
@media (min-width: 768px) {
  .col-md-2 { flex: 0 0 16.66%; max-width: 16.66%; } .col-md-10 { flex: 0 0 83.33%; max-width: 83.33%; }
}
.table { border-collapse: collapse; width: 100%; margin: 6px 0; }
.table td, .table th { border-top: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
.table-responsive { overflow-x: auto; } .card { border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; }
.card-header { background: #f6f8fa; padding: 6px 12px; border-bottom: 1px solid #d0d7de; } .card-body { padding: 8px 12px; }
.alert { padding: 8px 12px; border-radius: 6px; margin: 8px 0; } .alert-secondary { background: #f6f8fa; border: 1px solid #d0d7de; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 8px; font-size: 12px; }
.badge-secondary { background: #eaeef2; } .text-success { color: #1a7f37; } .text-danger { color: #cf222e; }
.d-none, .invisible, .btn, .nav-tabs, .card:has(.btn-group-toggle) { display: none; } /* script-only controls */ .collapse, .tab-pane { display: block; }
.breadcrumb { list-style: none; padding: 0; display: flex; gap: 6px; } .nav { list-style: none; padding: 0; }
.fas.fa-check-circle::before { content: "\\2714"; } .fas.fa-times::before, .fas.fa-times-circle::before { content: "\\2716"; }
.fas.fa-exclamation-triangle::before { content: "\\26A0"; }
table.docs-index { border-collapse: collapse; width: 100%; } table.docs-index th, table.docs-index td {
  border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
"""


@dataclass(frozen=True)
class ValidationPage:
    """One validation result page of the site, as the index lists it."""

    stage: str
    suite: str
    batch: str
    page: str  # path relative to the site's index.html
    success: bool
    evaluated: int
    successful: int


def make_offline(directory: Path) -> int:
    """Rewrite every GE page under `directory` to need no network; → pages rewritten."""
    local_images = {p.name for p in (directory / "static" / "images").glob("*")}
    done = 0
    for page in directory.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        depth = len(page.relative_to(directory).parts) - 1
        images = "../" * depth + "static/images/"
        text = _REMOTE_LINK.sub("", text)
        text = _SCRIPT.sub("", text)
        text = _REMOTE_SRC.sub(functools.partial(_local_image, prefix=images, local=local_images), text)
        text = _REMOTE_CSS_URL.sub("none", text)
        text = _FOOTER.sub("", text)
        text = _HEAD_END.sub(lambda _m: f"<style>{OFFLINE_CSS}</style></head>", text, count=1)
        page.write_text(text, encoding="utf-8")
        done += 1
    return done


def _local_image(match: re.Match, prefix: str, local: set[str]) -> str:
    """A remote GE logo → the copy GE ships in static/images (else no image at all)."""
    name = match.group(2)
    return f'src="{prefix}{name}"' if name in local else 'src=""'


def write_index(directory: Path, run_name: str, pages: list[ValidationPage], suites: list[str]) -> Path:
    """A static index.html: the run's validations (status, stage, suite, batch, counts, link) and
    the expectation suites, with no script, so it lists them without network or JavaScript."""
    esc = html.escape
    rows = []
    for p in sorted(pages, key=lambda p: (p.success, p.stage, p.batch)):
        status = '<span class="ok">passed</span>' if p.success else '<span class="bad">failed</span>'
        rows.append(
            f'<tr class="validation"><td>{status}</td><td>{esc(p.stage)}</td><td>{esc(p.suite)}</td>'
            f'<td><a href="{esc(p.page)}">{esc(p.batch)}</a></td><td>{p.successful} of {p.evaluated}</td></tr>'
        )
    suite_items = "".join(
        f'<li><a href="expectations/{esc(s)}.html">{esc(s)}</a></li>'
        for s in sorted(suites)
        if (directory / "expectations" / f"{s}.html").is_file()
    )
    body = (
        f"<h1>Data Docs — run <span id='run-name'>{esc(run_name)}</span></h1>"
        "<p>Great Expectations validation results of this run (built by crmclean; readable offline).</p>"
        "<h2>Validation results</h2>"
        "<table class='docs-index'><thead><tr><th>status</th><th>stage</th><th>suite</th><th>batch</th>"
        f"<th>expectations met</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h2>Expectation suites</h2><ul>{suite_items}</ul>"
    )
    index = directory / "index.html"
    index.write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Data Docs — {esc(run_name)}</title><style>{OFFLINE_CSS}</style></head>"
        f"<body><div class='container-fluid'>{body}</div></body></html>",
        encoding="utf-8",
    )
    return index


def write_failure(directory: Path, message: str) -> Path:
    """The index says the docs could not be built, and ERROR_FILE keeps the reason for the CLI
    and the report (a failure is shown, never silent)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ERROR_FILE).write_text(message + "\n", encoding="utf-8")
    index = directory / "index.html"
    index.write_text(
        "<!doctype html><meta charset='utf-8'><title>Data Docs</title>"
        f"<p>Data Docs could not be built: {html.escape(message)}</p>",
        encoding="utf-8",
    )
    return index


def build_error(directory: Path | None) -> str | None:
    """Why the Data Docs in `directory` (the folder or its index.html) could not be built; None
    when they were built."""
    if directory is None:
        return None
    directory = Path(directory)
    if directory.suffix == ".html":
        directory = directory.parent
    marker = directory / ERROR_FILE
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
