"""Progress of long runs (issue 14): the stage bars count rows read, distinct values
standardized, candidate pairs compared, clusters and rows written, with their rate and the time
left; a log (not a terminal) gets one line per stage; --quiet and --json get nothing."""

from __future__ import annotations

import io
import re
import time

import pandas as pd
import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

import crmclean.cli as cli
from crmclean import progress
from crmclean.cli import StageBars, TimeLeftColumn
from crmclean.executors import LocalProcesses
from crmclean.standardize.parallel import FieldJob

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAGES = ("ingest", "validate sources", "load prior", "standardize", "validate standardized", "link", "cluster")


def _run(tmp_path, monkeypatch, *flags: str, terminal: bool) -> tuple[int, str]:
    """`crmclean run` on the sample data with stderr going to a (forced) terminal or a log."""
    err = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=err, force_terminal=terminal, width=160, highlight=False))
    result = runner.invoke(
        cli.app,
        ["run", "--no-prefect", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--out", str(tmp_path / "out"), *flags],
    )
    assert result.exit_code == 0, result.output
    return result.exit_code, ANSI.sub("", err.getvalue())


def test_terminal_bars_show_counts_and_rates(tmp_path, monkeypatch):
    _, shown = _run(tmp_path, monkeypatch, terminal=True)
    final = shown.splitlines()[-12:]
    for stage, unit in (("ingest", "rows"), ("standardize", "values"), ("link", "pairs"), ("cluster", "clusters")):
        line = next(line for line in final if f"✓ {stage} " in line)
        assert re.search(rf"[\d,]+ {unit} +[\d,]+ {unit}/s", line), line
    publish = next(line for line in final if "✓ publish" in line)
    assert re.search(r"[\d,]+ rows +[\d,]+ rows/s", publish), publish
    assert re.search(r"\b291 rows\b", next(line for line in final if "✓ ingest" in line))  # every sample row


def test_log_gets_one_line_per_stage(tmp_path, monkeypatch):
    _, shown = _run(tmp_path, monkeypatch, terminal=False)
    lines = shown.splitlines()
    for stage in STAGES:
        assert sum(line.startswith(f"✓ {stage} ") for line in lines) == 1, shown
    assert re.search(r"^✓ link [\d.]+ s · [\d,]+ pairs · [\d,]+ pairs/s$", shown, re.M), shown
    assert "left" not in shown and "\r" not in shown  # no redraws in a log


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_quiet_and_json_show_no_progress(tmp_path, monkeypatch, flag):
    _, shown = _run(tmp_path, monkeypatch, flag, terminal=True)
    assert "✓" not in shown and "/s" not in shown and "rows" not in shown


def test_time_left_while_a_stage_runs():
    with Progress(disable=True) as bars:
        task_id = bars.add_task("link", total=1000, unit="pairs")
        bars.update(task_id, advance=100)
        time.sleep(0.2)
        bars.update(task_id, advance=100)
        left = TimeLeftColumn().render(bars._tasks[task_id]).plain
    assert re.fullmatch(r"0:00:0\d left", left), left


def test_stage_counts_reach_the_bar_of_the_running_stage():
    bars = StageBars(Console(file=io.StringIO(), force_terminal=False))
    with bars, progress.listening(bars.count):
        bars.on_stage("link", "start")
        progress.expect(300, "pairs")
        progress.advance(120)
        progress.advance(180)
        bars.on_stage("link", "end")
        progress.advance(5)  # between stages: nobody's count
    task = bars.progress._tasks[bars.tasks["link"]]
    assert (task.completed, task.total, task.fields["unit"]) == (300, 300, "pairs")


def _upper(value):
    return (value.upper(),)


def test_pool_chunks_are_counted_as_they_come_back():
    """Counted in this process when each chunk's result arrives (so also for Dask futures)."""
    events: list[tuple[str, int, str | None]] = []
    values = pd.Series([f"v{i}" for i in range(12_000)])
    pool = LocalProcesses().executor(2)
    if pool is None:
        pytest.skip("no process pool on this platform")
    try:
        with progress.listening(lambda *event: events.append(event)):
            job = FieldJob(_upper, [values], (), ["up"]).submit(pool, in_process_below=1)
            assert job.result()["up"][11_999] == "V11999"
    finally:
        pool.shutdown()
    assert events[0] == ("expect", 12_000, "values")
    advances = [amount for event, amount, _ in events if event == "advance"]
    assert len(advances) >= 2 and sum(advances) == 12_000


def test_dask_chunks_are_counted_in_the_client():
    """On a Dask cluster the chunks run in worker processes; their results, hence the counts,
    come back to the process that shows the bars."""
    from distributed import Client, LocalCluster

    from crmclean.executors import DaskCluster, local_cluster_options

    events: list[tuple[str, int, str | None]] = []
    values = pd.Series([f"v{i}" for i in range(12_000)])
    with LocalCluster(**local_cluster_options(1)) as cluster, Client(cluster, set_as_default=False) as client:
        pool = DaskCluster(client).executor(1)
        with progress.listening(lambda *event: events.append(event)):
            job = FieldJob(_upper, [values], (), ["up"]).submit(pool, in_process_below=1)
            assert job.result()["up"][0] == "V0"
    advances = [amount for event, amount, _ in events if event == "advance"]
    assert events[0] == ("expect", 12_000, "values") and len(advances) >= 2 and sum(advances) == 12_000


def test_counts_reach_the_stage_bars_in_a_prefect_flow_run(prefect_harness, tmp_path):
    """The stages run as Prefect tasks (in Prefect's worker threads): their counts still arrive
    between the start and the end of their stage."""
    from crmclean.flows.nightly import run_flow
    from crmclean.run import RunOptions
    from crmclean.settings import SAMPLE_DATA_DIR

    seen: list[tuple] = []
    options = RunOptions(inputs=[SAMPLE_DATA_DIR], db_url=f"sqlite:///{tmp_path / 'm.db'}", out_dir=tmp_path)
    with progress.listening(lambda *event: seen.append(event)):
        result = run_flow(options, progress=lambda stage, event: seen.append((stage, event)))
    assert result.status == "success"
    link = seen[seen.index(("link", "start")) : seen.index(("link", "end"))]
    expected = sum(amount for event, amount, *_ in link if event == "expect")
    assert expected > 0 and all(unit == "pairs" for event, _, unit in link[1:] if event == "expect")
    assert sum(amount for event, amount, *_ in link if event == "advance") == expected
    ingest = seen[seen.index(("ingest", "start")) : seen.index(("ingest", "end"))]
    assert sum(amount for event, amount, *_ in ingest if event == "advance") == result.counts["rows_read"]
