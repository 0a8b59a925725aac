"""Great Expectations suites: loaded from expectations/*.json, run per stage, severity decides."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crmclean import validate as v
from crmclean.errors import RulesError
from crmclean.settings import DEFAULT_EXPECTATIONS_DIR
from factories import expectations_with


@pytest.fixture(scope="module")
def suites():
    return v.load_suites(DEFAULT_EXPECTATIONS_DIR)


def _records(source: str, ids: list[str], names=True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_key": [f"{source}|{i}" for i in ids],
            "source": source,
            "source_record_id": ids,
            "locator": [f"{source}.csv@line:{n + 2}" for n in range(len(ids))],
            "file": f"{source}.csv",
            "full_name": ["张三" if names else None] * len(ids),
            "email": ["a@b.cn"] * len(ids),
        }
    )


def _mapping(source: str, name_column: bool) -> dict:
    headers = {"客户编号": "record_id", "邮箱": "email"}
    if name_column:
        headers["姓名"] = "full_name"
    return {"files": {f"{source}.csv": {"": headers}}, "id_column": "客户编号"}


def _std(n: int = 4, **overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "record_key": [f"a|{i}" for i in range(n)],
            "email_std": ["zhang.san@example.cn"] * n,
            "phone_std": ["+8613812348000"] * n,
            "mobile_std": ["+8613812348000"] * n,
            "landline_std": [None] * n,
            "birth_date_std": ["1985-03-04"] * n,
            "country_std": ["CN"] * n,
            **{f"{f}_flag": [""] * n for f in ("email", "mobile", "landline", "birth_date", "country")},
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def _result_tables(n: int = 3):
    master = pd.DataFrame(
        {
            "master_id": [f"C{i:07d}" for i in range(1, n + 1)],
            "email": ["x@y.com"] * n,
            "phone": ["+14155552671"] * n,
            "mobile": [None] * n,
            "birth_date": ["1990-01-01"] * n,
            "country": ["US"] * n,
            "record_count": [1] * n,
        }
    )
    xref = pd.DataFrame(
        {
            "record_key": [f"a|{i}" for i in range(n)],
            "source": "a",
            "source_record_id": [str(i) for i in range(n)],
            "master_id": list(master["master_id"]),
        }
    )
    std = pd.DataFrame({"record_key": list(xref["record_key"])})
    return {"master_customer": master, "customer_xref": xref}, std


# ------------------------------------------------------------------ loading


def test_shipped_suites_load_with_severities(suites):
    assert {"source_ingest", "standardized", "result"} <= set(suites)
    result = suites["result"]
    assert len(result.expectations) >= 10
    assert set(result.severities) == {"critical", "warning"}
    assert {"master_customer", "customer_xref", "accepted_records"} <= set(result.tables)
    assert "birth_date_std" in suites["standardized"].date_columns


def _write_suite(tmp_path: Path, expectations, name="custom") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": expectations}), encoding="utf-8")
    return path


def test_bad_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"name": "result",\n "expectations": [\n  {"type": "x",}\n ]}', encoding="utf-8")
    with pytest.raises(RulesError) as err:
        v.load_suites(tmp_path)
    assert str(path) in str(err.value) and "line 3" in str(err.value) and "column" in str(err.value)


def test_unknown_expectation_type_is_named(tmp_path):
    _write_suite(tmp_path, [{"type": "expect_column_to_be_lovely", "kwargs": {"column": "a"}}])
    with pytest.raises(RulesError, match=r"expectation #1: unknown expectation type 'expect_column_to_be_lovely'"):
        v.load_suites(tmp_path)


def test_bad_kwargs_and_bad_severity_are_rules_errors(tmp_path):
    _write_suite(tmp_path, [{"type": "expect_column_values_to_be_unique", "kwargs": {"colum": "a"}}])
    with pytest.raises(RulesError, match="invalid kwargs"):
        v.load_suites(tmp_path)
    _write_suite(
        tmp_path,
        [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}, "meta": {"severity": "fatal"}}],
    )
    with pytest.raises(RulesError, match="meta.severity"):
        v.load_suites(tmp_path)


def test_missing_severity_defaults_to_warning(tmp_path):
    _write_suite(tmp_path, [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}}])
    assert v.load_suites(tmp_path)["custom"].severities == ["warning"]


# ------------------------------------------------------------------ per stage


def test_sources_pass_and_fail_per_source(suites):
    records = pd.concat(
        [_records("crm_a", ["1", "2", "3"]), _records("crm_b", ["9", "9"], names=False)], ignore_index=True
    )
    mapping = {"crm_a": _mapping("crm_a", True), "crm_b": _mapping("crm_b", False), "crm_c": _mapping("crm_c", True)}
    report = v.validate_sources(records, mapping, suites)
    by_batch = {}
    for r in report.results:
        by_batch.setdefault(r["batch"], []).append(r)
    assert set(by_batch) == {"crm_a", "crm_b", "crm_c"}
    assert all(r["success"] for r in by_batch["crm_a"])
    failures = v.critical_failures([report])
    assert "source_ingest: source crm_b: no column was mapped to full_name or last_name" in failures
    assert any(
        f.startswith("source_ingest: crm_b.source_record_id must be unique — 2 duplicated values") for f in failures
    )
    # a source whose every row was quarantined: a warning, not a stop
    empty = [r for r in by_batch["crm_c"] if not r["success"]]
    assert [(r["expectation"], r["severity"]) for r in empty] == [("expect_table_row_count_to_be_between", "warning")]


def test_standardized_good_frame_passes(suites):
    report = v.validate_standardized(_std(), suites)
    assert report.results and report.success, [r for r in report.results if not r["success"]]


def test_validating_a_batch_does_not_hash_every_value(suites, monkeypatch):
    """GE's batch fingerprint (an md5 over every value) is off: ≈ 18 % of a validation at 200k."""
    from great_expectations.execution_engine import pandas_execution_engine

    def no_fingerprint(frame):
        raise AssertionError(f"GE fingerprinted a batch of {len(frame)} rows")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", no_fingerprint)
    report = v.validate_standardized(_std(), suites)
    assert report.results and report.success, [r for r in report.results if not r["success"]]


