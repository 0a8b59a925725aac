"""Evaluation numbers checked against values computed by hand on tiny truth/xref tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crmclean.errors import CrmcleanError, InputFileError
from crmclean.evaluate import evaluate, evaluate_db, format_evaluation, read_truth

sys.path.insert(0, str(Path(__file__).parent))
from dbutil import seed_master  # noqa: E402
from factories import SCENARIOS, all_scenarios  # noqa: E402


def truth_frame(rows):
    """rows: (record id, entity, scenario, group) in source 'S'."""
    return pd.DataFrame(
        [{"source": "S", "source_record_id": r, "entity_id": e, "scenario": s, "group_id": g} for r, e, s, g in rows]
    )


def xref_frame(assign: dict[str, str]):
    return pd.DataFrame([{"source": "S", "source_record_id": r, "master_id": m} for r, m in assign.items()])


@pytest.fixture
def small():
    truth = truth_frame(
        [
            ("a1", "A", "normal", ""),
            ("a2", "A", "normal", ""),
            ("a3", "A", "normal", ""),
            ("b1", "B", "normal", ""),
            ("b2", "B", "normal", ""),
            ("c1", "C", "normal", ""),
            ("j1", "", "junk", ""),
        ]
    )
    xref = xref_frame({"a1": "M1", "a2": "M1", "a3": "M2", "b1": "M2", "b2": "M3", "c1": "M4"})
    return truth, xref


def test_pairwise_and_bcubed_match_hand_computation(small):
    truth, xref = small
    r = evaluate(truth, xref)
    # cells (M1,A)=2 (M2,A)=1 (M2,B)=1 (M3,B)=1 (M4,C)=1
    # TP = C(2,2) = 1; predicted pairs = M1:1 + M2:1 = 2; true pairs = A:3 + B:1 = 4
    assert r["pairwise"]["true_positive_pairs"] == 1
    assert r["pairwise"]["predicted_pairs"] == 2 and r["pairwise"]["true_pairs"] == 4
    assert r["pairwise"]["precision"] == pytest.approx(0.5)
    assert r["pairwise"]["recall"] == pytest.approx(0.25)
    assert r["pairwise"]["f1"] == pytest.approx(1 / 3)
    # B-cubed precision per record: a1 1, a2 1, a3 1/2, b1 1/2, b2 1, c1 1  -> 5/6
    # B-cubed recall per record:    a1 2/3, a2 2/3, a3 1/3, b1 1/2, b2 1/2, c1 1 -> 11/18
    assert r["bcubed"]["precision"] == pytest.approx(5 / 6)
    assert r["bcubed"]["recall"] == pytest.approx(11 / 18)
    p, q = 5 / 6, 11 / 18
    assert r["bcubed"]["f1"] == pytest.approx(2 * p * q / (p + q))
    # the junk row is absent from xref: counted, not scored
    assert r["records_truth"] == 7 and r["records_evaluated"] == 6
    assert r["absent_from_xref"] == 1 and r["absent_by_scenario"] == {"junk": 1}
    assert r["real_records_absent"] == 0
    assert r["entities_true"] == 3 and r["masters_predicted"] == 4


def test_perfect_and_all_in_one(small):
    truth, _ = small
    perfect = xref_frame({"a1": "X", "a2": "X", "a3": "X", "b1": "Y", "b2": "Y", "c1": "Z"})
    r = evaluate(truth, perfect)
    assert r["pairwise"]["f1"] == 1.0 and r["bcubed"]["f1"] == 1.0
    lumped = xref_frame({k: "X" for k in ["a1", "a2", "a3", "b1", "b2", "c1"]})
    r = evaluate(truth, lumped)
    assert r["pairwise"]["recall"] == 1.0
    assert r["pairwise"]["precision"] == pytest.approx(4 / 15)  # 4 true of C(6,2)=15
    # B-cubed precision: A records 3/6, B 2/6, C 1/6 -> (3*3 + 2*2 + 1) / 36
    assert r["bcubed"]["precision"] == pytest.approx(14 / 36)


def test_false_merges_per_hard_negative_group():
    truth = truth_frame(
        [
            ("h1", "H", "household", "G1"),
            ("h2", "H", "household", "G1"),
            ("k1", "K", "household", "G1"),
            ("t1", "T", "twins", "G2"),
            ("u1", "U", "twins", "G2"),
            ("s1", "S1", "jr_sr", "G3"),
            ("s2", "S2", "jr_sr", "G3"),
        ]
    )
    xref = xref_frame({"h1": "M5", "k1": "M5", "h2": "M6", "t1": "M7", "u1": "M8", "s1": "M9", "s2": "M9"})
    fm = evaluate(truth, xref)["false_merges"]
    # household: different-person pairs h1-k1, h2-k1 = 2; merged: h1-k1 -> 1
    assert fm["household"] == {"groups": 1, "pairs": 2, "merged_pairs": 1, "rate": 0.5}
    assert fm["twins"] == {"groups": 1, "pairs": 1, "merged_pairs": 0, "rate": 0.0}
    assert fm["jr_sr"] == {"groups": 1, "pairs": 1, "merged_pairs": 1, "rate": 1.0}
    assert fm["common_name"]["rate"] is None and fm["common_name"]["pairs"] == 0
    rec = evaluate(truth, xref)["recall_by_scenario"]
    assert rec["household"] == {"pairs": 1, "found": 0, "recall": 0.0}  # h1/h2 were split


def test_kept_junk_rows_are_singletons_so_merging_them_is_penalised():
    truth = truth_frame([("a1", "A", "normal", ""), ("j1", "", "junk", ""), ("j2", "", "junk", "")])
    xref = xref_frame({"a1": "M1", "j1": "MJ", "j2": "MJ"})
    r = evaluate(truth, xref)
    assert r["pairwise"]["predicted_pairs"] == 1 and r["pairwise"]["true_positive_pairs"] == 0
    assert r["pairwise"]["precision"] == 0.0
    assert r["junk_merged_records"] == 2


def test_quarantine_splits_absent_rows_and_unknown_xref_rows_are_counted(small):
    truth, xref = small
    xref = pd.concat([xref.drop(index=5), xref_frame({"zz": "M9"})], ignore_index=True)  # c1 lost, zz extra
    q = pd.DataFrame({"source": ["S"], "source_record_id": ["j1"]})
    r = evaluate(truth, xref, quarantine=q)
    assert r["absent_from_xref"] == 2 and r["quarantined"] == 1
    assert r["real_records_absent"] == 1
    assert r["records_in_xref_not_in_truth"] == 1
    assert r["absent_by_scenario"] == {"junk": 1, "normal": 1}


def test_keys_are_compared_as_text():
    truth = pd.DataFrame(
        {
            "source": ["W", "W"],
            "source_record_id": ["00123", "00124"],
            "entity_id": ["A", "A"],
            "scenario": ["normal", "normal"],
        }
    )  # no group_id column: optional
    xref = pd.DataFrame({"source": ["W", "W"], "source_record_id": [" 00123", "00124"], "master_id": ["M", "M"]})
    r = evaluate(truth, xref)
    assert r["records_evaluated"] == 2 and r["pairwise"]["true_positive_pairs"] == 1


def test_missing_columns_are_a_clear_error(small):
    truth, xref = small
    with pytest.raises(CrmcleanError, match="master_id"):
        evaluate(truth, xref.drop(columns="master_id"))


def test_large_input_is_scored_by_contingency_counts():
    """300k records in 60k entities: contingency counts, no pair lists (its speed is printed by
    bench/bench_units.py, never asserted here)."""
    rng = np.random.default_rng(0)
    n = 300_000
    ent = rng.integers(0, 60_000, n)
    truth = pd.DataFrame(
        {
            "source": "S",
            "source_record_id": np.arange(n).astype(str),
            "entity_id": ent.astype(str),
            "scenario": "normal",
            "group_id": "",
        }
    )
    master = np.where(rng.random(n) < 0.05, rng.integers(0, 60_000, n), ent)
    xref = pd.DataFrame({"source": "S", "source_record_id": truth["source_record_id"], "master_id": master.astype(str)})
    r = evaluate(truth, xref)
    assert 0.8 < r["pairwise"]["recall"] < 0.95 and 0.8 < r["pairwise"]["precision"] < 0.95


def test_evaluate_db_reads_the_published_xref(tmp_path, small):
    truth, xref = small
    truth_path = tmp_path / "truth.csv"
    truth.to_csv(truth_path, index=False)
    db = seed_master(
        f"sqlite:///{tmp_path / 'm.db'}",
        {
            "customer_xref": xref.assign(record_key="S|" + xref["source_record_id"]),
            "quarantine": pd.DataFrame({"source": ["S"], "source_record_id": ["j1"], "reason": ["blank row"]}),
        },
    )
    r = evaluate_db(truth_path, db)
    assert r["pairwise"]["f1"] == pytest.approx(1 / 3) and r["quarantined"] == 1
    text = format_evaluation(r)
    assert "pairwise" in text and "0.5000" in text and "0.2500" in text and "household" in text


def test_evaluate_db_errors_name_the_problem(tmp_path):
    empty_db = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty_db).connect().close()
    truth_path = tmp_path / "truth.csv"
    truth_frame([("a1", "A", "normal", "")]).to_csv(truth_path, index=False)
    with pytest.raises(CrmcleanError) as info:
        evaluate_db(truth_path, empty_db)
    assert str(info.value) == f"no crmclean master at {empty_db}: run 'crmclean run' first"
    assert not sa.inspect(sa.create_engine(empty_db)).get_table_names()  # still not a master
    missing = f"sqlite:///{tmp_path / 'typo' / 'm.db'}"
    with pytest.raises(CrmcleanError, match="no crmclean master at"):
        evaluate_db(truth_path, missing)
    assert not (tmp_path / "typo").exists()
    with pytest.raises(InputFileError, match="not found"):
        evaluate_db(tmp_path / "nope.csv", empty_db)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError, match="entity_id"):
        read_truth(tmp_path / "bad.csv")


def test_factory_truth_scores_itself_perfectly_and_hard_negatives_exist():
    records, truth = all_scenarios()
    assert set(SCENARIOS) == {
        "household",
        "twins",
        "jr_sr",
        "moved_customer",
        "nickname",
        "hanzi_pinyin",
        "common_name",
        "typo",
        "shared_placeholders",
    }
    perfect = truth.assign(master_id=truth["entity_id"])
    r = evaluate(truth, perfect)
    assert r["pairwise"]["f1"] == 1.0
    assert all(r["false_merges"][k]["pairs"] > 0 for k in ("household", "twins", "jr_sr", "common_name"))
    # merging each look-alike group into one master is caught
    lumped = truth.assign(master_id=truth["group_id"].where(truth["group_id"] != "", truth["entity_id"]))
    assert all(v["rate"] == 1.0 for v in evaluate(truth, lumped)["false_merges"].values())


def test_generated_truth_scores_itself_and_splits_cost_recall(tmp_path):
    """On real generator output: the truth scores itself perfectly; split-off records cost recall only."""
    from crmclean.generate import generate

    info = generate(customers=1000, seed=21, out_dir=tmp_path)
    truth = read_truth(info["truth"])
    assert (
        evaluate(truth, truth[truth["entity_id"] != ""].assign(master_id=lambda d: d["entity_id"]))["pairwise"]["f1"]
        == 1.0
    )
    # perturb: every 10th record becomes its own master -> recall drops, precision stays 1
    x = truth[truth["entity_id"] != ""].assign(master_id=lambda d: d["entity_id"]).reset_index(drop=True)
    x.loc[x.index % 10 == 0, "master_id"] = "solo" + x["source_record_id"]
    r = evaluate(truth, x)
    assert r["pairwise"]["precision"] == 1.0 and 0.6 < r["pairwise"]["recall"] < 0.95
