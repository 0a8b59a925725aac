"""The generator writes the three legacy formats, with truth for every row and real hard negatives.

Files are read back with independent readers (csv module, openpyxl), never with crmclean's ingest.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crmclean.errors import CrmcleanError
from crmclean.generate import generate
from crmclean.generate.entities import build_entities, surname_pinyin
from crmclean.settings import SAMPLE_DATA_DIR

SAMPLE_SEED, SAMPLE_CUSTOMERS = 2024, 150
CN_HEADERS = [
    "客户编号",
    "姓名",
    "性别",
    "手机",
    "电话",
    "邮箱",
    "出生日期",
    "省份",
    "城市",
    "地址",
    "邮编",
    "创建时间",
]
WEB_HEADERS = [
    "Customer ID",
    "First Name",
    "Last Name",
    "Email",
    "Phone",
    "DOB",
    "Street",
    "City",
    "State",
    "ZIP",
    "Country",
    "Last Modified",
]


def read_csv_rows(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def read_truth(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    info = generate(customers=1500, seed=11, out_dir=out)
    return info, out, read_truth(info["truth"])


def sales_rows(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def test_returns_paths_and_rows_and_keeps_truth_out_of_the_input_folder(gen):
    info, out, truth = gen
    names = [Path(p).name for p in info["files"]]
    assert names == ["crm_legacy_cn.csv", "crm_web_us.csv", "crm_sales.xlsx"]
    assert Path(info["truth"]) == out / "truth" / "truth.csv"
    # a (non-recursive) folder run sees the three exports only, never the truth
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(names)
    assert info["rows"] == len(truth)
    assert list(truth.columns) == ["source", "source_record_id", "entity_id", "scenario", "group_id"]
    assert not truth.duplicated(["source", "source_record_id"]).any()


def test_legacy_cn_is_gbk_with_chinese_headers_and_chinese_formats(gen):
    info, out, truth = gen
    raw = (out / "crm_legacy_cn.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = read_csv_rows(out / "crm_legacy_cn.csv", "gbk")
    assert rows[0] == CN_HEADERS
    body = [r for r in rows[1:] if len(r) == len(CN_HEADERS)]
    names = [r[1] for r in body]
    assert sum(bool(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n)) for n in names) > 0.6 * len(names)
    assert any(re.fullmatch(r"[A-Za-z]+ [A-Za-z' .]+", n) for n in names)  # US customers in Latin
    dobs = [r[6] for r in body]
    assert any(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", d) for d in dobs)
    assert any(re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}", d) for d in dobs)
    phones = [r[3] for r in body]
    assert any(re.fullmatch(r"1\d{2} \d{4} \d{4}", p) for p in phones)
    assert any(p.startswith("+86 1") for p in phones) and any(p.startswith("0086-1") for p in phones)
    assert any(re.search(r"[０-９]", p) for p in phones)  # full-width digits
    assert any(re.fullmatch(r"0\d{2,3}-\d{7,8}", r[4]) for r in body)  # landlines with area code
    # some traditional characters (張/劉/陳/…) next to simplified
    assert any(re.search("[張劉陳楊黃趙吳孫馬鄭謝許韓馮鄧]", n) for n in names)


def test_web_us_is_utf8_bom_with_pinyin_names_and_us_formats(gen):
    info, out, truth = gen
    raw = (out / "crm_web_us.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = read_csv_rows(out / "crm_web_us.csv", "utf-8-sig")
    assert rows[0] == WEB_HEADERS
    body = [r for r in rows[1:] if len(r) == len(WEB_HEADERS)]
    assert not any(re.search(r"[\u4e00-\u9fff]", r[1] + r[2]) for r in body)  # pinyin only
    assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", r[5]) for r in body)
    phones = [r[4] for r in body]
    for pattern in (r"\(\d{3}\) \d{3}-\d{4}", r"\d{3}\.\d{3}\.\d{4}", r"\+1 \d{3} \d{3} \d{4}", r"\+86.*"):
        assert any(re.fullmatch(pattern, p) for p in phones), pattern
    assert any(re.fullmatch(r"[A-Z][a-z]+-[a-z]+", r[1]) for r in body)  # Xue-dong
    assert any(re.fullmatch(r"[A-Z]{2,}", r[2]) for r in body)  # XIE


def test_sales_workbook_has_two_sheets_numeric_phones_and_date_cells(gen):
    info, out, truth = gen
    sheets = sales_rows(out / "crm_sales.xlsx")
    assert list(sheets) == ["Accounts", "Leads"]
    acc, leads = sheets["Accounts"], sheets["Leads"]
    assert set(acc[0]) == set(leads[0]) and list(acc[0]) != list(leads[0])  # same columns, other order
    for rows in (acc, leads):
        col = {h: i for i, h in enumerate(rows[0])}
        data = [r for r in rows[1:] if any(v is not None for v in r)]
        mobiles = [r[col["Mobile"]] for r in data]
        assert sum(isinstance(m, int) for m in mobiles) > 0.6 * len(data)
        assert any(isinstance(m, int) and str(m).startswith("86") for m in mobiles)  # +86 lost its '+'
        birthdays = [r[col["Birthday"]] for r in data]
        assert sum(isinstance(b, datetime) for b in birthdays) > 0.6 * len(data)
        names = [r[col["Name"]] for r in data if isinstance(r[col["Name"]], str)]
        assert any(re.fullmatch(r"[A-Z][\w' .-]+, [A-Z]\w+.*", n) for n in names)  # Last, First


def test_truth_accounts_for_every_written_row_and_its_locator(gen):
    info, out, truth = gen
    by_source = truth.groupby("source")
    cn = read_csv_rows(out / "crm_legacy_cn.csv", "gbk")[1:]
    web = read_csv_rows(out / "crm_web_us.csv", "utf-8-sig")[1:]
    for source, rows, width in (("crm_legacy_cn", cn, len(CN_HEADERS)), ("crm_web_us", web, len(WEB_HEADERS))):
        t = by_source.get_group(source)
        assert len(t) == len(rows)
        # malformed rows (wrong column count) are named by location, like ingest does
        expected = [r[0] if r[0] and len(r) == width else f"@line:{i + 2}" for i, r in enumerate(rows)]
        assert t["source_record_id"].tolist() == expected
    sheets = sales_rows(out / "crm_sales.xlsx")
    expected = []
    for sheet, rows in sheets.items():
        col = rows[0].index("ID")
        expected += [r[col] if r and r[col] else f"@{sheet}!{i + 2}" for i, r in enumerate(rows[1:])]
    assert by_source.get_group("crm_sales")["source_record_id"].tolist() == expected
    assert (
        truth["source_record_id"].str.startswith("@Leads!").any()
        or truth["source_record_id"].str.startswith("@Accounts!").any()
    )


def test_customers_overlap_across_and_within_systems(gen):
    info, out, truth = gen
    real = truth[truth["entity_id"] != ""]
    systems_per_entity = real.groupby("entity_id")["source"].nunique()
    assert systems_per_entity.max() == 3
    assert 0.3 < (systems_per_entity >= 2).mean() < 0.9
    within = real.groupby(["entity_id", "source"]).size()
    assert (within >= 2).sum() > 10  # duplicates inside one system
    assert real["entity_id"].nunique() == 1500


def test_junk_and_hostile_rows_are_marked(gen):
    info, out, truth = gen
    junk = truth[truth["scenario"] == "junk"]
    assert (junk["entity_id"] == "").all()
    assert 0.003 < len(junk) / len(truth) < 0.02
    cn = read_csv_rows(out / "crm_legacy_cn.csv", "gbk")
    assert any(len(r) != len(CN_HEADERS) for r in cn)  # a wrong column count row
    assert any(all(v == "" for v in r) for r in cn)  # a blank row
    web_text = (out / "crm_web_us.csv").read_text(encoding="utf-8-sig")
    assert '=HYPERLINK(""http://x"",""y"")' in web_text
    assert "<script>alert(1)</script>" in (out / "crm_legacy_cn.csv").read_bytes().decode("gbk")
    hostile = truth[truth["scenario"] == "hostile_text"]
    assert len(hostile) >= 2 and (hostile["entity_id"] != "").all()
    # shared placeholder values appear in many rows of different people
    assert web_text.count("test@test.com") + web_text.count("000-000-0000") + web_text.count("n/a") >= 5


def test_hard_negative_groups_are_distinct_people_that_look_alike():
    ents = build_entities(3000, seed=5)
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(ents.group_id):
        if g:
            groups.setdefault(g, []).append(i)
    kinds = {ents.scenario[m[0]] for m in groups.values()}
    assert kinds == {"household", "twins", "jr_sr", "common_name"}
    for members in groups.values():
        kind = ents.scenario[members[0]]
        assert len(members) >= 2 and len({ents.entity_id[m] for m in members}) == len(members)
        assert len({ents.email[m] for m in members}) == len(members)
        assert len({ents.mobile[m] for m in members}) == len(members)
        if kind in ("household", "twins"):
            assert len({ents.addr[m] for m in members}) == 1
            assert len({ents.landline[m] for m in members}) == 1 and ents.landline[members[0]]
            assert len({ents.first[m] for m in members}) == len(members)
        if kind == "twins":
            assert len({ents.dob[m] for m in members}) == 1 and len({ents.last[m] for m in members}) == 1
        if kind == "jr_sr":
            a, b = members
            assert (ents.first[a], ents.last[a]) == (ents.first[b], ents.last[b])
            assert {ents.suffix[a], ents.suffix[b]} == {"Jr", "Sr"}
            years = abs(int((ents.dob[a] - ents.dob[b]).astype(int))) / 365.25
            assert 24.9 < years < 35.1
        if kind == "common_name":
            assert len({(ents.first[m], ents.last[m]) for m in members}) == 1
            assert len({ents.addr[m][1] for m in members}) == 1  # same city
            assert len({ents.dob[m] for m in members}) == len(members)
    share = sum(len(m) for m in groups.values()) / ents.n
    assert 0.05 < share < 0.2


def test_moved_customers_keep_name_birth_date_email():
    ents = build_entities(2000, seed=9)
    moved = [i for i, s in enumerate(ents.scenario) if s == "moved"]
    assert len(moved) > 50
    for i in moved:
        assert ents.old_addr[i] is not None and ents.old_addr[i] != ents.addr[i]
        assert ents.old_mobile[i] != ents.mobile[i]
        assert ents.systems[i].sum() >= 2


def test_pinyin_uses_surname_readings(gen):
    assert [surname_pinyin(s) for s in ("单", "曾", "区", "仇", "解", "查", "朴", "欧阳")] == [
        "shan",
        "zeng",
        "ou",
        "qiu",
        "xie",
        "zha",
        "piao",
        "ouyang",
    ]
    info, out, truth = gen
    ents = build_entities(1500, seed=11)
    web = read_csv_rows(out / "crm_web_us.csv", "utf-8-sig")[1:]
    t = read_truth(info["truth"])
    entity_of = dict(
        zip(t.loc[t.source == "crm_web_us", "source_record_id"], t.loc[t.source == "crm_web_us", "entity_id"])
    )
    index = {e: i for i, e in enumerate(ents.entity_id)}
    checked = 0
    for r in web:
        e = entity_of.get(r[0])
        if not e or not ents.is_cn[index[e]] or ents.scenario[index[e]] == "hostile_text":
            continue
        i = index[e]
        tokens = {r[1].lower().replace("-", ""), r[2].lower().replace("-", "")}
        assert ents.last_py[i] in tokens, (r, ents.last[i])
        checked += 1
    assert checked > 100


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(customers=80, seed=3, out_dir=tmp_path / "a")
    b = generate(customers=80, seed=3, out_dir=tmp_path / "b")
    c = generate(customers=80, seed=4, out_dir=tmp_path / "c")
    for pa, pb, pc in zip(a["files"] + [a["truth"]], b["files"] + [b["truth"]], c["files"] + [c["truth"]]):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
        assert Path(pa).read_bytes() != Path(pc).read_bytes()


def test_fewer_systems_and_tiny_sizes(tmp_path):
    one = generate(customers=1, seed=1, out_dir=tmp_path / "one")
    assert len(one["files"]) == 3 and one["rows"] >= 1
    two = generate(customers=50, seed=1, out_dir=tmp_path / "two", systems=2)
    assert [Path(p).name for p in two["files"]] == ["crm_legacy_cn.csv", "crm_web_us.csv"]
    assert set(read_truth(two["truth"])["source"]) == {"crm_legacy_cn", "crm_web_us"}
    with pytest.raises(CrmcleanError, match="at least 1"):
        generate(customers=0, seed=1, out_dir=tmp_path / "zero")


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CrmcleanError, match="cannot write"):
        generate(customers=5, seed=1, out_dir=blocker / "out")


def test_factories_build_contract_frames():
    """tests/factories.py frames carry exactly the contract columns, so other stages can use them."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from factories import SCENARIOS, all_scenarios, as_records_frame

    from crmclean.schema import CANONICAL_FIELDS, IDENTITY_COLUMNS

    for name, build in SCENARIOS.items():
        records, truth = build()
        assert list(records.columns) == ["source", "source_record_id", *CANONICAL_FIELDS], name
        assert len(records) == len(truth) >= 2 and build.__doc__, name
        assert records["source_record_id"].tolist() == truth["source_record_id"].tolist()
    records, truth = all_scenarios()
    frame = as_records_frame(records)
    assert set(IDENTITY_COLUMNS) | {"extra", "raw"} <= set(frame.columns)
    assert frame["record_key"].is_unique
    assert set(truth["scenario"]) >= {"household", "twins", "jr_sr", "common_name"}


