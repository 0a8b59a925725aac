"""Issue 12: every column the user gives is used, names match across scripts, junk is missing,
no field is required. Real CSV files written here go through ingest and standardize."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmclean.ingest import ingest
from crmclean.settings import Rules, load_rules
from crmclean.standardize import quarantine_unidentifiable, standardize
from crmclean.standardize.names import _char_pinyin, segment_pinyin, standardize_name, surname_key
from crmclean.standardize.text import junk_kind, standardize_attribute

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(tmp_path: Path, name: str, text: str, rules: Rules | None = None):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rules = rules or Rules(directory=tmp_path)
    records = ingest([path], rules).records
    std, _ = standardize(records, rules, workers=1)
    return std.set_index("source_record_id", drop=False)


# ---------------------------------------------------------------------------------------------
# Pinyin in any spacing, casing, hyphenation or order gives the Hanzi's keys

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤单"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂东凤雪华建国文辉玲红梅鹏飞宇浩然婷欣怡嘉俊志"


def _given_forms(syllables: list[str]) -> list[str]:
    """One given name as a user may type it: joined, camel case, hyphenated, spaced, upper, lower."""
    cap = [s.capitalize() for s in syllables]
    forms = [
        "".join(syllables).capitalize(),
        "".join(cap),
        "-".join(cap),
        "-".join(syllables).capitalize(),
        "".join(syllables).upper(),
        "".join(syllables),
    ]
    if len(syllables) > 1:
        forms += [" ".join(cap), " ".join(syllables)]
    return forms


@PROPS
@given(st.sampled_from(SURNAMES), st.text(alphabet=GIVEN, min_size=1, max_size=2), st.data())
def test_any_pinyin_variant_gives_the_hanzi_name_key(surname, given, data):
    hanzi = standardize_name(surname + given, None, None)
    sur = surname_key(surname)
    syllables = [_char_pinyin(c) for c in given]
    given_text = data.draw(st.sampled_from(_given_forms(syllables)), label="given")
    sur_text = data.draw(st.sampled_from([sur.capitalize(), sur.upper(), sur]), label="surname")
    spaced = " " in given_text
    # Documented ambiguity: "Dong Feng Du" (spaced given name, surname last in plain case) is
    # read surname-first when the first syllable is itself a surname.
    orders = ["surname_first"]
    if not spaced or sur_text.isupper() and not given_text.isupper():
        orders.append("surname_last")
    order = data.draw(st.sampled_from(orders), label="order")
    full = f"{sur_text} {given_text}" if order == "surname_first" else f"{given_text} {sur_text}"
    latin = standardize_name(full, None, None)
    assert latin[6] == hanzi[6], (full, latin[4:7], hanzi[4:7])
    # the same with the parts in their own columns, in either column order
    columns = standardize_name(None, given_text, sur_text)
    assert columns[6] == hanzi[6]
    assert {columns[4], columns[5]} == {hanzi[4], hanzi[5]}


@pytest.mark.parametrize(
    "full",
    [
        "Du Dong Feng",
        "DongFeng Du",
        "Dong-feng DU",
        "dongfeng du",
        "杜东凤",
        "Du Dongfeng",
        "DuDongFeng",
        "Dong Feng DU",
    ],
)
def test_du_dong_feng_written_any_way_has_one_key(full):
    result = standardize_name(full, None, None)
    assert result[6] == "dongfeng du"
    assert (result[4], result[5]) == ("dongfeng", "du")  # first_name_key, last_name_key


@pytest.mark.parametrize(
    "full, key",
    [
        ("Ana Li", "ana li"),
        ("Dong Smith", "dong smith"),
        ("Anna Mei Li", "anna li"),
        ("John Adam Smith", "john smith"),
        ("Mary Ann Lee", "lee mary"),
    ],
)
def test_latin_names_are_not_read_as_pinyin(full, key):
    assert standardize_name(full, None, None)[6] == key


def test_segment_pinyin():
    assert segment_pinyin("dongfeng") == ("dong", "feng")
    assert segment_pinyin("xian") == ("xian",)  # fewest syllables
    assert segment_pinyin("smith") is None


# ---------------------------------------------------------------------------------------------
# Junk is missing, never a different value


@pytest.mark.parametrize(
    "kind, values",
    [
        (
            "formula",
            [
                "@SUM(1+1)*cmd|' /c calc'!A0",
                '=HYPERLINK("http://x","y")',
                "=A1",
                "+1+2",
                "-2+3",
                "=cmd|' /C notepad'!A0",
                "@A1",
                "=1+1",
            ],
        ),
        (
            "markup",
            ["<script>alert(1)</script>", "<b>Ann Lee</b>", "<img src=x onerror=alert(1)>", "<a href='x'>Bo</a>"],
        ),
        (
            "placeholder",
            [
                "N/A",
                "n/a",
                "test",
                "TEST",
                "asdf",
                "asdfgh",
                "xxx",
                "XXXX",
                "unknown",
                "-",
                "none",
                "未知",
                "无",
                "Test123",
                "qwerty",
                "lorem ipsum",
                "test test",
            ],
        ),
    ],
)
def test_junk_kinds(kind, values):
    for value in values:
        assert junk_kind(value) == kind, value


@pytest.mark.parametrize(
    "value",
    [
        "Ann Lee",
        "O'Neil",
        "Anne-Marie",
        "Li Na",
        "Na",
        "Xu",
        "谢雪东",
        "+ Smith",
        "@home",
        "Abbott",
        "Testa",
        "Axel",
        "De La Cruz",
        "Dr. No",
    ],
)
def test_real_values_are_not_junk(value):
    assert junk_kind(value) is None


def test_junk_in_every_name_field_is_null_with_flag_junk(tmp_path):
    std = _run(
        tmp_path,
        "crm.csv",
        "id,full_name,first_name,last_name,middle_name\n"
        "1,\"@SUM(1+1)*cmd|' /c calc'!A0\",Ana,Li,<b>x</b>\n"
        "2,Ana Li,<script>alert(1)</script>,Li,\n"
        "3,,asdf,Li,N/A\n"
        '4,Ana Li,Ana,=HYPERLINK("x","Li"),\n',
    )
    assert std.loc["1", "full_name_std"] == "Ana Li" and "junk" in std.loc["1", "full_name_flag"]
    assert std.loc["1", "middle_name_std"] is None and std.loc["1", "attr_middle_name_std"] is None
    assert std.loc["2", "first_name_std"] == "Ana" and "junk" in std.loc["2", "first_name_flag"]
    assert std.loc["3", "first_name_std"] is None and "junk" in std.loc["3", "first_name_flag"]
    assert std.loc["3", "name_key"] == "li"
    assert std.loc["4", "last_name_std"] == "Li" and "junk" in std.loc["4", "last_name_flag"]
    # the raw values are kept as read
    assert std.loc["1", "full_name"].startswith("@SUM") and std.loc["2", "first_name"].startswith("<script>")


def test_junk_full_name_is_not_a_different_given_name(tmp_path):
    std = _run(tmp_path, "crm.csv", "id,name,email\n1,Ana Li,ana@x.com\n2,\"@SUM(1+1)*cmd|' /c calc'!A0\",ana@x.com\n")
    assert std.loc["2", "first_name_key"] is None and std.loc["2", "name_key"] is None  # null, not "different"


# ---------------------------------------------------------------------------------------------
# Attributes: categorical columns, birth place, occupation, second names


def test_attribute_columns_are_standardized(tmp_path):
    rows = ["id,first_name,middle_name,last_name,Segment,birth_place,occupation"]
    segments = ["Gold ", "GOLD", "silver", "Ｓｉｌｖｅｒ", "n/a", "gold"]
    for i, seg in enumerate(segments):
        rows.append(f"{i},Hans,{'Peter' if i % 2 else ''},Müller,{seg},{'Berlin' if i < 3 else 'MÜNCHEN'},Bäcker")
    std = _run(tmp_path, "de.csv", "\n".join(rows) + "\n")
    assert list(std["attr_segment_std"]) == ["gold", "gold", "silver", "silver", None, "gold"]
    assert list(std["attr_birth_place_std"]) == ["berlin"] * 3 + ["münchen"] * 3
    assert set(std["attr_occupation_std"]) == {"bäcker"}
    assert list(std["attr_middle_name_std"]) == [None, "peter"] * 3
    assert std.loc["1", "full_name_std"] == "Hans Peter Müller"
    assert std.loc["1", "name_key"] == std.loc["0", "name_key"] == "hans muller"  # second names leave the key alone
    assert std.loc["1", "Segment" if "Segment" in std.columns else "attr_segment"] == "GOLD"  # raw kept


def test_middle_name_fills_a_missing_first_name_and_second_surname_is_kept(tmp_path):
    std = _run(
        tmp_path,
        "es.csv",
        "id,first_name,second_forename,surname,second_surname\n1,,Carlos,García,López\n2,Juan,Carlos,García,\n",
    )
    assert std.loc["1", "first_name_std"] == "Carlos" and std.loc["1", "name_key"] == "carlos garcia"
    assert std.loc["1", "second_last_name_std"] == "López" and std.loc["1", "attr_second_last_name_std"] == "lópez"
    assert std.loc["1", "full_name_std"] == "Carlos García López"


def test_standardize_attribute():
    assert standardize_attribute("  Senior   Engineer ") == "senior engineer"
    assert standardize_attribute("ＳＴＲＡßＥ") == "strasse"
    assert standardize_attribute("=1+1") is None and standardize_attribute("unknown") is None
    assert standardize_attribute(None) is None


# ---------------------------------------------------------------------------------------------
# Dates: split columns, old dates kept and flagged; no field is required


def test_split_birth_date_and_old_dates_reach_the_standardized_frame(tmp_path):
    std = _run(
        tmp_path,
        "hist.csv",
        "rec_id,given_name,surname,birth_day,birth_month,birth_year\n"
        "a,Johann,Bach,21,3,1685\nb,Clara,Schumann,,9,1819\nc,Ada,Lovelace,,,1815\nd,Eve,Future,1,1,2999\n",
    )
    assert std.loc["a", "birth_date_std"] == "1685-03-21" and "implausible" in std.loc["a", "birth_date_flag"]
    assert std.loc["b", "birth_date_std"] == "1819-09" and "partial" in std.loc["b", "birth_date_flag"]
    assert std.loc["c", "birth_date_std"] == "1815"
    assert std.loc["d", "birth_date_std"] == "2999-01-01" and "implausible" in std.loc["d", "birth_date_flag"]


def test_names_plus_one_field_are_enough_and_nothing_at_all_is_quarantined(tmp_path):
    std = _run(
        tmp_path,
        "thin.csv",
        "id,first_name,last_name,dob,postcode,city,ssn,email\n"
        "1,Ana,Li,1990-01-02,,,,\n"  # names + birth date
        "2,Bo,Wu,,10001,,,\n"  # names + postcode
        "3,Cy,Xu,,,Berlin,,\n"  # names + city
        "4,,,1990-01-02,10001,Berlin,,\n"  # no name, e-mail, phone or national id
        "5,,,,,,536-22-8706,\n"  # a national id alone identifies
        "6,N/A,test,1990-01-02,,,,\n",
    )  # junk names only
    kept, quarantine = quarantine_unidentifiable(std, load_rules())
    assert set(kept["source_record_id"]) == {"1", "2", "3", "5"}
    assert set(quarantine["source_record_id"]) == {"4", "6"}
    assert "national id" in quarantine.iloc[0]["reason"]


def test_junk_in_address_city_and_company_is_missing(tmp_path):
    std = _run(
        tmp_path,
        "crm.csv",
        "id,name,address,city,company\n"
        '1,Ana Li,"=HYPERLINK(""http://x"",""1 Main St"")",<script>x</script>,"@SUM(1+1)*cmd|\' /c calc\'!A0"\n'
        "2,Bo Wu,1 Main St,Springfield,<b>Acme</b>\n",
    )
    assert std.loc["1", "address_std"] is None and "junk" in std.loc["1", "address_flag"]
    assert std.loc["1", "city_std"] is None and "junk" in std.loc["1", "city_flag"]
    assert std.loc["1", "company_std"] is None and "junk" in std.loc["1", "company_flag"]
    assert std.loc["2", "company_std"] is None and std.loc["2", "address_std"] is not None
    assert std.loc["1", "address"].startswith("=HYPERLINK")  # raw kept


# ---------------------------------------------------------------------------------------------
# Invisible characters (issue 16): stripped from standardized values, raw kept, flagged


@pytest.mark.parametrize(
    "kind, chars",
    [
        ("bidi controls", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"]),
        ("zero-width", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]),
        ("other format (Cf)", ["\u00ad", "\u180e", "\U000e0041", "\ufff9", "\u2064"]),
        ("NUL and controls", ["\x00", "\x07", "\x1b"]),
    ],
)
def test_format_characters_are_removed_and_flagged(tmp_path, kind, chars):
    rows = ["id,first_name,last_name,city,company"]
    for i, ch in enumerate(chars):
        rows.append(f"{i},An{ch}na,{ch}Li,Spring{ch}field,Acme{ch} Inc")
    path = tmp_path / "crm.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    records = ingest([path], Rules(directory=tmp_path)).records  # a NUL is kept, escaped as U+2400
    std, _ = standardize(records, Rules(), workers=1)
    assert list(std["first_name_std"]) == ["Anna"] * len(chars), kind
    assert list(std["last_name_std"]) == ["Li"] * len(chars)
    assert set(std["name_key"]) == {"anna li"}
    assert set(std["company_std"]) == {"Acme Inc"}
    expected = ["nul_removed" if ch == "\x00" else "format_chars_removed" for ch in chars]
    assert all(code in f for code, f in zip(expected, std["first_name_flag"]))
    assert all(code in f for code, f in zip(expected, std["company_flag"]))
    kept = [ch.replace("\x00", "\u2400") for ch in chars]
    assert all(ch in raw for ch, raw in zip(kept, std["first_name"]))  # raw kept as read (NUL escaped)
