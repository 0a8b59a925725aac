"""Birth dates split over RLdata's short headers (`by`, `bm`, `bd`) are read as one date."""

from __future__ import annotations

from pathlib import Path

from crmclean.ingest import ingest
from crmclean.settings import Rules


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