def test_generation_scales_to_ten_thousand_customers(tmp_path):
    """Speed is measured in bench/ (bench.py prints the generator's time); here only the output."""
    info = generate(customers=10000, seed=2, out_dir=tmp_path)
    assert info["rows"] > 15000


def test_sample_data_is_the_generator_output(tmp_path):
    """sample_data/ is reproducible: `generate(150, seed=2024)` writes the very same bytes."""
    info = generate(customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED, out_dir=tmp_path)
    for p in info["files"]:
        assert (SAMPLE_DATA_DIR / Path(p).name).read_bytes() == Path(p).read_bytes(), p
    assert (SAMPLE_DATA_DIR / "truth" / "truth.csv").read_bytes() == Path(info["truth"]).read_bytes()


def test_bench_split_keeps_base_rows_in_place_and_appends_the_late_ones(tmp_path):
    """bench.py's incremental input: base rows keep their line, late customers' rows come after."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("crm_bench", Path(__file__).parent.parent / "bench" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    info = generate(customers=300, seed=8, out_dir=tmp_path / "gen")
    truth = read_truth(info["truth"])
    late = bench.split_exports(tmp_path / "gen", truth, 0.1, tmp_path / "base", tmp_path / "full", seed=1)
    assert late == 30
    t_base, t_full = read_truth(tmp_path / "base/truth/truth.csv"), read_truth(tmp_path / "full/truth/truth.csv")
    assert len(t_full) == len(truth) and len(t_base) < len(truth)
    assert t_base["entity_id"].nunique() == truth["entity_id"].nunique() - late  # junk rows stay in the base
    for name, enc in (("crm_legacy_cn.csv", "gbk"), ("crm_web_us.csv", "utf-8-sig")):
        base = read_csv_rows(tmp_path / "base" / name, enc)
        full = read_csv_rows(tmp_path / "full" / name, enc)
        assert full[: len(base)] == base and len(full) == len(read_csv_rows(tmp_path / "gen" / name, enc))
    full_sales = sales_rows(tmp_path / "full" / "crm_sales.xlsx")
    base_sales = sales_rows(tmp_path / "base" / "crm_sales.xlsx")
    for sheet, rows in base_sales.items():
        assert [tuple(r) for r in full_sales[sheet][: len(rows)]] == [tuple(r) for r in rows]
    assert sum(len(r) - 1 for r in full_sales.values()) == (t_full["source"] == "crm_sales").sum()
