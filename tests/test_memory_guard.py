"""The memory guard (issue 14): a run that would exceed the memory available stops with a clear
message naming the figures and a way out, before anything is published. Real runs on
sample_data/ into a real SQLite master; the low limit is injected."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean import memory
from crmclean.cli import app
from crmclean.errors import CrmcleanError
from dbutil import read_table

runner = CliRunner()


def _run(tmp_path, *flags: str):
    db_url = f"sqlite:///{tmp_path / 'master.db'}"
    args = ["run", "--no-prefect", "--db", db_url, "--out", str(tmp_path / "out"), *flags]
    return db_url, runner.invoke(app, args)


def test_a_low_limit_stops_the_run_before_publishing(tmp_path):
    db_url, first = _run(tmp_path, "--memory-limit", "off")
    assert first.exit_code == 0, first.output
    before = read_table(db_url, "master_customer").sort_values("master_id", ignore_index=True)

    _, result = _run(tmp_path, "--full-refresh", "--memory-limit", "50M", "--json")
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert "records × 5 KB a record" in error and "--memory-limit 50 MB" in error, error
    assert "nothing was published" in error and "smaller parts" in error
    after = read_table(db_url, "master_customer").sort_values("master_id", ignore_index=True)
    pd.testing.assert_frame_equal(after, before)  # yesterday's master untouched
    runs = read_table(db_url, "run_log").sort_values("started_at")
    assert list(runs["status"]) == ["success", "failed"]
    assert "would need about" in runs["error"].iloc[-1]


def test_the_machines_available_memory_is_the_default_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 20)  # 1 MB free
    monkeypatch.delenv(memory.LIMIT_ENVVAR, raising=False)
    _, result = _run(tmp_path, "--workers", "2")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "but only 1 MB is available on this machine now" in text, text
    assert "fewer --workers (now 2)" in text

    monkeypatch.setenv(memory.LIMIT_ENVVAR, "off")  # the setting that overrides the guard
    _, result = _run(tmp_path)
    assert result.exit_code == 0, result.output


def test_enough_memory_passes_and_is_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 30)
    log = tmp_path / "run.log"
    _, result = _run(tmp_path, "--log-file", str(log))
    assert result.exit_code == 0, result.output
    assert "memory: about 1 MB needed, 65536 MB available" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "text, expected",
    [("8G", 8 << 30), ("512m", 512 << 20), ("2.5GB", int(2.5 * (1 << 30))), ("1000", 1000), ("off", 0), (None, None)],
)
def test_limits_are_read_as_sizes(text, expected):
    assert memory.parse_limit(text) == expected


def test_a_bad_limit_is_one_clear_error_before_the_run(tmp_path):
    db_url, result = _run(tmp_path, "--memory-limit", "lots")
    assert result.exit_code == 1
    assert "memory limit 'lots' is not a size" in result.output
    assert not (tmp_path / "master.db").exists()
    with pytest.raises(CrmcleanError):
        memory.parse_limit("12 parsecs")


@pytest.mark.skipif(memory._malloc_trim() is None, reason="no glibc malloc_trim on this platform")
def test_release_freed_gives_freed_heap_holes_back_to_the_os():
    """Texts freed between survivors (a stage's transient frames between the records frame's
    values) stay resident until release_freed: the run's later stages would start from them."""
    import psutil

    proc = psutil.Process()
    texts = [b"x" * 600 + i.to_bytes(4, "little") for i in range(200_000)]  # 600 B: glibc's heap, not pymalloc
    survivors = texts[::64]  # one in 64 lives on, so no page at the heap's top is free
    del texts
    held = proc.memory_info().rss
    memory.release_freed()
    assert held - proc.memory_info().rss > 50 * 2**20
    assert len(survivors) == 3125


def test_release_freed_gives_back_what_arrow_freed():
    """After a stage, Arrow's freed memory goes back too: its allocator (mimalloc) kept it,
    ≈ 30 MB of link's joined-name and profile buffers at 200k customers, for the rest of the
    run. In a fresh process: what earlier tests left in the allocator would blur the count."""
    script = (
        "import numpy as np, psutil, pyarrow as pa, pyarrow.compute as pc\n"
        "from crmclean import memory\n"
        "proc = psutil.Process()\n"
        "base = pa.array(np.arange(100_000))\n"
        "arrays = [pc.add(base, i) for i in range(300)]  # 800 KB each in Arrow's pool: 240 MB\n"
        "del arrays\n"
        "before = proc.memory_info().rss\n"
        "memory.release_freed()\n"
        "print((before - proc.memory_info().rss) // 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 100, out.stdout
