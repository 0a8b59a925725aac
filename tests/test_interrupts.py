"""Ctrl-C and SIGKILL during a real `crmclean run --no-prefect` leave an honest run_log (issue 15).

The run is a real subprocess on generated data, in its own session so that the signal reaches
it and its worker processes as a terminal's Ctrl-C would. The signal is sent once the run holds
the lock (its column mapping is written after the lock is taken), so it lands mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from crmclean.generate import generate
from crmclean.settings import SAMPLE_DATA_DIR
from dbutil import read_table

pytestmark = pytest.mark.slow

START_TIMEOUT = 300  # seconds for the run to register and take the lock on a loaded machine
STOP_WITHIN = 15  # the issue asks for "a few seconds"; a loaded 2-core machine gets some slack


def _crmclean(*args: str, cwd: Path, mode: str = "--no-prefect") -> subprocess.Popen:
    """`crmclean run MODE ARGS` in its own session, output (both streams) to a file. No Prefect
    API is configured, so `--prefect` starts Prefect's temporary server (in the same session)."""
    log_path = cwd / f"run-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmclean.cli", "run", mode, *args],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**env, "COLUMNS": "100", "PREFECT_HOME": str(cwd / "prefect-home")},
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def _output(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text(encoding="utf-8")  # type: ignore[attr-defined]


def _wait_until_mid_run(proc: subprocess.Popen, db_url: str, out: Path) -> str:
    """The id of the run once it is `running` and holds the lock (its mapping file exists)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before it could be interrupted:\n{_output(proc)}"
        mapped = list(out.glob("runs/*/column_mapping.json"))
        if mapped:
            run_id = mapped[0].parent.name
            log = read_table(db_url, "run_log").set_index("run_id")
            if run_id in log.index and log.loc[run_id, "status"] == "running":
                return run_id
        time.sleep(0.1)
    pytest.fail(f"the run did not start within {START_TIMEOUT} s:\n{_output(proc)}")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A master published from the sample data, and generated inputs big enough to interrupt."""
    tmp = tmp_path_factory.mktemp("interrupts")
    generate(customers=4000, seed=7, out_dir=tmp / "demo", profile="crm", systems=3)
    db_url = f"sqlite:///{tmp / 'master.db'}"
    first = _crmclean(str(SAMPLE_DATA_DIR), "--db", db_url, "--out", str(tmp / "out"), cwd=tmp)
    assert first.wait(600) == 0, _output(first)
    return tmp, db_url


def _master(db_url: str) -> dict[str, pd.DataFrame]:
    return {t: read_table(db_url, t) for t in ("master_customer", "customer_xref")}


@pytest.mark.parametrize(
    "mode, sig, named",
    [
        ("--no-prefect", signal.SIGINT, "Ctrl-C"),
        ("--prefect", signal.SIGINT, "Ctrl-C"),
        ("--no-prefect", signal.SIGTERM, "SIGTERM"),
    ],
)
def test_ctrl_c_aborts_the_run_publishes_nothing_and_exits_130(published, mode, sig, named):
    """In-process, and as a flow run on Prefect's temporary server (which the Ctrl-C kills too:
    the run must not wait a minute on Prefect's retries to report to it); SIGTERM (a scheduler
    stopping the job) ends the run the same way."""
    tmp, db_url = published
    before = _master(db_url)
    out = tmp / f"out-interrupted{mode}-{sig}"
    proc = _crmclean(str(tmp / "demo"), "--db", db_url, "--out", str(out), cwd=tmp, mode=mode)
    run_id = _wait_until_mid_run(proc, db_url, out)
    os.killpg(proc.pid, sig)
    sent = time.monotonic()
    code = proc.wait(120)
    took = time.monotonic() - sent
    output = _output(proc)
    assert code == 130, output
    assert took < STOP_WITHIN, f"stopped after {took:.1f} s"
    assert f"interrupted: run {run_id} aborted " in output and "nothing was published" in output
    assert "Traceback" not in output and "internal error" not in output
    row = read_table(db_url, "run_log").set_index("run_id").loc[run_id]
    assert row["status"] == "aborted" and row["finished_at"] is not None
    assert row["error"].startswith(f"interrupted ({named}) ") and row["error"].endswith("nothing was published")
    for name, frame in _master(db_url).items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)


def test_sigkilled_run_is_marked_abandoned_by_the_next_run(published):
    tmp, db_url = published
    before = _master(db_url)
    out = tmp / "out-killed"
    proc = _crmclean(str(tmp / "demo"), "--db", db_url, "--out", str(out), cwd=tmp)
    killed = _wait_until_mid_run(proc, db_url, out)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL
    assert read_table(db_url, "run_log").set_index("run_id").loc[killed, "status"] == "running"
    for name, frame in _master(db_url).items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)

    nxt = _crmclean(str(SAMPLE_DATA_DIR), "--db", db_url, "--out", str(tmp / "out-next"), "--quiet", cwd=tmp)
    assert nxt.wait(600) == 0, _output(nxt)
    log = read_table(db_url, "run_log").set_index("run_id")
    assert log.loc[killed, "status"] == "abandoned"
    assert log.loc[killed, "error"] == "abandoned: the process stopped without finishing"

    history = subprocess.run(
        [sys.executable, "-m", "crmclean.cli", "history", "--db", db_url, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    runs = {r["run_id"]: r for r in json.loads(history.stdout)["runs"]}
    assert runs[killed]["status"] == "abandoned" and runs[killed]["duration_s"] is not None
