"""explain: waterfalls recomputed from a frame, and read back from the published tables."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from crmclean.errors import CrmcleanError
from crmclean.explain import explain_master, explain_one, explain_pair, explain_records
from crmclean.link import link
from crmclean.link.compare import FEATURE_NAMES

from dbutil import seed_master, sqlite_files
from test_link import STD_COLUMNS, R, hard_cases, look_alikes, synthetic


@pytest.fixture(scope="module")
def linked():
    # look-alikes: data that holds twins, so the model learns to keep the twins of hard_cases apart
    frame = pd.concat([synthetic(300, seed=3)[0], look_alikes(), hard_cases()], ignore_index=True)
    return frame, link(frame, R(), workers=1)


def _final(text: str) -> tuple[float, float]:
    m = re.search(r"match weight (-?[\d.]+)\s+probability ([\d.]+)", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def test_explain_pair_matches_the_link_score(linked):
    frame, res = linked
    row = res.pairs.set_index(["record_key_l", "record_key_r"]).loc[("cn|1", "us|1")]
    text = explain_pair(frame, "cn|1", "us|1", res.model, R(), show_pii=True)
    for feature in FEATURE_NAMES:
        assert re.search(rf"^{feature}\s", text, re.M), feature
    weight, prob = _final(text)
    assert weight == pytest.approx(row["match_weight"], abs=0.01)
    assert prob == pytest.approx(row["match_probability"], abs=1e-5)
    assert "decision match" in text and "+8613800138000" in text
    masked = explain_pair(frame, "cn|1", "us|1", res.model, R())  # the default: masked like the report
    assert "+8613800138000" not in masked and "+86 138****8000" in masked
    assert _final(masked) == _final(text)  # the same numbers either way


def test_explain_pair_shows_the_cap_for_jr_sr(linked):
    frame, res = linked
    text = explain_pair(frame, "a|4", "b|4", res.model, R())
    assert re.search(r"^suffix\s+conflict", text, re.M)
    assert "decision non_match" in text and "generation_conflict" in text


def test_explain_pair_unknown_key(linked):
    frame, res = linked
    with pytest.raises(CrmcleanError, match="not found: nobody"):
        explain_pair(frame, "cn|1", "nobody", res.model, R())


@pytest.fixture()
def db(tmp_path, linked):
    """The published tables, as the store writes them (columns from docs/ARCHITECTURE.md)."""
    frame, res = linked
    url = f"sqlite:///{tmp_path / 'master.db'}"
    masters = {k: f"C{n:07d}" for n, k in enumerate(frame["record_key"])}
    for a, b in zip(
        res.pairs.loc[res.pairs.decision == "match", "record_key_l"],
        res.pairs.loc[res.pairs.decision == "match", "record_key_r"],
    ):
        masters[b] = masters[a]
    xref = pd.DataFrame(
        {
            "source": frame["source"],
            "source_record_id": frame["source_record_id"],
            "record_key": frame["record_key"],
            "master_id": frame["record_key"].map(masters),
        }
    )
    seed_master(
        url,
        {
            "customer_record": frame.drop(columns=["source", "source_record_id"]),
            "customer_xref": xref,
            "match_edge": res.pairs[
                ["record_key_l", "record_key_r", "match_weight", "match_probability", "decision", "evidence", "rules"]
                + ["cap"]
            ],
            "match_model": pd.DataFrame(
                [{"version": 1, "created": res.model["created"], "model_json": json.dumps(res.model)}]
            ),
        },
    )
    return url, masters, res


def test_explain_master_lists_records_and_edges(db):
    url, masters, res = db
    text = explain_master(url, masters["cn|1"], show_pii=True)
    assert text.startswith(f"Master {masters['cn|1']}: 2 record(s)")
    assert "cn:1" in text and "us:1" in text and "谢雪东" in text
    weight, _ = _final(text)
    stored = res.pairs.set_index(["record_key_l", "record_key_r"]).loc[("cn|1", "us|1"), "match_weight"]
    assert weight == pytest.approx(stored, abs=0.01)
    with pytest.raises(CrmcleanError, match="C9999999 not found"):
        explain_master(url, "C9999999")


def test_explain_records_stored_edge_and_fresh_comparison(db):
    url, masters, res = db
    text = explain_records(url, "cn:1", "us:1")
    assert "same master" in text and "recomputed" not in text
    # twins: a review edge is stored
    twins = explain_records(url, "a:3", "b:3")
    assert "different masters" in twins and re.search(r"^first_name\s+different", twins, re.M)
    # a pair that was never a candidate is compared afresh
    fresh = explain_records(url, "cn:1", "a:5")
    assert "recomputed" in fresh and "decision non_match" in fresh
    with pytest.raises(CrmcleanError, match="source:source_record_id"):
        explain_records(url, "nocolon", "a:5")
    with pytest.raises(CrmcleanError, match="zz:9 not found"):
        explain_records(url, "zz:9", "a:5")


def test_explain_one_record_shows_its_master(db):
    """`crmclean explain us:1` (either spelling): the master holding the record, the record marked."""
    url, masters, _ = db
    master = masters["us|1"]
    for ref in ("us:1", "us|1", " us:1 "):
        text = explain_one(url, ref, show_pii=True)
        assert text.startswith(f"us:1 → master {master}\n\nMaster {master}: 2 record(s)"), text[:200]
        assert re.search(r"^▶ us:1: ", text, re.M) and re.search(r"^  cn:1: ", text, re.M)
        assert "A = cn:1" in text  # the edge that merged it
    assert explain_one(url, master) == explain_master(url, master)  # a master id as before
    with pytest.raises(CrmcleanError, match="explain: record zz:9 not found"):
        explain_one(url, "zz:9")
    with pytest.raises(CrmcleanError, match="is not a record reference"):
        explain_one(url, "zz:")


def test_explain_cli_takes_one_record(db):
    from typer.testing import CliRunner

    from crmclean.cli import app

    url, masters, _ = db
    result = CliRunner().invoke(app, ["explain", "cn:1", "--db", url])
    assert result.exit_code == 0, result.output
    assert f"cn:1 → master {masters['cn|1']}" in result.output and "▶ cn:1" in result.output
    missing = CliRunner().invoke(app, ["explain", "cn:999999", "--db", url])
    assert missing.exit_code == 1 and "record cn:999999 not found" in missing.output


def test_explain_a_stored_edge_names_its_hard_constraint(db):
    """match_edge keeps the cap's name: the stored jr/sr pair says which constraint lowered it."""
    import sqlalchemy as sa

    url, _, _ = db
    assert "capped by" not in explain_records(url, "a:3", "b:3")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a run writes a review pair a hard constraint held back
        n = conn.exec_driver_sql(
            "UPDATE match_edge SET cap = 'generation_conflict' WHERE record_key_l = 'a|3' AND record_key_r = 'b|3'"
        ).rowcount
    engine.dispose()
    assert n == 1
    text = explain_records(url, "a:3", "b:3")
    assert "recomputed" not in text and "(capped by generation_conflict)" in text


