"""Run report: renders from whatever the run produced, escapes everything, masks PII by default."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from dataclasses import replace

import pandas as pd
import pytest

from crmclean.ingest import IngestResult

from crmclean.report import COUNT_NAMES, build_report_model, write_report
from crmclean.link import LinkResult
from crmclean.stages import ReportInput, RunCounts, link_summary

XSS = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'


def _validation(stage: str, batch: str, success: bool, severity: str = "critical"):
    from crmclean.validate import ValidationReport

    return ValidationReport(
        stage=stage,
        results=[
            {
                "stage": stage,
                "suite": stage,
                "batch": batch,
                "expectation": "expect_column_values_to_be_unique",
                "column": "master_id",
                "severity": severity,
                "success": success,
                "observed": "0 of 4 unexpected (0.0%)" if success else "2 of 4 unexpected (50.0%)",
                "unexpected_count": 0 if success else 2,
                "details": "",
                "examples": [] if success else ["C0000001"],
                "error": None,
                "message": None,
            }
        ],
        docs_pages={batch: f"validations/{stage}/x/{batch}.html"},
    )


def synthetic_input(out_dir: Path) -> ReportInput:
    """A complete ReportInput as pipeline/run.py builds it: 2 sources, 7 rows read, 5 accepted,
    2 quarantined, 3 masters (one of 3 records), 1 review pair; hostile names included."""
    records = pd.DataFrame(
        {
            "record_key": ["crm_a|1", "crm_a|2", "crm_a|3", "crm_b|A1", "crm_b|A2"],
            "source": ["crm_a", "crm_a", "crm_a", "crm_b", "crm_b"],
            "source_record_id": ["1", "2", "3", "A1", "A2"],
            "full_name": ["张三", "John Smith", XSS, "Zhang San", FORMULA],
        }
    )
    quarantine = pd.DataFrame(
        {
            "source": ["crm_a", "crm_b"],
            "source_record_id": ["@line:7", "A9"],
            "locator": ["a.csv@line:7", "b.xlsx@Sheet1!9"],
            "stage": ["ingest", "standardize"],
            "reason_code": ["blank_row", "no_identifying_fields"],
            "reason": ["the row is empty", "no usable name, email or phone"],
            "raw": ["{}", json.dumps({"姓名": "", "邮箱": "john.secret@gmail.com", "备注": XSS}, ensure_ascii=False)],
        }
    )
    mapping = {
        "crm_a": {
            "files": {"a.csv": {"": {"客户编号": "record_id", "姓名": "full_name", "手机": "mobile", "备注": None}}},
            "id_column": "客户编号",
        },
        "crm_b": {
            "files": {"b.xlsx": {"Sheet1": {"ID": "record_id", "Name": "full_name", "Email": "email"}}},
            "id_column": "ID",
        },
    }
    master = pd.DataFrame(
        {
            "master_id": ["C0000001", "C0000002", "C0000003"],
            "full_name": ["张三", XSS, FORMULA],
            "email": ["john.smith@gmail.com", None, None],
            "phone": ["+8613812348000", None, None],
            "record_count": [3, 1, 1],
            "sources": ["crm_a;crm_b", "crm_a", "crm_b"],
        }
    )
    xref = pd.DataFrame(
        {
            "record_key": ["crm_a|1", "crm_a|2", "crm_b|A1", "crm_a|3", "crm_b|A2"],
            "source": ["crm_a", "crm_a", "crm_b", "crm_a", "crm_b"],
            "source_record_id": ["1", "2", "A1", "3", "A2"],
            "master_id": ["C0000001", "C0000001", "C0000001", "C0000002", "C0000003"],
        }
    )
    customer_record = records.assign(full_name_std=records["full_name"])
    review_queue = pd.DataFrame(
        {
            "record_key_l": ["crm_a|3"],
            "record_key_r": ["crm_b|A2"],
            "match_probability": [0.55],
            "match_weight": [0.4],
            "evidence": ["{}"],
        }
    )
    pairs = pd.DataFrame(
        {
            "record_key_l": ["crm_a|1", "crm_a|1", "crm_a|3", "crm_a|2"],
            "record_key_r": ["crm_b|A1", "crm_a|2", "crm_b|A2", "crm_b|A2"],
            "match_probability": [0.99, 0.97, 0.55, 0.02],
            "match_weight": [6.6, 5.0, 0.3, -5.6],
            "decision": ["match", "match", "review", "non_match"],
            "cap": ["", "", "", ""],
        }
    )
    std_summary = pd.DataFrame(
        {"field": ["email", "mobile"], "unchanged": [1, 0], "changed": [0, 2], "invalid": [1, 0], "empty": [3, 3]}
    )
    counts = RunCounts(
        rows_read=7,
        quarantined=2,
        records_accepted=5,
        masters=3,
        records_in_master=5,
        records_merged=2,
        review_pairs=1,
        records_standardized=5,
        records_reused=0,
    )
    return ReportInput(
        run_id="20261124T100000Z-abc123",
        out_dir=out_dir,
        counts=counts.as_dict(),
        timings={"ingest": 0.5, "standardize": 1.25, "link": 2.0, "cluster": 0.1, "validate": 4.2, "publish": 0.3},
        ingest=IngestResult(records=records, quarantine=quarantine.iloc[:1], mapping=mapping, rows_read=7),
        quarantine=quarantine,
        std_summary=std_summary,
        pairs=pairs,
        blocking_summary=pd.DataFrame({"rule": ["email_key"], "pairs": [4]}),
        tables={
            "master_customer": master,
            "customer_xref": xref,
            "customer_record": customer_record,
            "quarantine": quarantine,
            "review_queue": review_queue,
        },
        validations=(
            _validation("source_ingest", "crm_a", True),
            _validation("result", "master_customer", False, "warning"),
        ),
        data_docs=out_dir / "data_docs" / "index.html",
        model=link_summary(
            LinkResult(
                pairs=pairs,
                model=TINY_MODEL,
                blocking_summary=pd.DataFrame(),
                usage={"mode": "trained", "why": "no saved model", "records": 5},
            ),
            5,
        ),
        wall_seconds=9.5,
    )


#: a model as link's training builds it, two features only
TINY_MODEL = {
    "lambda": 0.01,
    "thresholds": {"match": 0.95, "review": 0.5},
    "comparisons": {
        "email": {"levels": ["exact", "different"], "m": [0.9, 0.1], "u": [0.01, 0.99]},
        "full_name": {"levels": ["exact", "close", "different"], "m": [0.7, 0.2, 0.1], "u": [0.001, 0.01, 0.989]},
    },
    "training": {
        "method": "em",
        "trained": True,
        "why": "trained by EM on this data",
        "records": 5,
        "blocked_pairs": 4,
    },
}


class _TextAndTags(HTMLParser):
    """Collects the text a browser would show and every tag name (to prove nothing was injected)."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(html_text: str) -> _TextAndTags:
    parser = _TextAndTags()
    parser.feed(html_text)
    return parser