def test_validated_batches_are_not_kept_alive(suites):
    """GE's execution engine kept every batch frame it validated and every metric it computed
    on it (row masks over the whole batch) until the process ended: ≈ 65 MB at 200k carried
    through link, cluster and publish. After a validation no engine holds a batch or a metric."""
    import gc

    from great_expectations.execution_engine import ExecutionEngine

    for _ in range(2):
        report = v.validate_standardized(_std(), suites)
        assert report.results and report.success
    gc.collect()
    engines = [o for o in gc.get_objects() if isinstance(o, ExecutionEngine)]
    assert [len(e.batch_manager.batch_data_cache) for e in engines if e.batch_manager.batch_data_cache] == []
    assert [len(e._metric_cache) for e in engines if len(e._metric_cache)] == []
    assert report.raw and report._gx_results  # the results themselves (Data Docs) are kept


def test_standardized_bad_values_split_by_severity(suites):
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    std = _std(
        email_std=["ok@example.com", "not-an-email", None, None],
        phone_std=["+8613812348000", "13812348000", None, None],
        birth_date_std=["1899-12-31", tomorrow, "1990-02-30", "2000-01-01"],
        country_std=["CN", "UK", None, "US"],
        email_flag=["", "invalid", "invalid", "invalid;changed"],
    )
    report = v.validate_standardized(std, suites)
    critical = v.critical_failures([report])
    assert any("standardized.email_std must match" in s and "— 1 values do not" in s for s in critical)
    assert any("standardized.phone_std must match" in s for s in critical)
    warnings = {(r["column"]): r for r in report.failures("warning")}
    assert warnings["birth_date_std"]["unexpected_count"] == 3  # too old, future, 30 February
    assert warnings["country_std"]["examples"] == ["UK"]
    assert warnings["email_flag"]["unexpected_count"] == 3  # 75 % invalid > the 20 % allowed


def test_result_good_tables_pass(suites):
    tables, std = _result_tables()
    report = v.validate_result(tables, std, suites)
    assert report.results and v.critical_failures([report]) == []


