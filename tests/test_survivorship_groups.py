"""Survivorship on two cores (issue 14): with `--workers 2` the golden records of the second
group of clusters are built in a child forked from the run (`executors.fork_map`), and the
master is the one a single process builds; a child that dies fails the run cleanly."""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import crmclean.survivorship as survivorship
from crmclean import executors
from crmclean.cli import app
from crmclean.config import section
from crmclean.errors import RulesError
from crmclean.survivorship.groups import group_count, group_of_rows, read_frames, write_frames

from dbutil import read_table
from factories import demo_project, generated_truth_clusters, set_rule

TABLES = ("master_customer", "customer_xref", "master_lineage", "match_edge", "review_queue", "customer_record")
RUN_COLUMNS = {"created_run", "updated_run", "run_id", "first_seen_run", "last_seen_run"}
runner = CliRunner()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Standardized records of 400 generated customers, clustered by the truth."""
    std, clusters, rules = generated_truth_clusters(400, 5, tmp_path_factory.mktemp("gen"))
    rules = dataclasses.replace(rules, survivorship={**(rules.survivorship or {}), "in_process_below": 0})
    return std, clusters.sort_values("record_key").reset_index(drop=True), rules


def test_two_workers_build_the_golden_records_one_builds(generated, monkeypatch):
    std, clusters, rules = generated
    spelling = survivorship.spelling_counts(std, rules)
    one = survivorship.golden_in_groups(std, clusters, rules, spelling=spelling, workers=1)
    parts = []
    real = executors.fork_map
    monkeypatch.setattr(
        executors, "fork_map", lambda fn, tasks, *a, **k: parts.append(len(tasks)) or real(fn, tasks, *a, **k)
    )
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    two = survivorship.golden_in_groups(std, clusters, rules, spelling=spelling, workers=2)
    assert parts == [2]  # the second group really was built in a child
    pd.testing.assert_frame_equal(two[0], one[0])
    pd.testing.assert_frame_equal(two[1], one[1])
    assert one[1]["alternatives"].isna().any() and one[1]["alternatives"].notna().any()


def test_the_groups_are_whole_clusters_with_about_as_many_records():
    cluster = np.repeat(np.arange(10), [1, 1, 1, 1, 1, 1, 1, 1, 1, 11])  # one cluster of 11 records
    group = group_of_rows(cluster, 2)
    assert all(len(set(group[cluster == c])) == 1 for c in range(10))
    assert set(group[cluster < 9]) == {0} and set(group[cluster == 9]) == {1}
    assert group_count(2, 100, 10, in_process_below=101) == 1
    assert group_count(1, 100, 10, in_process_below=0) == 1
    assert group_count(2, 100, 1, in_process_below=0) == 1  # one cluster: nothing to split


def test_the_threshold_lives_in_the_rules_and_is_validated():
    assert section(None, "survivorship")["in_process_below"] is None  # off unless asked for
    assert group_count(2, 10**9, 10**6, in_process_below=None) == 1
    with pytest.raises(RulesError, match="in_process_below"):
        section(dataclasses.replace(_rules(), survivorship={"in_process_below": -1}), "survivorship")


def _rules():
    from crmclean.settings import load_rules

    return load_rules()


def test_frames_come_back_from_a_child_as_they_were_built(tmp_path):
    frame = pd.DataFrame(
        {
            "cluster": np.arange(5, dtype=np.int64),
            "text": ["a", None, "b", "a", "ü"],
            "lost": pd.Series([np.nan, "x", None, np.nan, "y"], dtype=object),
            "none": pd.Series([None] * 5, dtype=object),
            "mixed": pd.Series([1, "1", None, 2.5, "z"], dtype=object),  # not all text: pickled
            "share": np.linspace(0, 1, 5),
        }
    )
    write_frames((frame, frame.iloc[:0]), str(tmp_path / "part"))
    back, empty = read_frames(str(tmp_path / "part"))
    pd.testing.assert_frame_equal(back, frame)
    pd.testing.assert_frame_equal(empty, frame.iloc[:0].reset_index(drop=True))
    assert back["lost"].iat[0] is not None and back["lost"].iat[2] is None  # NaN stays NaN, None None
    assert back["text"].iat[0] is back["text"].iat[3]  # one string per distinct value


def _freeze_count(_: int) -> tuple[int, int]:
    return os.getpid(), gc.get_freeze_count()


def test_fork_map_runs_parts_in_frozen_children_and_unfreezes_after():
    assert gc.get_freeze_count() == 0
    results = executors.fork_map(_freeze_count, [(0,), (1,), (2,)], _write_pickle, _read_pickle)
    assert results[0][0] == os.getpid() and len({pid for pid, _ in results}) == 3
    assert all(frozen > 0 for _, frozen in results)  # the heap was frozen before the fork
    assert gc.get_freeze_count() == 0


def _write_pickle(value, path: str) -> None:
    pd.to_pickle(value, path)


def _read_pickle(path: str):
    return pd.read_pickle(path)


def _die(k: int) -> int:
    if k:
        os.kill(os.getpid(), signal.SIGKILL)
    return k


def _fail(k: int) -> int:
    if k:
        raise ValueError("no golden record for you")
    return k


def test_a_child_that_is_killed_or_fails_is_a_clear_error():
    with pytest.raises(executors.WorkerDied, match=r"golden \(part 2 of 2\).*killed by SIGKILL"):
        executors.fork_map(_die, [(0,), (1,)], _write_pickle, _read_pickle, what="golden")
    with pytest.raises(executors.WorkerDied, match="failed.*ValueError: no golden record for you"):
        executors.fork_map(_fail, [(0,), (1,)], _write_pickle, _read_pickle, what="golden")
    assert gc.get_freeze_count() == 0


# ------------------------------------------------------------------ whole runs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(exports of 800 customers in three CRMs, rules that split survivorship at any size)."""
    data, rules = demo_project(tmp_path_factory.mktemp("surv"), customers=800, seed=3)
    assert "\nin_process_below: null\n" in (rules / "survivorship.yaml").read_text(encoding="utf-8")
    set_rule(rules / "survivorship.yaml", "in_process_below", "0")
    return data, rules