def test_full_report_shows_counts_sections_and_no_external_resources(tmp_path):
    path = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=False)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    text = " ".join(_parse(page).text)
    assert "The run succeeded: 7 rows read, 5 records accepted, 2 quarantined, 3 master customers published." in text
    for section in (
        "counts",
        "sources",
        "mapping",
        "standardize",
        "quarantine",
        "matching",
        "clusters",
        "review",
        "expectations",
        "timings",
    ):
        assert f'id="{section}"' in page
    assert "Section “" not in text  # no section failed to render
    # header mapping, review pointer, quarantine reasons, data docs links relative to the report
    assert "客户编号" in text and "(unmapped → extra)" in text
    assert "crmclean review export" in text
    assert "no_identifying_fields" in text and "blank_row" in text
    assert 'href="data_docs/index.html"' in page
    assert 'href="data_docs/validations/result/x/master_customer.html"' in page
    # charts are inline SVG; nothing is loaded from elsewhere
    assert page.count("<svg") >= 5
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    # the sources table: crm_a has 3 records in the master, crm_b 2
    assert re.search(r"<td>crm_a</td><td class=\"n\">3</td>", page)


def test_hostile_names_are_text_not_markup(tmp_path):
    page = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=True).read_text(
        encoding="utf-8"
    )
    parsed = _parse(page)
    assert "script" not in parsed.tags
    text = "".join(parsed.text)
    assert XSS in text  # shown literally as text
    assert FORMULA in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pii_masked_by_default_and_shown_on_request(tmp_path):
    inp = synthetic_input(tmp_path)
    masked = write_report(inp, status="success", error=None, show_pii=False).read_text(encoding="utf-8")
    for secret in ("john.smith@gmail.com", "+8613812348000", "John Smith", "张三", "john.secret@gmail.com"):
        assert secret not in masked, secret
    assert "j***@gmail.com" in masked
    assert "+86 138****8000" in masked
    assert "张*" in masked
    shown = write_report(inp, status="success", error=None, show_pii=True).read_text(encoding="utf-8")
    assert "john.smith@gmail.com" in shown and "+8613812348000" in shown and "张三" in shown


