"""Chunked ingest (issue 14): text files are split and checked `chunk_rows` lines at a time and
workbook sheets converted that many rows at a time, with the same records, quarantine and row
numbers as reading them whole. The chunk size is set small through rules/sources.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter

from crmclean import progress
from crmclean.ingest import ingest
from crmclean.ingest import readers
from crmclean.settings import Rules

HEADER = "id,name,email,city\n"


def _rules(tmp_path: Path, chunk_rows: int) -> Rules:
    return Rules(directory=tmp_path, sources={"defaults": {"chunk_rows": chunk_rows}})


def _rows(n: int, start: int = 1) -> list[str]:
    return [f"C{i},Person {i},p{i}@example.com,City {i % 7}\n" for i in range(start, start + n)]


def _whole_file(monkeypatch) -> None:
    """The reader as it was before chunking: the whole text decoded and split at once."""
    monkeypatch.setattr(readers, "_stream_codec", lambda data, encoding: None)


def test_a_bad_row_after_the_first_chunk_names_its_own_line(tmp_path):
    lines = [HEADER, *_rows(12), "C13,Broken,too,many,fields\n", *_rows(6, start=14)]
    path = tmp_path / "crm_a.csv"
    path.write_text("".join(lines), encoding="utf-8")
    result = ingest([path], _rules(tmp_path, chunk_rows=4))
    (bad,) = result.quarantine.itertuples()
    assert (bad.reason_code, bad.locator) == ("column_count", "crm_a.csv@line:14")
    assert bad.reason.startswith("crm_a.csv line 14 has 5 fields, the header has 4")
    assert bad.raw == "C13,Broken,too,many,fields"
    assert len(result.records) == 18 and result.rows_read == 19
    after = result.records.set_index("source_record_id")
    assert after.loc["C14", "locator"] == "crm_a.csv@line:15"  # rows after it keep their lines
    assert after.loc["C19", "locator"] == "crm_a.csv@line:20"


def test_a_quote_running_over_a_chunk_boundary_is_read_as_whole(tmp_path, monkeypatch):
    """A quoted field with line breaks that a chunk boundary cuts, and a quote that never closes
    in a later chunk: the same rows, problems and line numbers in every chunk size."""
    lines = [HEADER, *_rows(3), 'C4,"Multi\nline\nname",m@example.com,Paris\n', *_rows(5, start=5)]
    lines += ['C10,"Runaway,r@example.com,Rome\n', *_rows(4, start=11), "\n", "\n"]
    path = tmp_path / "crm_b.csv"
    path.write_text("".join(lines), encoding="utf-8")

    def read(chunk_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        result = ingest([path], _rules(tmp_path, chunk_rows))
        return result.records, result.quarantine

    _whole_file(monkeypatch)
    whole_records, whole_quarantine = read(10_000)
    monkeypatch.undo()
    assert whole_quarantine["reason_code"].tolist() == ["unbalanced_quote"]
    assert "ran on to line 19" in whole_quarantine["reason"].iloc[0]  # the runaway swallowed to the end
    for chunk_rows in (1, 2, 3, 5, 8):
        records, quarantine = read(chunk_rows)
        pd.testing.assert_frame_equal(records, whole_records, obj=f"records, chunks of {chunk_rows}")
        pd.testing.assert_frame_equal(quarantine, whole_quarantine, obj=f"quarantine, chunks of {chunk_rows}")
    assert whole_records.set_index("source_record_id").loc["C4", "full_name"] == "Multi\nline\nname"


def test_encodings_and_line_ends_read_in_chunks_as_whole(tmp_path, monkeypatch):
    text = "客户编号,姓名,城市\r\n" + "".join(f"K{i},张{i},北京\r\n" for i in range(40)) + "K40,李,上海,多余\r\n"
    for encoding in ("gbk", "utf-8-sig", "utf-16"):
        path = tmp_path / f"cn_{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        _whole_file(monkeypatch)
        whole = readers.read_delimited(path, None, None)
        monkeypatch.undo()
        chunked = readers.read_delimited(path, None, None, chunk_rows=7)
        assert (chunked.headers, chunked.columns, chunked.positions) == (whole.headers, whole.columns, whole.positions)
        assert [(p.position, p.code, p.detail) for p in chunked.problems] == [
            (p.position, p.code, p.detail) for p in whole.problems
        ]
        assert [p.position for p in chunked.problems] == [42], encoding


def test_sheet_rows_converted_in_chunks(tmp_path):
    path = tmp_path / "crm_sales.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("East")
    for col, name in enumerate(["ID", "Name", "Mobile"]):
        sheet.write(1, col + 1, name)  # the table starts at B2
    for i in range(10):
        sheet.write_row(2 + i, 1, [f"E{i}", f"Name {i}", 13800138000 + i])
    sheet.write_row(13, 1, ["E10", "Wide", 1, "outside"])  # row 14 (after blank row 13): a value outside
    sheet.write_row(15, 1, ["E11", "Last", 2])  # row 16, after blank row 15; blank rows after it are not rows
    book.close()
    result = ingest([path], _rules(tmp_path, chunk_rows=3))
    assert result.quarantine[["locator", "reason_code"]].values.tolist() == [
        ["crm_sales.xlsx@East!13", "blank_row"],
        ["crm_sales.xlsx@East!14", "column_count"],
        ["crm_sales.xlsx@East!15", "blank_row"],
    ]
    assert "column E, outside the header's 4 columns" in result.quarantine["reason"].iloc[1]
    records = result.records.set_index("source_record_id")
    assert len(records) == 11 and records.loc["E11", "locator"] == "crm_sales.xlsx@East!16"
    assert json.loads(records.loc["E9", "raw"])["Mobile"] == 13800138009  # numbers stay numbers in raw
    assert records.loc["E9", "mobile"] == "13800138009"


def test_rows_are_counted_as_chunks_are_read(tmp_path):
    path = tmp_path / "crm_a.csv"
    path.write_text(HEADER + "".join(_rows(10)), encoding="utf-8")
    events: list[tuple[str, int, str | None]] = []
    with progress.listening(lambda *event: events.append(event)):
        ingest([path], _rules(tmp_path, chunk_rows=4))
    advances = [amount for event, amount, _ in events if event == "advance"]
    assert sum(advances) == 10 and len(advances) >= 3
    assert ("total", 10, "rows") in events


@pytest.mark.parametrize("chunk_rows", [0, -5])
def test_chunk_rows_must_be_positive(tmp_path, chunk_rows):
    from crmclean.errors import RulesError

    path = tmp_path / "crm_a.csv"
    path.write_text(HEADER + "".join(_rows(2)), encoding="utf-8")
    with pytest.raises(RulesError, match="chunk_rows"):
        ingest([path], _rules(tmp_path, chunk_rows=chunk_rows))
