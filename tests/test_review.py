"""Review workflow on a real SQLite database: export → a person fills decisions → apply."""

from __future__ import annotations

import csv

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from crmclean.errors import CrmcleanError
from crmclean.review import apply_review, export_review
from crmclean.safe_export import neutralize, unneutralize, write_table

from dbutil import seed_master, sqlite_files

FORMULA = '=HYPERLINK("http://x","y")'
XSS = "<script>alert(1)</script>"


@pytest.fixture()
def db(tmp_path):
    """A published database as the store writes it: customer_record + review_queue."""
    url = f"sqlite:///{tmp_path / 'master.db'}"
    records = pd.DataFrame(
        {
            "record_key": ["crm_a|1", "crm_b|A1", "crm_a|2", "@ops|7", "crm_a|3"],
            "source": ["crm_a", "crm_b", "crm_a", "@ops", "crm_a"],
            "source_record_id": ["1", "A1", "2", "7", "3"],
            "full_name_std": ["张三", "Zhang San", FORMULA, XSS, "李四"],
            "first_name_std": ["三", "San", None, None, "四"],
            "mobile_std": ["+8613812348000", "+8613812348000", None, "+14155552671", None],
            "email_std": ["zhang@example.cn", "zhang@example.cn", "-1+1@x.com", None, None],
            "phone_std": ["+8613812348000", "+8613812348000", None, "+14155552671", None],
            "birth_date_std": ["1985-03-04", None, None, None, None],
            "address_std": ["上海市浦东新区世纪大道1号", None, None, None, None],
            "city_std": ["上海", None, None, None, None],
        }
    )
    queue = pd.DataFrame(
        {
            "record_key_l": ["crm_a|1", "crm_a|2", "crm_a|3"],
            "record_key_r": ["crm_b|A1", "@ops|7", "crm_b|A1"],
            "match_probability": [0.62, 0.41, 0.55],
            "match_weight": [1.2, -0.3, 0.4],
            "evidence": [
                '{"first_name": {"level": "close", "weight": 3.2}, "phone": {"level": "mobile_exact", "weight": 8.1},'
                ' "email": {"level": "null", "weight": 0.0}}',
                '{"first_name": {"level": "different", "weight": -4.0}}',
                "{}",
            ],
            "review_reason": [
                "uncertain: probability 0.620 between review 0.6 and match 0.99",
                "hard constraint: generation_conflict (probability 0.9998 ≥ match 0.99)",
                None,  # a row written before the column existed
            ],
        }
    )
    return seed_master(url, {"customer_record": records, "review_queue": queue})


def _decisions(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        return pd.read_sql("SELECT * FROM review_decision ORDER BY record_key_l", engine)
    finally:
        engine.dispose()


TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_export_csv_is_a_fillable_sheet_masked_by_default(db, tmp_path):
    path = tmp_path / "review.csv"
    assert export_review(db, path) == 3
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(sheet.columns[:5]) == ["decision", "decided_by", "match_probability", "match_weight", "why"]
    assert (sheet["decision"] == "").all()
    assert list(sheet["match_probability"]) == ["0.62", "0.55", "0.41"]  # most likely first, plain numbers
    assert list(sheet["why"]) == [
        "uncertain: probability 0.620 between review 0.6 and match 0.99",
        "uncertain: probability 0.550 between the review and match thresholds",  # no stored reason
        "hard constraint: generation_conflict (probability 0.9998 ≥ match 0.99)",
    ]
    text = path.read_text(encoding="utf-8-sig")
    for secret in ("张三", "Zhang San", "zhang@example.cn", "+8613812348000", "世纪大道", "1985-03-04", "HYPERLINK"):
        assert secret not in text, secret
    first = sheet.iloc[0]
    assert (first["full_name_std_l"], first["email_std_l"]) == ("张*", "z***@example.cn")
    assert first["phone_std_l"] == "'+86 138****8000"  # CSV: a text starting with + is neutralised
    assert sheet.iloc[2]["record_key_r"] == "'@ops:7"  # source:id, as `crmclean explain` takes
    with path.open(encoding="utf-8-sig", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c[:1] in TRIGGERS and not _is_number(c)]  # numbers are numbers


def test_export_csv_show_pii_neutralises_every_formula(db, tmp_path):
    path = tmp_path / "review.csv"
    export_review(db, path, show_pii=True)
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    first = sheet.iloc[0]
    assert (first["full_name_std_l"], first["full_name_std_r"]) == ("张三", "Zhang San")
    assert first["address_std_l"] == "上海市浦东新区世纪大道1号"
    hostile = sheet[sheet["record_key_l"] == "crm_a:2"].iloc[0]
    assert hostile["full_name_std_l"] == "'" + FORMULA
    assert hostile["email_std_l"] == "'-1+1@x.com"
    assert hostile["full_name_std_r"] == XSS  # plain text, nothing to neutralise in a CSV
    assert hostile["record_key_r"] == "'@ops:7"


def _cells(path) -> dict[str, list]:
    """Column name → the cells below the header (openpyxl cells, None-valued included)."""
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows())
    return {str(h.value): [r[i] for r in rows[1:]] for i, h in enumerate(rows[0])}