def test_failed_run_with_almost_nothing_still_renders(tmp_path):
    inp = ReportInput(run_id="r1", out_dir=tmp_path, timings={"ingest": 0.2})
    page = write_report(inp, status="failed", error="a.csv: not a CSV file", show_pii=False).read_text(encoding="utf-8")
    text = " ".join(_parse(page).text)
    assert "The run failed during stage 'ingest': a.csv: not a CSV file" in text
    assert "Nothing was published" in text
    assert 'id="run-status">failed<' in page
    assert "No candidate pairs." in text and "Nothing was quarantined." in text


def test_zero_record_run_says_so(tmp_path):
    full = synthetic_input(tmp_path)
    empty = {k: v.iloc[0:0] for k, v in full.tables.items()}
    zero = RunCounts(
        rows_read=0,
        quarantined=0,
        records_accepted=0,
        masters=0,
        records_in_master=0,
        records_merged=0,
        review_pairs=0,
        records_standardized=0,
        records_reused=0,
    )
    inp = replace(
        full,
        tables=empty,
        pairs=full.pairs.iloc[0:0],
        counts=zero.as_dict(),
        quarantine=None,
        ingest=IngestResult(
            records=full.ingest.records.iloc[0:0], quarantine=empty["quarantine"], mapping={}, rows_read=0
        ),
    )
    page = write_report(inp, status="success", error=None, show_pii=False).read_text(encoding="utf-8")
    assert "no records were accepted" in page
    assert 'id="review-total">0<' in page


def test_a_broken_section_does_not_lose_the_report(tmp_path):
    inp = replace(synthetic_input(tmp_path), std_summary="not a frame")  # that section fails, the rest renders
    model = build_report_model(inp, "success", None, False)
    assert "standardize" in model["section_errors"]
    page = write_report(inp, status="success", error=None, show_pii=False).read_text(encoding="utf-8")
    assert "could not be rendered" in page and 'id="clusters"' in page and "C0000001" in page


def test_expectation_failures_are_listed_with_severity(tmp_path):
    page = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=False).read_text(
        encoding="utf-8"
    )
    assert page.count('data-success="false"') == 1
    assert page.count('data-success="true"') == 1
    assert "2 of 4 unexpected (50.0%)" in page


@pytest.mark.parametrize(
    "fn,value,expected",
    [
        ("mask_email", "john.smith@gmail.com", "j***@gmail.com"),
        ("mask_phone", "+8613812348000", "+86 138****8000"),
        ("mask_phone", "+14155552671", "+1 415****2671"),
        ("mask_name", "张三", "张*"),
        ("mask_name", "John Smith", "J*** S****"),
        ("mask_date", "1990-05-17", "1990-**-**"),
    ],
)
def test_masking_functions(fn, value, expected):
    from crmclean import masking

    assert getattr(masking, fn)(value) == expected
    assert getattr(masking, fn)(None) is None


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_any_customer_name_renders_as_text(tmp_path_factory, name):
    out = tmp_path_factory.mktemp("r")
    inp = synthetic_input(out)
    inp.tables["master_customer"].loc[0, "full_name"] = name
    page = write_report(inp, status="success", error=None, show_pii=True).read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "script" not in parsed.tags
    assert name.strip() in "".join(parsed.text).replace("\r\n", "\n").replace("\r", "\n") or not name.strip()