def test_result_integrity_failures_are_sentences(suites):
    tables, std = _result_tables()
    master = tables["master_customer"].copy()
    master.loc[1, "master_id"] = "C0000001"  # duplicate id; C0000002 now has no master row
    master.loc[2, "master_id"] = "M-3"  # bad format, and C0000003's xref rows dangle
    tables["master_customer"] = master
    std = pd.concat([std, pd.DataFrame({"record_key": ["a|99"]})], ignore_index=True)  # accepted, not in xref
    failures = v.critical_failures([v.validate_result(tables, std, suites)])
    assert "result: master_customer.master_id must be unique — 2 duplicated values" in failures
    assert "result: master_customer.master_id must match ^C\\d{7}$ — 1 values do not" in failures
    assert "result: every master must have at least one customer_xref row — 1 masters have none" in failures
    assert "result: every customer_xref row must point to an existing master — 2 do not" in failures
    assert "result: every accepted record must be in customer_xref — 1 are missing" in failures


def test_missing_table_is_a_failure(suites):
    tables, std = _result_tables()
    del tables["customer_xref"]
    failures = v.critical_failures([v.validate_result(tables, std, suites)])
    assert any("customer_xref" in f and "was not produced" in f for f in failures)


def test_user_added_expectation_runs_without_code_change(tmp_path):
    folder = expectations_with(
        tmp_path / "expectations", "expect_column_values_to_be_in_set", {"column": "country", "value_set": ["CN"]}
    )
    tables, std = _result_tables()
    failures = v.critical_failures([v.validate_result(tables, std, v.load_suites(folder))])
    assert failures == ["result: master_customer.country must be one of the allowed values — 3 are not"]


# ------------------------------------------------------------------ data docs


def test_data_docs_show_this_runs_results_only(suites, tmp_path):
    tables, std = _result_tables()
    first = v.validate_result(tables, std, suites)
    index = v.build_data_docs([first], tmp_path / "run1")
    assert index == tmp_path / "run1" / "index.html" and index.is_file()
    page = tmp_path / "run1" / first.docs_pages["master_customer"]
    assert page.is_file()
    assert "master_id" in page.read_text(encoding="utf-8")
    src = v.validate_sources(_records("crm_a", ["1"]), {"crm_a": _mapping("crm_a", True)}, suites)
    v.build_data_docs([src], tmp_path / "run2")
    run2_pages = [
        p.relative_to(tmp_path / "run2").as_posix() for p in (tmp_path / "run2" / "validations").rglob("*.html")
    ]
    assert run2_pages and all(p.startswith("validations/source_ingest/") for p in run2_pages), run2_pages
    assert "crm_a" in (tmp_path / "run2" / "index.html").read_text(encoding="utf-8")


def test_severity_is_case_insensitive_and_drives_the_stop(tmp_path):
    (tmp_path / "result.json").write_text(
        json.dumps(
            {
                "name": "result",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_unique",
                        "kwargs": {"column": "master_id"},
                        "meta": {"severity": "Critical"},
                    },
                    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "master_id", "regex": "^X"}},
                ],
            }
        ),
        encoding="utf-8",
    )
    tables, std = _result_tables()
    report = v.validate_result(tables, std, v.load_suites(tmp_path))
    assert [(r["expectation"], r["severity"], r["success"]) for r in report.results] == [
        ("expect_column_values_to_be_unique", "critical", True),
        ("expect_column_values_to_match_regex", "warning", False),
    ]
    assert v.critical_failures([report]) == []  # a failed warning never stops the publish


def test_missing_column_is_reported_not_raised(suites):
    report = v.validate_standardized(pd.DataFrame({"record_key": ["a|1"], "email_std": ["x@y.co"]}), suites)
    failures = v.critical_failures([report])
    assert (
        "standardized: standardized.phone_std could not be checked (expect_column_values_to_match_regex)"
        " — column phone_std is missing"
    ) in failures
    assert not any("email_std" in f for f in failures)


def test_data_docs_mask_personal_values_unless_asked(suites, tmp_path):
    std = _std(email_std=["zhang.san@example.cn", "secret-mailbox", None, None])
    report = v.validate_standardized(std, suites)
    v.build_data_docs([report], tmp_path / "masked")
    page = (tmp_path / "masked" / report.docs_pages["standardized"]).read_text(encoding="utf-8")
    assert "secret-mailbox" not in page and "s***" in page
    assert report.results[0]["examples"] == ["secret-mailbox"]  # the in-memory report keeps the value
    v.build_data_docs([report], tmp_path / "plain", show_pii=True)
    assert "secret-mailbox" in (tmp_path / "plain" / report.docs_pages["standardized"]).read_text(encoding="utf-8")