def test_export_xlsx_has_typed_cells_readable_evidence_and_never_formulas(db, tmp_path):
    path = tmp_path / "review.xlsx"
    assert export_review(db, path, show_pii=True) == 3
    cols = _cells(path)
    every = [c for cells in cols.values() for c in cells if c.value is not None]
    assert every and not [c for c in every if c.data_type == "f"]  # 'f' would be a formula
    for name in ("match_probability", "match_weight"):
        assert [c.data_type for c in cols[name]] == ["n", "n", "n"], name
    assert [c.value for c in cols["match_weight"]] == [1.2, 0.4, -0.3]
    assert all(
        c.data_type == "s"
        for n, cells in cols.items()
        if n not in ("match_probability", "match_weight")
        for c in cells
        if c.value is not None
    )
    assert cols["phone_std_l"][0].value == "+8613812348000"  # a string cell: no apostrophe to see
    assert cols["full_name_std_l"][2].value == FORMULA  # a string cell is never run as a formula
    assert cols["record_key_r"][2].value == "@ops:7"
    assert cols["evidence"][0].value == (
        "phone: mobile_exact, +8.10 (+8613812348000 | +8613812348000)\nfirst_name: close, +3.20 (三 | San)"
    )
    assert cols["why"][2].value.startswith("hard constraint: generation_conflict")
    sheet = openpyxl.load_workbook(path).active
    rules = sheet.data_validations.dataValidation
    assert [(r.type, r.formula1, str(r.sqref)) for r in rules] == [("list", '"match,no_match"', "A2:A4")]


def test_export_xlsx_masks_by_default(db, tmp_path):
    path = tmp_path / "review.xlsx"
    export_review(db, path)
    cols = _cells(path)
    values = " ".join(str(c.value) for cells in cols.values() for c in cells if c.value is not None)
    for secret in ("张三", "Zhang San", "zhang@example.cn", "+8613812348000", "世纪大道", "HYPERLINK", "alert"):
        assert secret not in values, secret
    assert cols["phone_std_l"][0].value == "+86 138****8000"
    assert "phone: mobile_exact, +8.10 (+86 138****8000 | +86 138****8000)" in cols["evidence"][0].value


def test_apply_csv_decisions_and_reapply_is_a_no_op(db, tmp_path):
    path = tmp_path / "review.csv"
    export_review(db, path)
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    sheet.loc[sheet["record_key_l"] == "crm_a:1", ["decision", "decided_by"]] = ["match", "ana"]
    sheet.loc[sheet["record_key_l"] == "crm_a:2", "decision"] = "No-Match"  # people type loosely
    sheet.to_csv(path, index=False, encoding="utf-8-sig")
    assert apply_review(db, path) == 2
    got = _decisions(db)
    assert list(got["record_key_l"]) == ["crm_a|1", "crm_a|2"]
    assert list(got["record_key_r"]) == ["crm_b|A1", "@ops|7"]  # the neutralising quote is removed again
    assert list(got["decision"]) == ["match", "no_match"]
    assert got.loc[0, "decided_by"] == "ana" and got.loc[1, "decided_by"]
    assert set(got["origin"]) == {"review:review.csv"}
    assert got["decided_at"].notna().all()
    assert apply_review(db, path) == 0
    assert len(_decisions(db)) == 2
    # decided pairs leave the next export
    assert export_review(db, tmp_path / "again.csv") == 1


def test_apply_xlsx_round_trip(db, tmp_path):
    path = tmp_path / "review.xlsx"
    export_review(db, path)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    col = header.index("decision") + 1
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row=row, column=col, value="no_match")
    book.save(path)
    assert apply_review(db, path) == 3
    assert set(_decisions(db)["origin"]) == {"review:review.xlsx"}


def test_apply_reads_a_sheet_exported_before_refs_were_source_colon_id(db, tmp_path):
    """Workbooks exported by older versions name the records with the stored `source|id` key."""
    path = tmp_path / "old.xlsx"
    export_review(db, path)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for row in range(2, sheet.max_row + 1):
        for column in ("record_key_l", "record_key_r"):
            cell = sheet.cell(row=row, column=header.index(column) + 1)
            cell.value = cell.value.replace(":", "|", 1)
        sheet.cell(row=row, column=header.index("decision") + 1, value="match")
    book.save(path)
    assert sheet.cell(row=2, column=header.index("record_key_l") + 1).value == "crm_a|1"
    assert apply_review(db, path) == 3
    got = _decisions(db)
    assert set(zip(got["record_key_l"], got["record_key_r"])) == {
        ("crm_a|1", "crm_b|A1"),
        ("crm_a|2", "@ops|7"),
        ("crm_a|3", "crm_b|A1"),
    }
    assert apply_review(db, path) == 0  # applying the same sheet again changes nothing


