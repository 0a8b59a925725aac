"""What the cluster stage holds at once, and what it leaves for publish (issue 14): survivorship
builds a group of clusters at a time with each group's lineage written to disk as it is built,
match_edge keeps link's evidence codes until publish writes them, and after the cluster stage
the run keeps only the pair columns its report reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

import crmclean.survivorship as survivorship
from crmclean import run as run_module
from crmclean import spill
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import SAMPLE_DATA_DIR, load_rules
from crmclean.store.build import golden_with_spilled_lineage, lineage_rows
from crmclean.store.values import frame_rows, is_evidence

from dbutil import read_table
from factories import generated_truth_clusters


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Standardized records of 400 generated customers, clustered by the truth."""
    std, clusters, rules = generated_truth_clusters(400, 5, tmp_path_factory.mktemp("gen"))
    return std, clusters.sort_values("record_key").reset_index(drop=True), rules


def test_groups_built_in_turn_give_the_golden_records_and_lineage_of_one_build(generated, monkeypatch):
    std, clusters, rules = generated
    spelling = survivorship.spelling_counts(std, rules)
    golden, lineage = survivorship.build_golden(std, clusters, rules, spelling=spelling)
    monkeypatch.setattr(survivorship, "GROUP_RECORDS", 150)  # ~4 groups of whole clusters
    parts: list[pd.DataFrame] = []
    got, returned = survivorship.golden_in_groups(std, clusters, rules, spelling=spelling, lineage_to=parts.append)
    assert returned is None and len(parts) >= 4
    assert max(len(p) for p in parts) < len(lineage) / 2  # never the whole lineage at once
    for part in parts:  # whole clusters: no cluster's rows in two parts
        assert not set(part["cluster"]) & set().union(*(set(p["cluster"]) for p in parts if p is not part))
    pd.testing.assert_frame_equal(got, golden)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), lineage)


def test_the_lineage_on_disk_is_the_one_the_frame_gives(generated, tmp_path, monkeypatch):
    std, clusters, rules = generated
    spelling = survivorship.spelling_counts(std, rules)
    assigned = pd.DataFrame({"cluster": sorted(clusters["cluster"].unique())})
    assigned["master_id"] = [f"C{i:07d}" for i in range(len(assigned))]
    golden, lineage = survivorship.build_golden(std, clusters, rules, spelling=spelling)
    expected = lineage_rows(lineage, assigned.set_index("cluster")["master_id"])
    monkeypatch.setattr(survivorship, "GROUP_RECORDS", 150)
    got, spilled = golden_with_spilled_lineage(std, clusters, rules, spelling, assigned, tmp_path)
    assert isinstance(spilled, spill.SpilledTable) and len(spilled) == len(expected)
    pd.testing.assert_frame_equal(got, golden)
    assert list(frame_rows("master_lineage", spilled)[1]) == list(frame_rows("master_lineage", expected)[1])


def test_a_lineage_value_that_is_not_text_keeps_the_lineage_in_memory(generated, tmp_path, monkeypatch):
    std, clusters, rules = generated
    real = survivorship._lineage
    monkeypatch.setattr(survivorship, "_lineage", lambda win, master: real(win, master).assign(value=7))
    assigned = pd.DataFrame({"cluster": sorted(clusters["cluster"].unique())})
    assigned["master_id"] = [f"C{i:07d}" for i in range(len(assigned))]
    golden, kept = golden_with_spilled_lineage(std, clusters, rules, None, assigned, tmp_path)
    assert isinstance(kept, pd.DataFrame) and len(kept) and len(golden) == len(assigned)
    assert not list((tmp_path / spill.SPILL_DIR).glob("*.parquet"))  # nothing half-written left


def _run_capturing(tmp_path: Path) -> tuple[dict, str]:
    """A run of the sample data; what cluster built and what plan_publish was given."""
    seen: dict = {}

    def runner(name, stage, *args):
        out = stage(*args)
        if name == "cluster":
            seen["match_edge"] = out.tables["match_edge"]
        if name == "plan publish":
            seen["linked"] = args[2]
        return out

    db = f"sqlite:///{tmp_path / 'master.db'}"
    result = run_pipeline(RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=db, out_dir=tmp_path / "out"), runner=runner)
    assert result.status == "success"
    return seen, db


def test_match_edge_keeps_the_evidence_codes_until_publish_writes_their_text(tmp_path):
    seen, db = _run_capturing(tmp_path)
    edges = seen["match_edge"]
    assert len(edges) and is_evidence(edges["evidence"].dtype)  # joined text: ≈ 130 MB at 200k
    stored = read_table(db, "match_edge").set_index(["record_key_l", "record_key_r"])["evidence"]
    texts = dict(zip(zip(edges["record_key_l"], edges["record_key_r"]), edges["evidence"].array.texts()))
    assert {k: stored[k] for k in texts} == texts
    assert all(isinstance(json.loads(t), dict) for t in texts.values())


def test_after_the_cluster_stage_the_pairs_hold_only_what_the_report_reads(tmp_path):
    seen, _ = _run_capturing(tmp_path)
    linked = seen["linked"]
    assert set(linked.pairs.columns) == set(run_module.REPORT_PAIR_COLUMNS)
    assert linked.result.pairs is linked.pairs
    report = next((tmp_path / "out" / "runs").glob("*/report.html")).read_text(encoding="utf-8")
    assert "Match weight histogram" in report


def test_the_report_reads_every_pair_column_it_needs_from_the_cut_pairs(tmp_path):
    """The report of a run given the cut pairs is the report of the whole pairs."""
    from crmclean.report import build_report_model

    seen, _ = _run_capturing(tmp_path)
    linked = seen["linked"]
    whole = dataclasses.replace(linked, pairs=linked.pairs.assign(rules="x", w_email=1.0))
    inp = run_module.StageResults(linked=whole).report_input(_env(tmp_path))
    cut = run_module.StageResults(linked=run_module._report_pairs(whole)).report_input(_env(tmp_path))
    assert build_report_model(cut, "success", None, False) == build_report_model(inp, "success", None, False)


def _env(tmp_path: Path):
    from crmclean.stages import RunEnv

    options = RunOptions(inputs=[SAMPLE_DATA_DIR], out_dir=tmp_path / "out")
    return RunEnv(options=options, rules=load_rules(), run_id="r", out_dir=tmp_path, timer=run_module.StageTimer())