def test_stage_flow_counts_quarantine_per_stage(tmp_path):
    model = build_report_model(synthetic_input(tmp_path), "success", None, False)
    flow = {f["what"]: f["n"] for f in model["s"]["counts"]["flow"]}
    assert flow == {
        "rows read": 7,
        "quarantined at ingest": 1,
        "quarantined at standardize": 1,
        "records accepted": 5,
        "candidate pairs scored": 4,
        "master customers": 3,
        "pairs for review": 1,
    }


def test_run_that_failed_midway_shows_what_it_got(tmp_path):
    full = synthetic_input(tmp_path)
    # ingest + standardize finished, link failed: no counts, pairs or tables yet
    inp = ReportInput(
        run_id=full.run_id,
        out_dir=full.out_dir,
        ingest=full.ingest,
        std_summary=full.std_summary,
        validations=full.validations,
        quarantine=full.tables["quarantine"],
        timings={"ingest": 0.1, "standardize": 0.2, "link": 0.05},
    )
    html_text = write_report(inp, status="failed", error="link: blocking produced no pairs", show_pii=False).read_text(
        encoding="utf-8"
    )
    text = " ".join(_parse(html_text).text)
    assert "The run failed during stage 'link': link: blocking produced no pairs." in text
    assert "客户编号" in text  # mapping still shown
    assert "no_identifying_fields" in text and 'id="quarantine-total">2<' in html_text
    assert "No clusters were built." in text and "No pairs need review." in text


def test_the_report_shows_only_counts_a_run_produces(tmp_path):
    """Every count card is a RunCounts field; a name the run never produces is not shown."""
    inp = replace(synthetic_input(tmp_path), counts={**synthetic_input(tmp_path).counts, "records_total": 99})
    shown = build_report_model(inp, "success", None, False)["s"]["counts"]["counts"]
    assert list(shown) == [n for n in COUNT_NAMES if n in inp.counts]
    assert "records_total" not in shown


def test_failed_before_counts_shows_what_ingest_read(tmp_path):
    full = synthetic_input(tmp_path)
    inp = ReportInput(run_id="r2", out_dir=tmp_path, ingest=full.ingest, timings={"ingest": 0.1})
    model = build_report_model(inp, "failed", "standardize: boom", False)
    assert "counts" not in model["section_errors"]
    assert model["s"]["counts"]["counts"] == {"rows_read": 7, "records_accepted": 5, "quarantined": 1}


# ------------------------------------------------------------------ a real run of sample_data

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """One real run of sample_data/ (masked report) and a second one reusing its model."""
    from crmclean.run import RunOptions, run_pipeline
    from crmclean.settings import SAMPLE_DATA_DIR

    tmp = tmp_path_factory.mktemp("sample_run")
    options = RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=f"sqlite:///{tmp / 'master.db'}", out_dir=tmp / "out")
    first = run_pipeline(options)
    second = run_pipeline(options)
    return first, second


def _sample_emails() -> set[str]:
    """Every e-mail address in sample_data/, whatever column it is in."""
    from crmclean.settings import SAMPLE_DATA_DIR

    found: set[str] = set()
    for path in SAMPLE_DATA_DIR.iterdir():
        if path.suffix == ".csv":
            found |= set(EMAIL.findall(path.read_text(encoding="utf-8", errors="replace")))
        elif path.suffix == ".xlsx":
            for frame in pd.read_excel(path, sheet_name=None, dtype=str).values():
                found |= set(EMAIL.findall(frame.to_csv(index=False)))
    return found