def test_bad_decision_names_file_row_and_column(db, tmp_path):
    path = tmp_path / "review.csv"
    export_review(db, path)
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    sheet.loc[0, "decision"] = "match"
    sheet.loc[1, "decision"] = "maybe"
    sheet.to_csv(path, index=False, encoding="utf-8-sig")
    with pytest.raises(CrmcleanError) as err:
        apply_review(db, path)
    assert str(err.value) == f"{path}: row 3, column 'decision': 'maybe' is not one of match, no_match (or empty)"
    assert not sa.inspect(sa.create_engine(db)).has_table("review_decision") or _decisions(db).empty


def test_missing_columns_and_missing_queue_are_clear_errors(tmp_path, db):
    path = tmp_path / "wrong.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CrmcleanError, match=r"wrong.csv: column 'decision' is missing"):
        apply_review(db, path)
    empty_db = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(CrmcleanError, match="no crmclean master at"):
        export_review(empty_db, tmp_path / "x.csv")
    with pytest.raises(CrmcleanError, match="unsupported export format .json"):
        export_review(db, tmp_path / "x.json")


@pytest.mark.parametrize("text", ["=1+1", "+86 138", "-5", "@SUM(A1)", "\tx", "\rx", "plain", "", "'quoted"])
def test_neutralize_round_trip(text):
    safe = neutralize(text)
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert unneutralize(safe) == text


def test_write_table_neutralises_headers_too(tmp_path):
    frame = pd.DataFrame({"=cmd": ["=2+3", None, 5]})
    path = write_table(frame, tmp_path / "t.csv")
    assert path.read_text(encoding="utf-8-sig").splitlines() == [
        "'=cmd",
        "'=2+3",
        '""',
        "5",
    ]  # a lone empty cell is quoted so the row is kept


def test_review_on_a_missing_or_empty_database_refuses_and_creates_nothing(tmp_path):
    """export never creates a database (issue 15); apply refuses a database crmclean never
    wrote instead of creating a lone review_decision table (issue 16)."""
    url = f"sqlite:///{tmp_path / 'db' / 'typo.db'}"
    (tmp_path / "db").mkdir()
    sheet = tmp_path / "review.csv"
    pd.DataFrame({"decision": ["match"], "record_key_l": ["a|1"], "record_key_r": ["b|2"]}).to_csv(sheet, index=False)
    for command in (lambda: export_review(url, tmp_path / "out.csv"), lambda: apply_review(url, sheet)):
        with pytest.raises(CrmcleanError) as info:
            command()
        assert str(info.value) == f"no crmclean master at {url}: run 'crmclean run' first"
    assert sqlite_files(tmp_path / "db") == [] and not (tmp_path / "out.csv").exists()
    empty = tmp_path / "db" / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()  # a database, but not a crmclean master
    with pytest.raises(CrmcleanError, match="no crmclean master at"):
        apply_review(f"sqlite:///{empty}", sheet)
    assert not sa.inspect(sa.create_engine(f"sqlite:///{empty}")).get_table_names()


def test_decisions_reach_the_store_as_overrides(tmp_path):
    """Contract with crmclean.store: its own review_decision table, read back by load_state."""
    from crmclean.store import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)  # creates the published schema
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO review_queue (record_key_l, record_key_r, match_probability, match_weight, evidence, status) "
                    "VALUES ('a|1', 'b|2', 0.6, 0.5, '{}', 'open'), ('a|3', 'b|4', 0.5, 0.1, '{}', 'open')"
                )
            )
        engine.dispose()
        path = tmp_path / "review.csv"
        assert export_review(url, path) == 2
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        sheet["decision"] = ["match", "no_match"]
        sheet.to_csv(path, index=False, encoding="utf-8-sig")
        assert apply_review(url, path) == 2
        overrides = store.load_state().overrides
        got = sorted(zip(overrides["record_key_l"], overrides["record_key_r"], overrides["decision"]))
        assert got == [("a|1", "b|2", "match"), ("a|3", "b|4", "no_match")]
    finally:
        store.close()


from hypothesis import example, given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text())
@example("'=x")  # already wears an apostrophe before a formula: found by hypothesis
@example("'\t")
def test_any_text_is_neutralised_and_round_trips(text):
    safe = neutralize(text)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unneutralize(safe) == text


