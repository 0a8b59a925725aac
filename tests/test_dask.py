"""Dask scale-out (docs/scale.md): the same master whether the chunks run in this machine's
process pool, on a LocalCluster (`--dask-workers`), on an existing scheduler with its workers
(`--dask-address`), or through Prefect's DaskTaskRunner; a worker killed mid-run costs a retry,
or the run fails with the master untouched.

The rules used lower the fan-out thresholds (standardize in chunks from 200 distinct values,
pairs compared and scored in chunks of 3,000) so a few thousand records really do fan out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean import executors
from crmclean.cli import app
from dask_faults import DieOnTask
from dbutil import read_table
from factories import demo_project, set_rule

TESTS = Path(__file__).parent
TABLES = ("master_customer", "customer_xref", "master_lineage", "match_edge", "review_queue", "customer_record")
RUN_COLUMNS = {"created_run", "updated_run", "run_id", "first_seen_run", "last_seen_run"}
runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(exports of 1,500 customers in three CRMs, rules that fan out at this size)."""
    data, rules = demo_project(tmp_path_factory.mktemp("dask"), customers=1500, seed=7)
    set_rule(rules / "standardize.yaml", "in_process_below", "200")
    set_rule(rules / "matching.yaml", "chunk_size", "3000")
    return data, rules


def _run(dataset, folder: Path, *extra: str) -> str:
    data, rules = dataset
    db = f"sqlite:///{folder / 'master.db'}"
    args = ["run", str(data), "--no-prefect", "--rules", str(rules), "--db", db, "--out", str(folder), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return db


def published(db: str) -> dict[str, pd.DataFrame]:
    """The published tables without the columns that name the run."""
    return {t: read_table(db, t).drop(columns=list(RUN_COLUMNS), errors="ignore") for t in TABLES}


def assert_same_master(db: str, expected: dict[str, pd.DataFrame]) -> None:
    got = published(db)
    assert len(got["master_customer"]) > 1000 and len(got["master_lineage"]) > 0
    for table in TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table], obj=table)


@pytest.fixture(scope="module")
def single_machine(dataset, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The reference: the same data run on this machine's fork pool."""
    return published(_run(dataset, tmp_path_factory.mktemp("local"), "--workers", "2"))


# ------------------------------------------------------------------- survivorship groups


class _ThreeGroups(executors.LocalProcesses):
    """This process, but survivorship in three groups of clusters (as on a cluster)."""

    def groups(self, items: int) -> int:
        return min(items, 3)


def test_golden_records_built_in_groups_equal_one_build(tmp_path):
    from crmclean.run import RunOptions, run_pipeline
    from crmclean.settings import SAMPLE_DATA_DIR

    def run(name, fanout):
        options = RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=f"sqlite:///{tmp_path / name}.db", out_dir=tmp_path)
        with executors.using(fanout):
            run_pipeline(options)
        return published(options.db_url)

    whole, grouped = run("whole", None), run("grouped", _ThreeGroups())
    for table in TABLES:
        pd.testing.assert_frame_equal(grouped[table], whole[table], obj=table)


# ------------------------------------------------------------------- real clusters


