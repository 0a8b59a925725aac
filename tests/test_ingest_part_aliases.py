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