def _run(dataset, folder: Path, *extra: str):
    data, rules = dataset
    db = f"sqlite:///{folder / 'master.db'}"
    args = ["run", str(data), "--no-prefect", "--rules", str(rules), "--db", db, "--out", str(folder), *extra]
    return db, runner.invoke(app, args)


def published(db: str) -> dict[str, pd.DataFrame]:
    return {t: read_table(db, t).drop(columns=list(RUN_COLUMNS), errors="ignore") for t in TABLES}


@pytest.mark.slow
def test_a_run_on_two_workers_publishes_the_master_of_one(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    one, result = _run(dataset, tmp_path / "one", "--workers", "1")
    assert result.exit_code == 0, result.output
    forked = []
    real = executors.fork_map
    monkeypatch.setattr(executors, "fork_map", lambda fn, tasks, *a, **k: forked.append(1) or real(fn, tasks, *a, **k))
    two, result = _run(dataset, tmp_path / "two", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert forked
    expected, got = published(one), published(two)
    assert len(got["master_lineage"]) > 1000
    for table in TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table], obj=table)


@pytest.mark.slow
def test_a_killed_survivorship_worker_fails_the_run_and_leaves_the_master(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    db, result = _run(dataset, tmp_path, "--workers", "1")  # yesterday's master
    assert result.exit_code == 0, result.output
    before = published(db)
    parent, build = os.getpid(), survivorship.build_golden

    def killed_in_child(*args, **kwargs):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return build(*args, **kwargs)

    monkeypatch.setattr(survivorship, "build_golden", killed_in_child)
    _, result = _run(dataset, tmp_path, "--workers", "2", "--full-refresh")
    assert result.exit_code != 0
    assert "survivorship" in result.output and "killed by SIGKILL" in result.output
    after = published(db)
    for table in TABLES:
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)
    assert read_table(db, "run_log")["status"].tolist()[-1] == "failed"