def test_every_queued_pair_says_why_it_is_in_review():
    """review_queue_rows names the hard constraint that held a likely match back, or where an
    uncertain pair's probability sits; probabilities near 1 never print as 1."""
    from crmclean.link.decisions import probability_text
    from crmclean.store.build import review_queue_rows

    records = pd.DataFrame({"record_key": ["a|1", "b|1", "a|2", "b|2", "a|3"], "source": ["a", "b", "a", "b", "a"]})
    pairs = pd.DataFrame(
        {
            "record_key_l": ["a|1", "a|2", "a|3", "a|1"],
            "record_key_r": ["b|1", "b|2", "b|2", "b|2"],
            "match_probability": [0.99995, 0.62, 0.999, 0.3],
            "match_weight": [14.3, 0.7, 10.0, -1.2],
            "decision": ["review", "review", "review", "non_match"],
            "cap": ["birth_dates_decades_apart", "", None, ""],
        }
    )
    rows = review_queue_rows("R1", pairs, records, None, None, thresholds={"match": 0.99, "review": 0.6})
    assert dict(zip(rows["record_key_l"], rows["review_reason"])) == {
        "a|1": "hard constraint: birth_dates_decades_apart (probability 0.99995 ≥ match 0.99)",
        "a|2": "uncertain: probability 0.620 between review 0.6 and match 0.99",
        "a|3": "held by a hard constraint (probability 0.999 ≥ match 0.99)",  # a stored edge: no name kept
    }
    assert [probability_text(p) for p in (0.9999999, 1.0, 0.0004, 0.5)] == ["0.9999999", "1.000", "0.0004", "0.500"]


def test_a_review_pair_rebuilt_from_a_stored_edge_names_its_constraint(tmp_path):
    """match_edge.cap (added in place to a master written before it existed) is read by the slim
    prior an incremental run starts from, so a queue row rebuilt from a kept edge names the
    constraint instead of "held by a hard constraint"."""
    from crmclean.store import open_store
    from crmclean.store.build import review_queue_rows

    url = f"sqlite:///{tmp_path / 'old.db'}"
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the shape of a master written before match_edge.cap existed
        conn.exec_driver_sql('ALTER TABLE "match_edge" DROP COLUMN "cap"')
    old_edge = {"record_key_l": "a|1", "record_key_r": "b|1", "match_probability": 0.999, "decision": "review"}
    seed_master(url, {"match_edge": pd.DataFrame([old_edge])})  # the store adds the column back first
    with engine.begin() as conn:
        assert conn.exec_driver_sql('SELECT cap FROM "match_edge"').scalar_one() is None
        conn.exec_driver_sql(
            "INSERT INTO match_edge (record_key_l, record_key_r, match_probability, decision, cap) "
            "VALUES ('a|2', 'b|2', 0.9998, 'review', 'generation_conflict'), ('a|3', 'b|3', 0.7, 'review', '')"
        )
    engine.dispose()
    store = open_store(url)
    try:
        edges = store.load_state(record_columns=["source"]).edges  # slim, as an incremental run loads it
    finally:
        store.close()
    records = pd.DataFrame({"record_key": ["a|1", "b|1", "a|2", "b|2", "a|3", "b|3"], "source": list("ababab")})
    rows = review_queue_rows("R2", edges, records, None, None, thresholds={"match": 0.99, "review": 0.6})
    assert dict(zip(rows["record_key_l"], rows["review_reason"])) == {
        "a|1": "held by a hard constraint (probability 0.999 ≥ match 0.99)",  # written before: no name
        "a|2": "hard constraint: generation_conflict (probability 0.9998 ≥ match 0.99)",
        "a|3": "uncertain: probability 0.700 between review 0.6 and match 0.99",
    }


def test_crmclean_export_of_the_review_queue_masks_both_record_summaries(tmp_path):
    """`crmclean export --include review` (masked by default) must not leak the records' JSON
    summaries the queue stores beside each pair."""
    from crmclean.export import export_tables

    queue = pd.DataFrame(
        {
            "record_key_l": ["a|1"],
            "record_key_r": ["b|1"],
            "summary_l": ['{"source": "a", "full_name": "张三", "email": "zhang@example.cn", "city": "上海"}'],
            "summary_r": ['{"source": "b", "phone": "+8613812348000", "address": "世纪大道1号"}'],
        }
    )
    (item,) = export_tables({"review": queue}, tmp_path / "review.csv")
    text = item.path.read_text(encoding="utf-8-sig")
    for secret in ("张三", "zhang@example.cn", "+8613812348000", "世纪大道"):
        assert secret not in text, secret
    assert "张*" in text and "z***@example.cn" in text and "上海" in text  # a city is not personal
    (shown,) = export_tables({"review": queue}, tmp_path / "shown.csv", show_pii=True)
    assert "张三" in shown.path.read_text(encoding="utf-8-sig")