def test_sample_run_model_section_says_trained_then_reused(sample_run):
    first, second = sample_run
    page = first.report_path.read_text(encoding="utf-8")
    text = " ".join(_parse(page).text)
    assert 'id="model-mode">trained<' in page
    records = first.model["records"]
    assert records == first.counts["records_accepted"] and records > 0
    assert f'id="model-records">{records:,}<' in page
    assert f"match model: trained on {records:,} records / {first.model['candidate_pairs']:,} candidate pairs" in text
    assert "no saved model" in text
    # the m/u chart: one row per comparison level of every feature, each with its weight
    levels = sum(len(v) for v in first.model["features"].values())
    assert page.count('<g class="level">') == levels and levels > 9
    second_page = second.report_path.read_text(encoding="utf-8")
    assert 'id="model-mode">reused<' in second_page
    assert "data grew 1.00×" in " ".join(_parse(second_page).text)


def test_sample_run_histogram_has_both_thresholds(sample_run):
    first, _ = sample_run
    page = first.report_path.read_text(encoding="utf-8")
    assert "Match weight histogram (log scale)" in page
    thresholds = first.model["thresholds"]
    for name in ("review", "match"):
        assert f'class="val marker-label">{name} ≥ {thresholds[name]:g}</text>' in page
    assert page.count('class="marker"') == 2


def test_sample_run_every_review_pair_says_why(sample_run):
    for result in sample_run:  # the second run's queue is read back from the master
        page = result.report_path.read_text(encoding="utf-8")
        reasons = re.findall(r'<td class="review-why">([^<]*)</td>', page)
        assert len(reasons) == min(result.counts["review_pairs"], 20) > 0
        for why in reasons:
            assert re.fullmatch(
                r"uncertain: probability 0\.\d{3,} between review 0\.6 and match 0\.99"
                r"|(hard constraint: \w+|held by a hard constraint) \(probability [01]\.\d{3,} ≥ match 0\.99\)",
                why.replace("&gt;", ">"),
            ), why
        assert "pairs the model was unsure about" not in page.lower()
        assert 'id="review-split"' in page
        assert "1.0000" not in page and not re.search(r">1\.0<", page)  # p≈1 never shown as a sure 1.0


def test_sample_run_review_queue_stores_why(sample_run):
    """Every published review_queue row carries its reason, read back by the report's second run."""
    from sqlalchemy import create_engine, text

    first, _ = sample_run
    db = Path(first.out_dir).parents[2] / "master.db"
    with create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(text("SELECT match_probability, review_reason FROM review_queue")).all()
    assert rows and all(reason for _, reason in rows)
    for p, reason in rows:
        assert reason.startswith("uncertain") == (p < 0.99), (p, reason)


def test_sample_run_masked_report_shows_no_email_address(sample_run):
    first, _ = sample_run
    page = first.report_path.read_text(encoding="utf-8")
    emails = _sample_emails()
    assert len(emails) > 50  # the sample data has them
    leaked = sorted(e for e in emails if e in page)
    assert not leaked, leaked[:5]


def test_sample_run_timings_show_the_overhead_outside_stages(sample_run):
    first, _ = sample_run
    page = first.report_path.read_text(encoding="utf-8")
    assert 'id="timing-overhead"' in page and "between stages" in page


# ------------------------------------------------------------------ the parts, one by one


def test_review_reason_names_the_hard_constraint(tmp_path):
    inp = synthetic_input(tmp_path)
    pairs = inp.pairs.assign(cap=["", "", "generation_conflict", ""])
    queue = inp.tables["review_queue"].assign(match_probability=[0.9999])
    inp = replace(inp, pairs=pairs, tables={**inp.tables, "review_queue": queue})
    rows = build_report_model(inp, "success", None, False)["s"]["review"]["rows"]
    assert rows[0]["why"] == "hard constraint: generation_conflict (probability 0.9999 ≥ match 0.95)"
    uncertain = build_report_model(synthetic_input(tmp_path), "success", None, False)["s"]["review"]["rows"]
    assert uncertain[0]["why"] == "uncertain: probability 0.550 between review 0.5 and match 0.95"
    stored = inp.tables["review_queue"].assign(review_reason=["cannot-link: jr_sr"])
    section = build_report_model(replace(inp, tables={**inp.tables, "review_queue": stored}), "success", None, False)
    assert section["s"]["review"]["rows"][0]["why"] == "cannot-link: jr_sr"  # the stored reason wins
    assert (section["s"]["review"]["held"], section["s"]["review"]["uncertain"]) == (0, 1)