@pytest.mark.slow
def test_local_dask_cluster_gives_the_single_machine_master(dataset, single_machine, tmp_path):
    assert_same_master(_run(dataset, tmp_path, "--dask-workers", "2"), single_machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskProcesses:
    """A `dask scheduler` and `dask worker` processes, as a user would start them."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
        self.log = open(tmp_path / "dask.log", "ab")  # noqa: SIM115 - closed in stop()
        self.procs: list[subprocess.Popen] = []
        port = self.address.rsplit(":", 1)[1]
        self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard")

    def _start(self, module: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=self.env, stdout=self.log, stderr=self.log)
        self.procs.append(proc)
        return proc

    def add_workers(self, n: int, *args: str) -> None:
        for _ in range(n):
            self._start("distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-dashboard", *args)
        with self.client() as client:
            client.wait_for_workers(n, timeout=120)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout="60s", set_as_default=False)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()


@pytest.fixture
def dask_processes(tmp_path):
    started: list[DaskProcesses] = []

    def start(env=None) -> DaskProcesses:
        started.append(DaskProcesses(tmp_path, env))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


def _task_prefixes(cluster: DaskProcesses) -> set[str]:
    with cluster.client() as client:
        prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    return {p.lstrip("_") for p in prefixes}  # Dask names a task prefix without leading underscores


@pytest.mark.slow
def test_existing_scheduler_and_workers_give_the_single_machine_master(
    dataset, single_machine, dask_processes, tmp_path
):
    cluster = dask_processes()
    cluster.add_workers(2)
    assert_same_master(_run(dataset, tmp_path, "--dask-address", cluster.address), single_machine)
    # standardize chunks, link chunks (compare, score: with the shared columns), golden groups
    assert {"run_chunk_uncached", "with_shared", "build_golden"} <= _task_prefixes(cluster)


@pytest.mark.slow
def test_a_killed_worker_costs_a_retry_not_the_result(dataset, single_machine, dask_processes, tmp_path):

    cluster = dask_processes()
    cluster.add_workers(2, "--no-nanny")  # a dead worker stays dead
    marker = tmp_path / "killed"
    with cluster.client() as client:
        client.register_plugin(DieOnTask("_with_shared", str(marker)))
    assert_same_master(_run(dataset, tmp_path, "--dask-address", cluster.address), single_machine)
    assert marker.exists()
    with cluster.client() as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1


@pytest.mark.slow
def test_the_shared_value_outlives_the_only_worker_holding_it(dask_processes):
    """The link columns survive the death of the one worker that holds them (Dask keeps a
    single copy of data no task waits for elsewhere, even of a broadcast)."""
    cluster = dask_processes()
    cluster.add_workers(2, "--no-nanny")
    shared = {"column": np.arange(1000)}
    with cluster.client() as client:
        pool = executors.DaskCluster(client).pool_with(shared, 2)
        pool.handle.result()  # computed on one worker
        holders = _single_holder(client, pool.handle)
        os.kill(client.run(os.getpid, workers=holders)[holders[0]], signal.SIGKILL)
        got = pool.submit(executors.shared_value).result(timeout=120)
        np.testing.assert_array_equal(got["column"], shared["column"])
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
        pool.shutdown()


def _single_holder(client, future, timeout: float = 30) -> list[str]:
    """The one worker holding `future`'s result, once only one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holders = list(client.who_has([future]).get(future.key, ()))
        if len(holders) == 1:
            return holders
        time.sleep(0.5)
    raise AssertionError(f"{future.key} is on {holders}")


@pytest.mark.slow
def test_a_task_that_keeps_killing_workers_fails_the_run_and_leaves_the_master(dataset, dask_processes, tmp_path):
    db = _run(dataset, tmp_path / "first")  # yesterday's master
    before = published(db)
    cluster = dask_processes({"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    cluster.add_workers(2)  # with nannies: each killed worker comes back, and dies again
    with cluster.client() as client:
        client.register_plugin(DieOnTask("build_golden"))
    data, rules = dataset
    args = ["run", str(data), "--no-prefect", "--rules", str(rules), "--db", db, "--out", str(tmp_path)]
    started = time.monotonic()
    result = runner.invoke(app, [*args, "--full-refresh", "--dask-address", cluster.address])
    assert result.exit_code != 0 and time.monotonic() - started < 600
    assert "build_golden" in result.output  # the error names the task that lost its workers
    after = published(db)
    for table in TABLES:
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)
    assert read_table(db, "run_log")["status"].tolist()[-1] == "failed"


@pytest.mark.slow
def test_prefect_flow_on_a_dask_task_runner_gives_the_single_machine_master(
    prefect_harness, dataset, single_machine, dask_processes, tmp_path
):
    from crmclean.flows.nightly import dask_task_runner, run_flow
    from crmclean.ingest import find_inputs
    from crmclean.run import RunOptions
    from crmclean.settings import load_rules

    cluster = dask_processes()
    cluster.add_workers(2)
    data, rules = dataset
    options = RunOptions(
        inputs=find_inputs([data], load_rules(rules))[0],  # as `crmclean run` passes them
        db_url=f"sqlite:///{tmp_path / 'master.db'}",
        out_dir=tmp_path,
        rules_dir=rules,
        dask_address=cluster.address,
    )
    assert type(dask_task_runner(options)).__name__ == "DaskTaskRunner"
    assert run_flow(options).status == "success"
    assert_same_master(options.db_url, single_machine)
    assert {"run_chunk_uncached", "with_shared", "build_golden"} <= _task_prefixes(cluster)
