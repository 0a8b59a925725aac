"""Ingest on real files written to tmp_path: encodings, delimiters, workbooks, bad rows, bad files."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmclean.errors import InputFileError, RulesError
from crmclean.ingest import IngestResult, RECORD_COLUMNS, discover_inputs, ingest, source_settings
from crmclean.schema import QUARANTINE_COLUMNS
from crmclean.settings import SAMPLE_DATA_DIR, Rules, load_rules


def _rules(tmp_path: Path, sources: dict | None = None, columns: dict | None = None) -> Rules:
    return Rules(directory=tmp_path, sources=sources or {}, columns=columns or {})


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _check_invariants(result: IngestResult) -> None:
    assert set(result.records.columns) - set(RECORD_COLUMNS) <= {"ingest_flag"}  # only when a cell had a NUL
    assert list(result.records.columns)[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert result.rows_read == len(result.records) + len(result.quarantine)
    assert result.records["record_key"].is_unique
    assert (result.records["record_key"] == result.records["source"] + "|" + result.records["source_record_id"]).all()


def _row(result: IngestResult, locator: str) -> dict:
    rows = result.records[result.records["locator"] == locator]
    assert len(rows) == 1, f"no single record at {locator}"
    return rows.iloc[0].to_dict()


# ---------------------------------------------------------------------------------------------
# Encodings and delimiters


def test_gbk_csv_with_chinese_headers(tmp_path):
    path = _write(
        tmp_path / "crm_legacy_cn.csv",
        "客户编号,姓名,手机,邮箱,地址,备注\r\n"
        "KH001,张三,13800138000,zhangsan@qq.com,北京市朝阳区建国路1号,VIP\r\n"
        "KH002, 李四 ,013912345678,,上海市浦东新区,\r\n",
        "gbk",
    )
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    assert result.mapping == {
        "crm_legacy_cn": {
            "files": {
                "crm_legacy_cn.csv": {
                    "": {
                        "客户编号": "record_id",
                        "姓名": "full_name",
                        "手机": "mobile",
                        "邮箱": "email",
                        "地址": "address",
                        "备注": None,
                    }
                }
            },
            "id_column": "客户编号",
        }
    }
    first = _row(result, "crm_legacy_cn.csv@line:2")
    assert first["record_key"] == "crm_legacy_cn|KH001"
    assert first["source_record_id"] == "KH001"
    assert first["file"] == "crm_legacy_cn.csv"
    assert first["full_name"] == "张三"
    assert first["mobile"] == "13800138000"
    assert first["address"] == "北京市朝阳区建国路1号"
    assert first["landline"] is None and first["source_default_region"] is None
    assert json.loads(first["extra"]) == {"备注": "VIP"}
    second = _row(result, "crm_legacy_cn.csv@line:3")
    assert second["full_name"] == "李四"  # stripped in the canonical column ...
    assert json.loads(second["raw"])["姓名"] == " 李四 "  # ... but raw keeps exactly what was read
    assert second["mobile"] == "013912345678"  # leading zero kept
    assert second["email"] is None  # empty → None
    assert json.loads(second["extra"]) == {"备注": ""}


def test_utf8_bom_semicolon_csv_keeps_text_as_is(tmp_path):
    path = _write(
        tmp_path / "crm_web_us.csv",
        "\ufeffCustomer ID;First Name;Last Name;E-mail;Phone;ZIP\n"
        "00123;John;Smith;john@example.com;NA;02123\n"
        '00124;"Ann; Marie";Lee;;null;\n',
    )
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    header_map = result.mapping["crm_web_us"]["files"]["crm_web_us.csv"][""]
    assert list(header_map) == ["Customer ID", "First Name", "Last Name", "E-mail", "Phone", "ZIP"]  # no BOM
    assert header_map["Phone"] == "phone" and header_map["ZIP"] == "postal_code"
    john = _row(result, "crm_web_us.csv@line:2")
    assert (john["record_id"], john["phone"], john["postal_code"]) == ("00123", "NA", "02123")
    ann = _row(result, "crm_web_us.csv@line:3")
    assert (ann["first_name"], ann["phone"], ann["postal_code"]) == ("Ann; Marie", "null", None)


def test_utf16_tsv_without_id_column_uses_line_locators(tmp_path):
    path = _write(
        tmp_path / "leads.tsv", "Name\tMobile\tCity\nBob Lee\t+1 555 0100\tBoston\n\nAmy\t555\tNYC\n", "utf-16"
    )
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    assert result.mapping["leads"]["id_column"] is None
    assert result.records["source_record_id"].tolist() == ["@line:2", "@line:4"]
    assert result.records["record_key"].tolist() == ["leads|@line:2", "leads|@line:4"]
    assert result.records["full_name"].tolist() == ["Bob Lee", "Amy"]
    assert result.records["mobile"].tolist() == ["+1 555 0100", "555"]
    assert result.quarantine["reason_code"].tolist() == ["blank_row"]
    assert result.quarantine["locator"].tolist() == ["leads.tsv@line:3"]
    assert result.rows_read == 3


def test_gb18030_text_file_with_pipe_delimiter(tmp_path):
    path = _write(tmp_path / "vip.txt", "编号|客戶姓名|手機號碼\n7|𠀀王|13900000000\n", "gb18030")
    result = ingest([path], _rules(tmp_path))
    assert result.mapping["vip"]["files"]["vip.txt"][""] == {
        "编号": "record_id",
        "客戶姓名": "full_name",
        "手機號碼": "mobile",
    }  # traditional headers too
    assert _row(result, "vip.txt@line:2")["full_name"] == "𠀀王"


# ---------------------------------------------------------------------------------------------
# Workbooks


def _sales_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    east = wb.active
    east.title = "East"
    east.append(["ID", "Name", "Mobile", "DOB", "Created", "VIP", "Score"])
    east.append(["S1", "Amy Chan ", 13800138000, dt.date(1985, 3, 7), dt.datetime(2020, 1, 2, 10, 20), True, 1.5])
    east.append([None] * 7)
    east.append([2, "Bob", 8613912345678, None, None, False, 3.0])
    east.append(["S3", "Cat", "0123", None, None, None, None, None, "stray"])
    east["D2"].number_format = "yyyy-mm-dd"
    west = wb.create_sheet("West")
    west.append(["Created", "Score", "Name", "ID", "Mobile", "DOB"])
    west.append([None, 10, "Dan", "S4", 13700000000, dt.datetime(1990, 12, 31)])
    wb.create_sheet("Empty")
    wb.save(path)
    return path


def test_two_sheet_workbook_maps_each_sheet_and_converts_cells(tmp_path):
    path = _sales_workbook(tmp_path / "crm_sales.xlsx")
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    sheets = result.mapping["crm_sales"]["files"]["crm_sales.xlsx"]
    assert list(sheets) == ["East", "West", "Empty"]
    assert sheets["East"] == {
        "ID": "record_id",
        "Name": "full_name",
        "Mobile": "mobile",
        "DOB": "birth_date",
        "Created": "created_at",
        "VIP": None,
        "Score": None,
    }
    assert sheets["West"]["Mobile"] == "mobile" and sheets["Empty"] == {}
    assert result.mapping["crm_sales"]["id_column"] == "ID"

    amy = _row(result, "crm_sales.xlsx@East!2")
    assert amy["record_key"] == "crm_sales|S1"
    assert (amy["full_name"], amy["mobile"], amy["birth_date"], amy["created_at"]) == (
        "Amy Chan",
        "13800138000",
        "1985-03-07",
        "2020-01-02T10:20:00",
    )
    assert json.loads(amy["extra"]) == {"VIP": "true", "Score": "1.5"}
    raw = json.loads(amy["raw"])
    assert raw["Mobile"] == 13800138000 and isinstance(raw["Mobile"], float)  # the original number
    assert raw["Name"] == "Amy Chan " and raw["VIP"] is True and raw["DOB"] == "1985-03-07"

    bob = _row(result, "crm_sales.xlsx@East!4")
    assert (bob["source_record_id"], bob["mobile"]) == ("2", "8613912345678")  # never 8.61e12
    assert json.loads(bob["extra"]) == {"VIP": "false", "Score": "3"}

    dan = _row(result, "crm_sales.xlsx@West!2")
    assert (dan["record_id"], dan["mobile"], dan["birth_date"], dan["created_at"]) == (
        "S4",
        "13700000000",
        "1990-12-31",
        None,
    )  # midnight: calamine gives a date

    q = result.quarantine.set_index("locator")
    assert q.loc["crm_sales.xlsx@East!3", "reason_code"] == "blank_row"
    assert q.loc["crm_sales.xlsx@East!5", "reason_code"] == "column_count"
    assert q.loc["crm_sales.xlsx@East!5", "reason"] == (
        "crm_sales.xlsx sheet 'East' row 5 has a value in column I, outside the header's 7 columns"
    )
    assert json.loads(q.loc["crm_sales.xlsx@East!5", "raw"]) == {
        "ID": "S3",
        "Name": "Cat",
        "Mobile": "0123",
        "column_9": "stray",
    }
    assert result.rows_read == 5


def test_workbook_without_id_column_uses_sheet_row_locators(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(["姓名", "手机"])
    ws.append(["王五", 13800000001])
    wb.save(tmp_path / "list.xlsx")
    result = ingest([tmp_path / "list.xlsx"], _rules(tmp_path))
    assert result.records["source_record_id"].tolist() == ["@客户!2"]
    assert result.records["locator"].tolist() == ["list.xlsx@客户!2"]


def test_corrupt_workbook_names_the_file(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(random.Random(1).randbytes(5000))
    with pytest.raises(InputFileError) as err:
        ingest([path], _rules(tmp_path))
    assert err.value.path == str(path)
    assert "is not a readable Excel workbook" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Row-level problems


def test_bad_rows_go_to_quarantine_with_file_line_and_column(tmp_path):
    long_value = "x" * 10_000
    path = _write(
        tmp_path / "crm_a.csv",
        "id,name,email,notes\n"  # line 1
        'A1,Ann,ann@x.com,"two\nlines"\n'  # lines 2-3: one record
        "\n"  # line 4: blank
        "A2,Bob,bob@x.com,ok,surplus\n"  # line 5: 5 fields
        "A3,Cy\x00d,cy@x.com,\n"  # line 6: NUL byte in name (kept, escaped)
        f"A4,Dee,dee@x.com,{long_value}\n"  # line 7: too long
        ",,,\n"  # line 8: blank (delimiters only)
        "A1,Ann again,ann2@x.com,\n"  # line 9: duplicate of line 2
        "A5,Eve,eve@x.com,\n"  # line 10
        "A6,Fay,fay@x.com,,\n"  # line 11: a trailing delimiter is not a field
        "\n\n",  # trailing empty lines are not rows
    )
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    assert result.records["locator"].tolist() == [
        "crm_a.csv@line:2",
        "crm_a.csv@line:6",
        "crm_a.csv@line:10",
        "crm_a.csv@line:11",
    ]
    nul_row = _row(result, "crm_a.csv@line:6")  # kept: the NUL is escaped as U+2400, flagged
    assert nul_row["full_name"] == "Cy\u2400d" and json.loads(nul_row["raw"])["name"] == "Cy\u2400d"
    assert nul_row["ingest_flag"] == "nul_escaped" and _row(result, "crm_a.csv@line:2")["ingest_flag"] is None
    assert _row(result, "crm_a.csv@line:2")["extra"] == json.dumps({"notes": "two\nlines"})
    q = result.quarantine.set_index("locator")
    assert q["reason_code"].to_dict() == {
        "crm_a.csv@line:4": "blank_row",
        "crm_a.csv@line:5": "column_count",
        "crm_a.csv@line:8": "blank_row",
        "crm_a.csv@line:7": "value_too_long",
        "crm_a.csv@line:9": "duplicate_id",
    }
    assert set(q["stage"]) == {"ingest"} and set(q["source"]) == {"crm_a"}
    assert q.loc["crm_a.csv@line:5", "reason"] == "crm_a.csv line 5 has 5 fields, the header has 4"
    assert q.loc["crm_a.csv@line:5", "raw"] == "A2,Bob,bob@x.com,ok,surplus"
    assert q.loc["crm_a.csv@line:5", "source_record_id"] == "@line:5"
    assert q.loc["crm_a.csv@line:4", "reason"] == "crm_a.csv line 4 is blank"
    assert q.loc["crm_a.csv@line:7", "reason"] == (
        "crm_a.csv line 7, column 'notes' is 10000 characters long (limit 4000)"
    )
    assert q.loc["crm_a.csv@line:7", "source_record_id"] == "A4"
    assert q.loc["crm_a.csv@line:9", "reason"] == (
        "crm_a.csv line 9 repeats ID 'A1' of crm_a.csv line 2 (source 'crm_a'); the first is kept"
    )
    assert json.loads(q.loc["crm_a.csv@line:9", "raw"]) == {
        "id": "A1",
        "name": "Ann again",
        "email": "ann2@x.com",
        "notes": "",
    }
    assert result.rows_read == 9


def test_max_value_chars_comes_from_sources_yaml(tmp_path):
    path = _write(tmp_path / "short.csv", "id,name\n1,abcdef\n2,abc\n")
    result = ingest([path], _rules(tmp_path, sources={"defaults": {"max_value_chars": 5}}))
    assert result.records["record_id"].tolist() == ["2"]
    assert result.quarantine["reason"].tolist() == ["short.csv line 2, column 'name' is 6 characters long (limit 5)"]


def test_header_only_file_gives_zero_records(tmp_path):
    result = ingest([_write(tmp_path / "empty_export.csv", "id,name,email\r\n")], _rules(tmp_path))
    _check_invariants(result)
    assert len(result.records) == 0 and len(result.quarantine) == 0 and result.rows_read == 0
    assert result.mapping["empty_export"]["files"]["empty_export.csv"][""]["email"] == "email"


def test_two_headers_for_one_field_first_wins_second_is_extra(tmp_path):
    path = _write(tmp_path / "dup.csv", "Name,Email,E-mail,Name\nAnn,a@x.com,b@x.com,Ann B\n")
    result = ingest([path], _rules(tmp_path))
    assert result.mapping["dup"]["files"]["dup.csv"][""] == {
        "Name": "full_name",
        "Email": "email",
        "E-mail": None,
        "Name.1": None,
    }
    row = _row(result, "dup.csv@line:2")
    assert row["email"] == "a@x.com"
    assert json.loads(row["extra"]) == {"E-mail": "b@x.com", "Name.1": "Ann B"}


# ---------------------------------------------------------------------------------------------
# File-level problems


def test_file_level_problems_raise_input_file_error(tmp_path):
    undecodable = tmp_path / "garbage.csv"
    undecodable.write_bytes(random.Random(0).randbytes(2000))
    with pytest.raises(InputFileError, match=r"cannot decode as UTF-8, UTF-16 or GB18030 \(UTF-8: .* line 1") as err:
        ingest([undecodable], _rules(tmp_path))
    assert err.value.path == str(undecodable)

    with pytest.raises(InputFileError, match="not a CSV, TSV or Excel file"):
        ingest([_write(tmp_path / "customers.json", "[]")], _rules(tmp_path))
    with pytest.raises(InputFileError, match="file not found"):
        ingest([tmp_path / "missing.csv"], _rules(tmp_path))
    with pytest.raises(InputFileError, match="no header row"):
        ingest([_write(tmp_path / "blank.csv", "\n \n")], _rules(tmp_path))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputFileError, match="no CSV, TSV or Excel files"):
        ingest([tmp_path / "nothing"], _rules(tmp_path))


def test_empty_workbook_and_clashing_file_names_are_file_errors(tmp_path):
    wb = openpyxl.Workbook()
    wb.create_sheet("Second")
    wb.save(tmp_path / "blank.xlsx")
    with pytest.raises(InputFileError, match="no header row in any sheet"):
        ingest([tmp_path / "blank.xlsx"], _rules(tmp_path))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _write(tmp_path / "a" / "crm.csv", "id\n1\n"), _write(tmp_path / "b" / "crm.csv", "id\n2\n")
    with pytest.raises(InputFileError, match="same file name"):
        ingest([first, second], _rules(tmp_path))


def test_configured_encoding_that_does_not_fit_is_a_file_error(tmp_path):
    path = _write(tmp_path / "crm_b.csv", "id,name\n1,张三\n", "gbk")
    rules = _rules(tmp_path, sources={"sources": {"crm_b": {"encoding": "utf-8"}}})
    with pytest.raises(InputFileError, match="cannot decode as utf-8"):
        ingest([path], rules)


# ---------------------------------------------------------------------------------------------
# discover_inputs and sources.yaml


def test_discover_inputs_sorted_skips_hidden_and_lock_files(tmp_path):
    for name in ["b.csv", "a.xlsx", ".hidden.csv", "~$a.xlsx", "notes.md", "c.TSV"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text("x")
    explicit = _write(tmp_path / "sub" / "d.csv", "x")
    assert [p.name for p in discover_inputs([tmp_path])] == ["a.xlsx", "b.csv", "c.TSV"]
    assert [p.name for p in discover_inputs([explicit, tmp_path, tmp_path / "b.csv"])] == [
        "d.csv",
        "a.xlsx",
        "b.csv",
        "c.TSV",
    ]


def test_sources_yaml_groups_nightly_files_and_overrides_columns(tmp_path):
    day1 = _write(tmp_path / "crm_a_2026-11-24.csv", "Cust No;Nom;Tel (work);Memo\nA1;Ann;555;x\n;Bob;556;\n", "cp1252")
    day2 = _write(
        tmp_path / "crm_a_2026-11-25.csv", "Cust No;Nom;Tel (work);Memo\nA2;Zoë;557;y\nA1;Ann2;558;\n", "cp1252"
    )
    sources = {
        "defaults": {"max_value_chars": 100},
        "sources": {
            "crm_a": {
                "files": ["CRM_A_*.csv"],
                "id_column": "cust_no",
                "encoding": "cp1252",
                "delimiter": "semicolon",
                "default_region": "gb",
                "day_first": True,
                "full_snapshot": True,
                "columns": {"Nom": "full_name", "Tel (work)": "landline", "memo": None},
            }
        },
    }
    rules = _rules(tmp_path, sources=sources)
    result = ingest([day1, day2], rules)
    _check_invariants(result)
    assert list(result.mapping) == ["crm_a"]
    assert result.mapping["crm_a"]["id_column"] == "cust_no"
    assert result.mapping["crm_a"]["files"]["crm_a_2026-11-25.csv"][""] == {
        "Cust No": "record_id",
        "Nom": "full_name",
        "Tel (work)": "landline",
        "Memo": None,
    }
    records = result.records.set_index("source_record_id")
    # Two files in one source: a row without ID is identified by its full locator.
    assert list(records.index) == ["A1", "crm_a_2026-11-24.csv@line:3", "A2"]
    assert records.loc["A2", "full_name"] == "Zoë" and records.loc["A2", "landline"] == "557"
    assert set(result.records["source_default_region"]) == {"GB"}
    assert set(result.records["source_day_first"]) == {True}
    assert result.quarantine["reason"].tolist() == [
        "crm_a_2026-11-25.csv line 3 repeats ID 'A1' of crm_a_2026-11-24.csv line 2 (source 'crm_a'); the first is kept"
    ]
    config = source_settings(rules, "crm_a")
    assert (config.full_snapshot, config.default_region, config.delimiter) == (True, "GB", ";")
    assert source_settings(rules, "other").full_snapshot is False


def test_configured_id_column_missing_from_a_file_is_an_error(tmp_path):
    path = _write(tmp_path / "crm_c.csv", "name,email\nAnn,a@x.com\n")
    with pytest.raises(InputFileError, match="has no column 'Customer No'"):
        ingest([path], _rules(tmp_path, sources={"sources": {"crm_c": {"id_column": "Customer No"}}}))


@pytest.mark.parametrize(
    "sources, message",
    [
        ({"sources": {"crm_a": {"encodng": "gbk"}}}, "unknown key 'sources.crm_a.encodng'"),
        ({"sources": {"crm_a": {"columns": {"Tel": "telephone"}}}}, "unknown field 'telephone'"),
        ({"sources": {"crm_a": {"default_region": "China"}}}, "two-letter ISO country code"),
        ({"defaults": {"max_value_chars": 0}}, "positive whole number"),
        ({"sources": {"crm_a": {"encoding": "klingon"}}}, "not an encoding"),
    ],
)
def test_invalid_sources_yaml_is_a_rules_error(tmp_path, sources, message):
    path = _write(tmp_path / "crm_a.csv", "id\n1\n")
    with pytest.raises(RulesError, match=message):
        ingest([path], _rules(tmp_path, sources=sources))


def test_columns_yaml_replaces_aliases_of_a_field(tmp_path):
    path = _write(tmp_path / "x.csv", "Handy,Mobile\n0151,0152\n")
    result = ingest([path], _rules(tmp_path, columns={"aliases": {"mobile": ["handy"]}}))
    row = _row(result, "x.csv@line:2")
    assert row["mobile"] == "0151" and json.loads(row["extra"]) == {"Mobile": "0152"}


def test_shipped_rules_are_valid_and_read_the_sample_data():
    result = ingest([SAMPLE_DATA_DIR], load_rules())
    _check_invariants(result)
    assert list(result.mapping) == ["crm_legacy_cn", "crm_sales", "crm_web_us"]
    assert result.mapping["crm_legacy_cn"]["id_column"] == "客户编号"
    assert set(result.mapping["crm_sales"]["files"]["crm_sales.xlsx"]) >= {"Accounts", "Leads"}
    by_source = result.records.groupby("source")["source_default_region"].first().to_dict()
    assert by_source == {"crm_legacy_cn": "CN", "crm_sales": None, "crm_web_us": "US"}


# ---------------------------------------------------------------------------------------------
# Property: raw is exactly what was read, whatever the text


_TOKENS = list('ab ,;"\\\n\r\t/é张\u2028{}:') + ['", "', '\\"', "\r\n"]
cell_text = st.lists(st.sampled_from(_TOKENS), max_size=8).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8))
@example(rows=[("", '", '), ("", "")])  # an escaped quote before ', ' once faked a JSON boundary
def test_raw_round_trips_any_cell_text(tmp_path, rows):
    import csv

    path = tmp_path / "prop.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(["id", "name"])
        for i, (name, extra) in enumerate(rows):
            writer.writerow([f"r{i}", name + extra])
    result = ingest([path], _rules(tmp_path, sources={"sources": {"prop": {"delimiter": ","}}}))
    kept = result.records.set_index("record_id")
    for i, (name, extra) in enumerate(rows):
        value = name + extra
        assert json.loads(kept.loc[f"r{i}", "raw"]) == {"id": f"r{i}", "name": value}
        assert kept.loc[f"r{i}", "full_name"] == (value.strip() or None)
    assert result.rows_read == len(rows) == len(result.records)


# ---------------------------------------------------------------------------------------------
# Smaller guarantees


def test_excel_sep_hint_line_sets_the_delimiter(tmp_path):
    path = _write(tmp_path / "eu.csv", "sep=;\r\nid;name;city\r\n1;Ann, Jr;Paris\r\n")
    result = ingest([path], _rules(tmp_path))
    assert result.mapping["eu"]["files"]["eu.csv"][""] == {"id": "record_id", "name": "full_name", "city": "city"}
    row = _row(result, "eu.csv@line:3")
    assert (row["record_id"], row["full_name"], row["city"]) == ("1", "Ann, Jr", "Paris")
    assert result.rows_read == 1


def test_unreadable_file_is_a_file_error(tmp_path, monkeypatch):
    path = _write(tmp_path / "locked.csv", "id\n1\n")

    def deny(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(InputFileError, match=r"locked.csv: cannot be read \(Permission denied\)"):
        ingest([path], _rules(tmp_path))


def test_excel_number_to_text_conversion():
    from crmclean.ingest.readers import excel_text

    assert excel_text(13800138000.0) == "13800138000"
    assert excel_text(-2.0) == "-2"
    assert excel_text(0.1) == "0.1"
    assert excel_text(12345678901234567890.0) == "12345678901234600000"  # Excel's 15 digits
    assert excel_text(dt.datetime(1985, 3, 7, 10, 20)) == "1985-03-07T10:20:00"
    assert excel_text(dt.time(9, 5)) == "09:05:00"
    assert excel_text(True) == "true"


def test_western_windows_file_is_not_misread_as_gb18030(tmp_path):
    # Every accented letter is followed by a letter, so GB18030 decodes this without error
    # ("M黮ler"); the result is rejected because it does not look like Chinese text.
    path = _write(tmp_path / "de.csv", "name,city\nMüller,Köln\nGärtner,Düsseldorf\n", "cp1252")
    result = ingest([path], _rules(tmp_path))
    assert result.records["full_name"].tolist() == ["Müller", "Gärtner"]
    assert result.records["city"].tolist() == ["Köln", "Düsseldorf"]
    # ... while Chinese data with a Latin name in it stays GB18030.
    path = _write(tmp_path / "cn.csv", "姓名,地址\n张三,Müller Straße 5\n李四,北京市海淀区\n", "gb18030")
    assert ingest([path], _rules(tmp_path)).records["address"].tolist() == ["Müller Straße 5", "北京市海淀区"]


def test_old_mac_line_endings_count_physical_lines(tmp_path):
    path = _write(tmp_path / "mac.csv", 'id,name\r1,"A\rB"\r\r2,C\r')
    result = ingest([path], _rules(tmp_path))
    assert result.records["locator"].tolist() == ["mac.csv@line:2", "mac.csv@line:5"]
    assert result.records["full_name"].tolist() == ["A\rB", "C"]
    assert result.quarantine["locator"].tolist() == ["mac.csv@line:4"]


_ROW_KIND = st.sampled_from(["good", "good", "multiline", "blank", "short", "long"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(_ROW_KIND, min_size=1, max_size=15), newline=st.sampled_from(["\n", "\r\n"]))
def test_every_row_is_accounted_for_at_its_physical_line(tmp_path, kinds, newline):
    lines, expected, line_no = ["id,name,city"], {}, 1
    for i, kind in enumerate(kinds):
        line_no += 1
        if kind == "good":
            lines.append(f"r{i},Name {i},X")
            expected[f"r{i}"] = (line_no, None)
        elif kind == "multiline":
            lines.append(f'r{i},"Name{newline}{i}",X')
            expected[f"r{i}"] = (line_no, None)
            line_no += 1
        elif kind == "blank":
            lines.append("" if i % 2 else ",,")
            expected[f"@line:{line_no}"] = (line_no, "blank_row")
        else:
            lines.append(f"r{i},only" if kind == "short" else f"r{i},a,b,c")
            expected[f"@line:{line_no}"] = (line_no, "column_count")
    path = tmp_path / "gen.csv"
    path.write_bytes((newline.join(lines) + newline + "x,y,z" + newline).encode("utf-8"))
    result = ingest([path], _rules(tmp_path))
    _check_invariants(result)
    got = {
        rid: (int(loc.split(":")[-1]), None)
        for rid, loc in zip(result.records["source_record_id"], result.records["locator"])
        if rid != "x"
    }
    got.update(
        {
            rid: (int(loc.split(":")[-1]), code)
            for rid, loc, code in zip(
                result.quarantine["source_record_id"], result.quarantine["locator"], result.quarantine["reason_code"]
            )
        }
    )
    assert got == expected
    assert _row(result, f"gen.csv@line:{line_no + 1}")["record_id"] == "x"


# ---------------------------------------------------------------------------------------------
# Zero-config mapping: split birth dates and addresses, second names, ids, categorical columns


def test_birth_date_split_over_three_columns_is_combined(tmp_path):
    path = _write(
        tmp_path / "personen.csv",
        "id,first_name,second_forename,last_name,birth_day,birth_month,birth_year,birth_place,occupation\n"
        "1,Hans,Peter,Müller,7,3,1984,Berlin,Bäcker\n"
        "2,Anna,,Schmidt,,11,1990,Hamburg,Lehrerin\n"
        "3,Jürgen,,Weber,,,1875,Berlin,Bäcker\n"
        "4,Eva,,Braun,31,13,1950,Köln,\n",
    )
    result = ingest([path], _rules(tmp_path))
    assert list(result.records.columns[: len(RECORD_COLUMNS)]) == list(RECORD_COLUMNS)
    mapping = result.mapping["personen"]["files"]["personen.csv"][""]
    assert mapping["birth_day"] == "birth_date.day"  # never the whole birth date
    assert mapping["birth_month"] == "birth_date.month" and mapping["birth_year"] == "birth_date.year"
    assert mapping["second_forename"] == "middle_name"
    assert mapping["birth_place"] == "attr_birth_place" and mapping["occupation"] == "attr_occupation"
    rows = result.records.set_index("source_record_id")
    assert rows.loc["1", "birth_date"] == "1984-03-07"
    assert rows.loc["2", "birth_date"] == "1990-11"  # no day: year and month kept
    assert rows.loc["3", "birth_date"] == "1875"  # year only
    assert rows.loc["4", "birth_date"] == "1950-13-31"  # a bad month is passed on, to be flagged invalid
    assert rows.loc["1", "middle_name"] == "Peter" and rows.loc["2", "middle_name"] is None
    assert rows.loc["1", "attr_birth_place"] == "Berlin" and rows.loc["1", "attr_occupation"] == "Bäcker"
    extra = json.loads(rows.loc["1", "extra"])  # raw parts and attributes stay in extra
    assert extra["birth_day"] == "7" and extra["birth_place"] == "Berlin" and extra["second_forename"] == "Peter"


def test_lone_birthday_column_is_the_birth_date_and_a_full_date_beats_parts(tmp_path):
    lone = _write(tmp_path / "a.csv", "Name,Birthday\nAna Li,1990-01-02\n")
    both = _write(tmp_path / "b.csv", "Name,DOB,dob_year,mob\nAna Li,1990-01-02,1990,1\n")
    result = ingest([lone, both], _rules(tmp_path))
    assert result.mapping["a"]["files"]["a.csv"][""]["Birthday"] == "birth_date"
    b = result.mapping["b"]["files"]["b.csv"][""]
    assert b == {"Name": "full_name", "DOB": "birth_date", "dob_year": None, "mob": None}
    assert set(result.records["birth_date"]) == {"1990-01-02"}


def test_febrl_headers_join_street_number_and_address_lines(tmp_path):
    path = _write(
        tmp_path / "febrl.csv",
        "rec_id,given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,soc_sec_id\n"
        "rec-1-org,michaela,neumann,8,stanley street,miami,winston hills,4223,nsw,19151111,5304218\n"
        "rec-2-org,courtney,painter,12,pinkerton circuit,,richlands,4560,vic,19161214,4066625\n"
        "rec-3-org,sarah,green,,,,,,,,\n",
    )
    result = ingest([path], _rules(tmp_path))
    mapping = result.mapping["febrl"]["files"]["febrl.csv"][""]
    assert (
        mapping["rec_id"] == "record_id" and mapping["given_name"] == "first_name" and mapping["surname"] == "last_name"
    )
    assert (mapping["street_number"], mapping["address_1"], mapping["address_2"]) == (
        "address.number",
        "address.line1",
        "address.line2",
    )
    assert mapping["suburb"] == "city" and mapping["soc_sec_id"] == "national_id"
    rows = result.records.set_index("source_record_id")
    assert rows.loc["rec-1-org", "address"] == "8 stanley street, miami"
    assert rows.loc["rec-2-org", "address"] == "12 pinkerton circuit"
    assert rows.loc["rec-3-org", "address"] is None
    assert rows.loc["rec-1-org", "city"] == "winston hills"


def test_id_like_column_is_the_record_id_only_when_unique_per_row(tmp_path):
    unique = _write(
        tmp_path / "events.csv", "Attendee Id,Name,household_id\nA-1,Ana Li,H1\nA-2,Bo Li,H1\nA-3,Cy Wu,H2\n"
    )
    repeated = _write(tmp_path / "visits.csv", "visit_id,Name\nV1,Ana Li\nV1,Bo Li\n")
    chinese = _write(tmp_path / "cn.csv", "编号,姓名\n001,张三\n002,李四\n")
    result = ingest([unique, repeated, chinese], _rules(tmp_path))
    events = result.mapping["events"]["files"]["events.csv"][""]
    assert events["Attendee Id"] == "record_id"
    assert events["household_id"] is None  # not unique: not the id, and an id is no attribute either
    assert result.mapping["visits"]["files"]["visits.csv"][""]["visit_id"] is None
    assert result.mapping["cn"]["files"]["cn.csv"][""]["编号"] == "record_id"
    assert set(result.records.loc[result.records["source"] == "events", "source_record_id"]) == {"A-1", "A-2", "A-3"}


def test_second_name_is_a_middle_name_beside_a_surname_else_the_surname(tmp_path):
    three = _write(tmp_path / "three.csv", "first_name,second_name,last_name\nHans,Peter,Müller\n")
    two = _write(tmp_path / "two.csv", "first_name,second_name\nHans,Müller\n")
    result = ingest([three, two], _rules(tmp_path))
    assert result.mapping["three"]["files"]["three.csv"][""]["second_name"] == "middle_name"
    assert result.mapping["two"]["files"]["two.csv"][""]["second_name"] == "last_name"


def test_unmapped_categorical_columns_become_attributes(tmp_path):
    notes = ["called about the invoice for March and asked for a refund"] * 3 + [
        "wants the newsletter every week please"
    ] * 3
    lines = ["Name,Segment,Notes,Plan,Ticket,Region Code,Channel"]
    for i in range(6):
        lines.append(f"P{i},{'gold' if i % 2 else 'silver'},{notes[i]},basic,T{i},EU,{'' if i else 'web'}")
    path = _write(tmp_path / "crm.csv", "\n".join(lines) + "\n")
    result = ingest([path], _rules(tmp_path))
    mapping = result.mapping["crm"]["files"]["crm.csv"][""]
    assert mapping["Segment"] == "attr_segment"
    assert mapping["Notes"] is None  # free text
    assert mapping["Plan"] is None  # one value only
    assert mapping["Ticket"] is None  # unique per row
    assert mapping["Channel"] is None  # a single value present
    assert mapping["Region Code"] is None  # `state` alias "region" does not apply; one value only
    assert list(result.records["attr_segment"]) == ["silver", "gold"] * 3
    assert json.loads(result.records["extra"][0])["Segment"] == "silver"


def test_id_like_header_test_is_about_the_word_id():
    from crmclean.ingest.columns import looks_like_id_header

    assert all(
        looks_like_id_header(h)
        for h in ("rec_id", "Attendee Id", "AttendeeId", "ID", "visit_id", "Member-ID", "会员编号")
    )
    assert not any(looks_like_id_header(h) for h in ("Paid", "valid", "Humid", "Name", "Idea"))
