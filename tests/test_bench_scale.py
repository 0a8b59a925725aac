"""bench/scale.py's measuring: a real process tree and a real log, no crmclean run (too slow here)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path

spec = importlib.util.spec_from_file_location("crm_scale", Path(__file__).parent.parent / "bench" / "scale.py")
assert spec and spec.loader
scale = importlib.util.module_from_spec(spec)
sys.modules["crm_scale"] = scale  # dataclasses look their module up
spec.loader.exec_module(scale)

# a parent that starts a worker holding ~150 MB and burning CPU, then waits for it
TREE = """
import multiprocessing as mp, time
def work():
    block = bytearray(150 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    t = time.process_time()
    while time.process_time() - t < 0.8:
        pass
if __name__ == "__main__":
    p = mp.get_context("fork").Process(target=work)
    p.start(); p.join()
"""


def test_run_measured_counts_the_workers_memory_and_cpu():
    """The worker's memory is in the sampled peak and its CPU in the total after it was reaped."""
    measured = scale.run_measured([sys.executable, "-c", TREE], interval=0.05)
    assert measured.returncode == 0
    assert measured.peak_rss > 150 * scale.MB
    assert measured.peak_pss > 140 * scale.MB
    assert measured.cpu_s >= 0.8
    assert max(s.procs for s in measured.samples) == 2


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def test_stage_rows_split_cpu_and_peaks_by_the_logged_stages():
    """CPU is interpolated at the stage bounds; peaks come from the samples inside each stage."""
    t0 = 1_800_000_000.0
    samples = [
        scale.Sample(t0 + i, cpu=float(i), rss=(5 if i == 3 else 1) * scale.MB, pss=scale.MB, procs=1)
        for i in range(1, 10)
    ]
    measured = scale.Measured(0, t0, 10.0, 10.0, "", "", samples)
    log = "\n".join(
        [
            f"{_stamp(t0 + 2)} INFO crmclean.run: run X started: 1 input file(s), out o",
            f"{_stamp(t0 + 2)} INFO crmclean.run: stage ingest started",
            f"{_stamp(t0 + 4)} INFO crmclean.run: stage ingest done after 2.0 s",
            f"{_stamp(t0 + 4)} INFO crmclean.run: stage link started",
            f"{_stamp(t0 + 8)} INFO crmclean.run: stage link done after 4.0 s",
            f"{_stamp(t0 + 8)} INFO crmclean.run: run X success after 6.0 s: {{}}",
        ]
    )
    rows = {r["stage"]: r for r in scale.stage_rows(measured, log, {"ingest": 1.99, "link": 4.01})}
    assert list(rows) == ["(start-up: imports, before the run)", "ingest", "link", "(after the run: exit)"]
    assert rows["ingest"]["wall_s"] == 1.99 and rows["ingest"]["cpu_s"] == 2.0
    assert rows["ingest"]["peak_rss_mb"] == 5 and rows["link"]["peak_rss_mb"] == 1
    assert rows["link"]["cpu_s"] == 4.0
    assert rows["(after the run: exit)"]["wall_s"] == 2.0
    assert sum(r["cpu_s"] for r in rows.values()) == 10.0