def test_review_section_shows_records_as_source_colon_id(tmp_path):
    """The form `crmclean explain` takes, not the stored `source|id` key."""
    section = build_report_model(synthetic_input(tmp_path), "success", None, False)["s"]["review"]
    assert section["columns"][:2] == ["record_l", "record_r"]
    assert (section["rows"][0]["record_l"], section["rows"][0]["record_r"]) == ("crm_a:3", "crm_b:A2")
    page = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=False).read_text("utf-8")
    assert "<td>crm_a:3</td><td>crm_b:A2</td>" in page and "crm_a|3" not in page


@pytest.mark.parametrize(
    "summary, line",
    [
        (
            {"mode": "trained", "trained": True, "why": "no saved model", "records": 36678, "candidate_pairs": 412300},
            "match model: trained on 36,678 records / 412,300 candidate pairs (no saved model)",
        ),
        (
            {
                "mode": "reused",
                "trained": True,
                "why": "the saved model fits this data",
                "records": 1000,
                "candidate_pairs": 5000,
                "working_records": 1010,
            },
            "match model: reused (the saved model fits this data; data grew 1.01×), trained on 1,000 records / 5,000 "
            "candidate pairs",
        ),
        (
            {
                "mode": "trained",
                "trained": False,
                "why": "no saved model",
                "training_why": "only 2 records (training needs 50): neutral priors used",
                "records": 2,
                "candidate_pairs": 1,
            },
            "match model: neutral priors: only 2 records (training needs 50)",
        ),
        (None, ""),
    ],
)
def test_model_line(summary, line):
    from crmclean.report import model_line

    assert model_line(summary) == line


def test_mu_chart_is_drawn_from_the_spec():
    from crmclean.report import mu_chart_spec, mu_chart_svg

    spec = mu_chart_spec(
        {
            "email": [
                {"level": "exact", "m": 0.9, "u": 0.01, "weight": 6.49},
                {"level": "<b>different</b>", "m": 0.1, "u": 0.99, "weight": -3.31},
            ]
        }
    )
    assert [r["level"] for r in spec] == ["exact", "<b>different</b>"]
    svg = str(mu_chart_svg(spec))
    assert svg.count('<g class="level">') == 2
    assert svg.count('class="pos"') == 1 and svg.count('class="neg"') == 1  # the signed weight bars
    assert "+6.49" in svg and "-3.31" in svg and "&lt;b&gt;different" in svg and "<b>" not in svg
    assert str(mu_chart_svg([])) == ""


def test_log_histogram_keeps_small_bins_visible():
    from crmclean.report import histogram_svg

    svg = str(histogram_svg([20943, 3, 0, 1], [0, 1, 2, 3, 4], "h", log=True, height=220))
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 3
    assert min(heights) > 0.05 * max(heights)  # linear would draw 1 / 20943 of the tallest


def test_masked_raw_rows_keep_their_shape_only():
    from crmclean.report import _mask_raw, _mask_skipped

    assert _mask_raw(",,,,") == ",,,,"  # a blank row stays blank, not ",***"
    assert _mask_raw("KH1,张三,n/a") == "K***,张***,n***"
    assert _mask_skipped("john smith (120); 13812348000 (75)") == "j*** (120); 1*** (75)"


def test_model_section_names_features_learnt_by_a_fallback_session(tmp_path):
    """RLdata-shaped data: the birth date's m came from the surname session; the report says so."""
    model = {**TINY_MODEL, "training": {**TINY_MODEL["training"], "fallback_m": {"birth_date": ["train_surname"]}}}
    inp = synthetic_input(tmp_path)
    summary = link_summary(
        LinkResult(pairs=pd.DataFrame(), model=model, blocking_summary=pd.DataFrame(), usage={"mode": "trained"}), 5
    )
    page = write_report(replace(inp, model=summary), status="success", error=None, show_pii=False).read_text("utf-8")
    assert 'id="model-fallback"' in page and "birth_date (train_surname)" in page
    plain = write_report(synthetic_input(tmp_path), status="success", error=None, show_pii=False).read_text("utf-8")
    assert 'id="model-fallback"' not in plain