def test_explain_on_a_missing_database_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    for explain in (lambda: explain_master(url, "C0000001"), lambda: explain_records(url, "a:1", "b:2")):
        with pytest.raises(CrmcleanError) as info:
            explain()
        assert str(info.value) == f"no crmclean master at {url}: run 'crmclean run' first"
    assert sqlite_files(tmp_path) == []


def test_explain_pair_shows_the_moved_correction(linked):
    """New address and new phone (a move) count once: the waterfall shows the dropped penalty
    as a correlation adjustment ("c") and still adds up to the match weight."""
    from test_link import person

    frame, res = linked
    moved = pd.DataFrame(
        [
            person(
                "m|1",
                "ignatius",
                "quackenbush",
                birth_date_std="1971-03-09",
                mobile_std="+13125550111",
                address_std="4 lake shore dr",
                city_std="chicago",
            ),
            person(
                "m|2",
                "ignatius",
                "quackenbush",
                birth_date_std="1971-03-09",
                mobile_std="+17205550999",
                address_std="88 colfax ave",
                city_std="denver",
            ),
        ],
        columns=STD_COLUMNS,
    )
    text = explain_pair(pd.concat([frame, moved], ignore_index=True), "m|1", "m|2", res.model, R())
    corrected = re.findall(r"^(phone|address)\s+different\s+([+-][\d.]+)\s+([+-][\d.]+)c", text, re.M)
    assert len(corrected) == 1 and float(corrected[0][1]) == 0.0 and float(corrected[0][2]) > 0, text
    cumulative = float(re.search(r"^gender\s.*\s(-?\d+\.\d\d)\s{3}\S", text, re.M).group(1))
    assert cumulative == pytest.approx(_final(text)[0], abs=0.01), text


def test_explain_masks_personal_data_unless_asked(db):
    """explain prints what the report shows: names, e-mails, phones, birth dates and addresses
    masked; --show-pii (show_pii=True) prints them."""
    url, masters, _ = db
    records = pd.read_sql_table("customer_record", f"{url}")
    personal = records[records["record_key"].isin(["cn|1", "us|1"])]
    secrets = {
        str(v)
        for c in ("full_name_std", "email_std", "mobile_std", "birth_date_std", "address_std", "email_key")
        if c in personal
        for v in personal[c].dropna()
        if len(str(v)) > 2
    }
    assert len(secrets) >= 4
    for text in (explain_master(url, masters["cn|1"]), explain_records(url, "cn:1", "us:1")):
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, leaked
        assert "***" in text
    shown = explain_master(url, masters["cn|1"], show_pii=True) + explain_records(url, "cn:1", "us:1", show_pii=True)
    assert any(s in shown for s in secrets)


def test_explain_cli_masks_by_default(db):
    from typer.testing import CliRunner

    from crmclean.cli import app

    url, masters, _ = db
    masked = CliRunner().invoke(app, ["explain", masters["cn|1"], "--db", url])
    shown = CliRunner().invoke(app, ["explain", masters["cn|1"], "--db", url, "--show-pii"])
    assert masked.exit_code == 0 and shown.exit_code == 0, masked.output + shown.output
    assert "谢雪东" in shown.output and "谢雪东" not in masked.output and "谢**" in masked.output
