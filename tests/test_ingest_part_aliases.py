"""Birth dates split over RLdata's short headers (`by`, `bm`, `bd`) are read as one date."""

from __future__ import annotations

from pathlib import Path

from crmclean.ingest import ingest
from crmclean.settings import Rules
from crmclean.standardize.dates import standardize_date


def test_rldata_by_bm_bd_headers_make_one_birth_date(tmp_path: Path):
    path = tmp_path / "rldata10000.tsv"
    path.write_text(
        "fname_c1\tfname_c2\tlname_c1\tlname_c2\tby\tbm\tbd\n"
        "CARSTEN\tNA\tMEIER\tNA\t1949\t7\t22\n"
        "GERD\tNA\tBAUER\tNA\t1968\t7\t27\n"
        "ROBERT\tNA\tHARTMANN\tNA\t1930\t4\t3\n",
        encoding="utf-8",
    )
    result = ingest([path], Rules(directory=tmp_path, sources={}, columns={}))
    mapping = result.mapping["rldata10000"]["files"]["rldata10000.tsv"][""]
    assert (mapping["by"], mapping["bm"], mapping["bd"]) == ("birth_date.year", "birth_date.month", "birth_date.day")
    dates = result.records.set_index("first_name")["birth_date"]
    assert dates["CARSTEN"] == "1949-07-22" and dates["GERD"] == "1968-07-27"
    assert dates["ROBERT"] == "1930-04-03"
    assert result.records.set_index("first_name").loc["ROBERT", "last_name"] == "HARTMANN"


def test_missing_markers_in_date_parts_make_a_partial_date_never_a_garbage_string(tmp_path: Path):
    """R writes a missing value as `NA`, other tools as `N/A`, `.` or nothing: such a part is
    missing, so the date keeps what is known in reduced precision (flagged `partial`), as a
    year-only or year-month date in any other column is."""
    path = tmp_path / "register.tsv"
    path.write_text(
        "fname_c1\tlname_c1\tby\tbm\tbd\n"
        "ROBERT\tHARTMANN\t1930\t4\tNA\n"
        "ERIKA\tVOGEL\t1941\tN/A\t.\n"
        "KLAUS\tWOLF\t1952\t.\t\n"
        "UTE\tKRAUSE\t1960\tNA\t12\n"
        "OTTO\tLANG\tNA\t5\t17\n"
        "KARL\tBECK\t1944\t0\t0\n"
        "ANNA\tROTH\t1970\t13\t40\n",
        encoding="utf-8",
    )
    result = ingest([path], Rules(directory=tmp_path, sources={}, columns={}))
    dates = result.records.set_index("first_name")["birth_date"]
    assert dates["ROBERT"] == "1930-04"  # day NA: year and month
    assert dates["ERIKA"] == "1941" and dates["KLAUS"] == "1952"  # month missing: year only
    assert dates["UTE"] == "1960"  # a day without its month says nothing
    assert dates["OTTO"] is None  # no year: no date (not "NA-5-17")
    assert dates["KARL"] == "1944-00-00"  # 0 may be a mistyped 10: kept, to be flagged invalid
    assert dates["ANNA"] == "1970-13-40"  # real garbage is passed on, to be flagged invalid
    std = {name: standardize_date(dates[name], field="birth_date") for name in ("ROBERT", "ERIKA", "ANNA", "KARL")}
    assert std["ROBERT"][0] == "1930-04" and "partial" in std["ROBERT"][1]
    assert std["ERIKA"][0] == "1941" and "partial" in std["ERIKA"][1]
    assert std["ANNA"][0] is None and "invalid" in std["ANNA"][1]
    assert std["KARL"][0] is None and "invalid" in std["KARL"][1]


def test_rldata_na_second_names_are_missing_not_a_shared_value(tmp_path: Path):
    """R's NA fills 91 % of RLdata's fname_c2: as the column's most common value it is that column's
    missing marker, so two records without a second name do not "agree" on `na`; a middle name
    Na among other names (娜, a given name) stays a name."""
    from crmclean.standardize import standardize

    path = tmp_path / "rldata.tsv"
    rows = ["fname_c1\tfname_c2\tlname_c1\tlname_c2\tby\tbm\tbd"]
    rows += [f"HANS\tNA\tMEIER{i}\tNA\t1949\t7\t22" for i in range(5)] + ["UWE\tPETER\tBAUER\tNA\t1950\t1\t2"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rules = Rules(directory=tmp_path, sources={}, columns={})
    std, _ = standardize(ingest([path], rules).records, rules)
    assert std["attr_middle_name_std"].tolist() == [None] * 5 + ["peter"]
    assert std["attr_second_last_name_std"].isna().all()
    assert std["full_name_std"].tolist()[0] == "Hans Meier0" and std["middle_name_std"].tolist()[-1] == "Peter"
    other = tmp_path / "names.csv"
    other.write_text("first_name,middle_name,last_name\nLi,Na,Wang\nLi,Mei,Chen\nJo,Ann,Wu\n", encoding="utf-8")
    std, _ = standardize(ingest([other], rules).records, rules)
    assert std["attr_middle_name_std"].tolist() == ["na", "mei", "ann"]


def test_headers_named_by_their_last_words_patentsview(tmp_path: Path):
    """PatentsView's `raw_inventor_name_first` / `raw_inventor_name_last`, `raw_city`,
    `raw_assignee_organization`: a field named by the header's last words after qualifiers, in
    either order of the last two (`name_first`); a whole-header alias wins over such a tail, and a
    bare `name` or `id` after a qualifier (`file_name`, `patent_id`) is no field."""
    path = tmp_path / "inventors.csv"
    path.write_text(
        "mention_id,patent_id,file_name,raw_inventor_name_first,raw_inventor_name_last,raw_city,raw_state,"
        "raw_country,raw_assignee_organization,emergency_phone,phone\n"
        "US1-0,1,a.xml,Jean-Marc,Dupont,Paris,,FR,Acme SA,555,+33 1 42 68 53 00\n"
        "US2-0,2,b.xml,Jean Marc,Dupont,Paris,,FR,Acme,556,+33 1 42 68 53 01\n",
        encoding="utf-8",
    )
    result = ingest([path], Rules(directory=tmp_path, sources={}, columns={}))
    mapping = result.mapping["inventors"]["files"]["inventors.csv"][""]
    assert mapping["raw_inventor_name_first"] == "first_name" and mapping["raw_inventor_name_last"] == "last_name"
    assert (mapping["raw_city"], mapping["raw_country"]) == ("city", "country")
    assert mapping["raw_assignee_organization"] == "company"
    assert mapping["phone"] == "phone" and mapping["emergency_phone"] != "phone"  # the whole header wins
    assert mapping["file_name"] != "full_name" and mapping["patent_id"] != "national_id"
    assert result.records["last_name"].tolist() == ["Dupont", "Dupont"]
